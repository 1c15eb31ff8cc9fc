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

/** The stream's request was answered with an error status (401, 404, 503 …). */
export class StreamRefused extends Error {
  constructor(readonly status: number) {
    super(`the run's event stream answered ${status}`);
  }
}

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
    throw new StreamRefused(response.status);
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

// Waits between reconnections: doubled after each attempt that brought no event, up to the cap.
const FIRST_WAIT_MS = 500;
const MAX_WAIT_MS = 10_000;

/**
 * Follows a run's event stream to its `end` event, as a browser's EventSource would: when the
 * connection drops (a deploy, a restart, a network change) it reconnects with `Last-Event-ID`,
 * so the server replays only what was missed. It stops when `signal` aborts, and throws when the
 * server refuses the stream for good (401, 403, 404).
 */
export async function followRunEvents(
  runId: string,
  onEvent: (event: ServerEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  let lastEventId: string | undefined;
  let ended = false;
  let wait = FIRST_WAIT_MS;
  while (!ended && !signal.aborted) {
    let received = false;
    try {
      await streamRunEvents(
        runId,
        (event) => {
          received = true;
          if (event.id !== null) lastEventId = event.id;
          if (event.event === "end") ended = true;
          onEvent(event);
        },
        signal,
        lastEventId,
      );
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof StreamRefused && [401, 403, 404].includes(error.status)) throw error;
    }
    if (ended || signal.aborted) return;
    wait = received ? FIRST_WAIT_MS : Math.min(wait * 2, MAX_WAIT_MS);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
