import type { Schemas } from "../api/client";
import { formatDate } from "../lib/format";

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

export function weekdayName(day: number): string {
  return WEEKDAYS[day] ?? `day ${day}`;
}

/** "daily at 02:00", "weekly on Monday at 02:00", "monthly on day 1 at 02:00". */
export function cadence(config: Schemas["ConfigOut"]): string {
  const at = `at ${config.scheduled_time.slice(0, 5)}`;
  if (config.frequency === "weekly") return `weekly on ${weekdayName(config.weekly_day)} ${at}`;
  if (config.frequency === "monthly") return `monthly on day ${config.monthly_day} ${at}`;
  return `daily ${at}`;
}

/** The schedule in one line: whether it is on, when the next run starts, when the last one did. */
export function ScheduleNote({
  config,
  timeZone,
}: {
  config: Schemas["ConfigOut"] | undefined;
  timeZone: string | undefined;
}) {
  if (!config) return null;
  return (
    <p className="hint schedule" data-testid="schedule">
      {config.enabled ? (
        <>
          Scheduled {cadence(config)} ({timeZone ?? "site"} time) · next run:{" "}
          <span data-testid="next-run">{formatDate(config.next_run_at, timeZone)}</span>
        </>
      ) : (
        <>
          Schedule off: runs start with Run now · next run:{" "}
          <span data-testid="next-run">none scheduled</span>
        </>
      )}{" "}
      · last run: <span data-testid="last-run">{formatDate(config.last_run_at, timeZone)}</span>
    </p>
  );
}
