import { EventSourceParserStream } from "eventsource-parser/stream";
import { getApiKey } from "./client";
import type { paths } from "./schema";

/**
 * One Server-Sent Event as the stream delivers it: `id` is the stream's last event id so far
 * (the SSE "last event ID", kept across events that carry none), what `Last-Event-ID` would send.
 */
export type ServerEvent = { event: string; data: string; id: string | null };

// Typed against the generated paths, so a renamed endpoint fails the type check.
const EVENTS_PATH: keyof paths = "/api/v1/automation/runs/{run_id}/events";

/**
 * Reads a run's event stream until the server closes it or `signal` aborts.
 *
 * EventSource cannot send the Authorization header, so this is fetch with a stream reader, the
 * text/event-stream format parsed by eventsource-parser. It does not reconnect: a caller that
 * wants to resume passes the last id it got as `lastEventId`.
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
  const reader = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader();
  let id: string | null = lastEventId ?? null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // The parser gives an event's own id only; the last event ID outlives events without one.
    if (value.id !== undefined) id = value.id;
    onEvent({ event: value.event ?? "message", data: value.data, id });
  }
}
