import { useEffect, useRef } from "react";
import { LOG_SIZES, type LogSize } from "./queries";

type Props = {
  lines: string[];
  size: LogSize;
  onSizeChange: (size: LogSize) => void;
  /** How the log is kept up to date, shown beside the title. */
  mode: "live" | "polling" | "static";
};

function asLogSize(n: number): LogSize {
  return LOG_SIZES.find((size) => size === n) ?? 100;
}

const MODE_TEXT = { live: "live", polling: "refreshing every 3 s", static: "" } as const;

/** The run's log, terminal style, newest line at the bottom. */
export function ActivityLog({ lines, size, onSizeChange, mode }: Props) {
  const screen = useRef<HTMLPreElement>(null);
  const shown = lines.slice(-size);
  const last = shown[shown.length - 1];
  useEffect(() => {
    const el = screen.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [last, shown.length]);

  return (
    <section className="card">
      <div className="section-head">
        <h2>Activity log</h2>
        {MODE_TEXT[mode] && (
          <span className="hint" data-testid="log-mode">
            {MODE_TEXT[mode]}
          </span>
        )}
        <label className="inline">
          Lines
          <select
            aria-label="Log lines"
            value={size}
            onChange={(e) => onSizeChange(asLogSize(Number(e.target.value)))}
          >
            {LOG_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </div>
      <pre
        className="terminal"
        role="log"
        aria-label="Activity log"
        // A log's lines would each be read out as they come: the run's status is announced
        // once per change instead (RunAnnouncer).
        aria-live="off"
        tabIndex={0}
        ref={screen}
        data-testid="activity-log"
      >
        {shown.length > 0 ? shown.join("\n") : "No log yet."}
      </pre>
    </section>
  );
}
