import { getApiKey } from "./client";
import type { paths } from "./schema";

/** One Server-Sent Event as the stream delivers it. */
export type ServerEvent = { event: string; data: string; id: string | null };

// Typed against the generated paths, so a renamed endpoint fails the type check.
const EVENTS_PATH: keyof paths = "/api/v1/automation/runs/{run_id}/events";

/**
 * Reads a run's event stream until the server closes it or `signal` aborts.
 *
 * EventSource cannot send the Authorization header, so this is fetch with a stream reader and
 * the few lines of the text/event-stream format the API writes (`id:`, `event:`, `data:`,
 * comments, a blank line ending each event).
 */
export async function streamRunEvents(
  runId: string,
  onEvent: (event: ServerEvent) => void,
  signal: AbortSignal,
  lastEventId?: string,
): Promise<void> {
  const headers = new Headers({ Accept: "text/event-stream" });
  const key = getApiKey();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  if (lastEventId) headers.set("Last-Event-ID", lastEventId);
  const url = EVENTS_PATH.replace("{run_id}", encodeURIComponent(runId));
  const response = await fetch(url, { headers, signal, cache: "no-store" });
  if (!response.ok || !response.body) {
    throw new Error(`the run's event stream answered ${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  let id: string | null = lastEventId ?? null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r?\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) onEvent({ event, data: data.join("\n"), id });
        event = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const raw = colon < 0 ? "" : line.slice(colon + 1);
      const text = raw.startsWith(" ") ? raw.slice(1) : raw;
      if (field === "event") event = text;
      else if (field === "data") data.push(text);
      else if (field === "id") id = text;
    }
  }
}
