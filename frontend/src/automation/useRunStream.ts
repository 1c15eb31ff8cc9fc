import { useEffect, useRef, useState } from "react";
import { followRunEvents } from "../api/sse";
import { LOG_SIZES, type Progress } from "./queries";

// The longest log the page shows: the largest choice of the line selector.
const KEEP_LINES = LOG_SIZES[LOG_SIZES.length - 1];

type Handlers = {
  /** The run's progress changed (a `progress` event). */
  onProgress: (progress: Progress) => void;
  /** The run is over and its log complete (the `end` event). */
  onEnd: () => void;
};

export type RunStream = {
  /** The run's last log lines received so far (the stream replays the log from its start). */
  lines: string[];
  /**
   * `open`: following the run (reconnecting after a dropped connection, missing nothing);
   * `ended`: the run is over and `lines` is its whole log's end; `broken`: the server refused
   * the stream before the run ended, so `lines` may miss some: read `logs/`.
   */
  state: "open" | "ended" | "broken";
};

type Held = RunStream & { runId: string };

/**
 * Follows a run's Server-Sent Events while `live` is true, and keeps what it got after.
 * Answers null for a run it has not streamed.
 */
export function useRunStream(
  runId: string | undefined,
  live: boolean,
  handlers: Handlers,
): RunStream | null {
  const [held, setHeld] = useState<Held | null>(null);
  const latest = useRef(handlers);
  useEffect(() => {
    latest.current = handlers;
  });

  useEffect(() => {
    if (!runId || !live) return;
    const controller = new AbortController();
    let ended = false;
    const update = (change: (s: Held) => Held) =>
      setHeld((s) => (s && s.runId === runId ? change(s) : s));
    setHeld({ runId, lines: [], state: "open" });
    followRunEvents(
      runId,
      (event) => {
        if (event.event === "log") {
          update((s) => ({ ...s, lines: [...s.lines, event.data].slice(-KEEP_LINES) }));
        } else if (event.event === "progress") {
          latest.current.onProgress(JSON.parse(event.data) as Progress);
        } else if (event.event === "end") {
          ended = true;
          update((s) => ({ ...s, state: "ended" }));
          latest.current.onEnd();
        }
      },
      controller.signal,
    ).then(
      () => {
        if (!ended) update((s) => ({ ...s, state: "broken" }));
      },
      () => {
        if (!ended) update((s) => ({ ...s, state: "broken" }));
      },
    );
    return () => {
      controller.abort();
      // Stopped by the page (the run is no longer active, or another is shown) before its end.
      if (!ended) update((s) => ({ ...s, state: "broken" }));
    };
  }, [runId, live]);

  return held && held.runId === runId ? { lines: held.lines, state: held.state } : null;
}
