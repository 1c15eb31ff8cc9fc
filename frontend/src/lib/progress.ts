import { formatEta } from "./format";

/** What the run screen reads out of `run_progress` and the estimate. */

type GlobalProgress = { percentage: number; total_items: number; completed_items: number };

/**
 * `global_progress.eta_seconds`: seconds left, or null while unknown. Read through here only:
 * servers from before the field answer without it, and then it is unknown too.
 */
export function etaSeconds(global: GlobalProgress | undefined): number | null {
  if (!global || !("eta_seconds" in global)) return null;
  const eta = (global as { eta_seconds?: unknown }).eta_seconds;
  return typeof eta === "number" && Number.isFinite(eta) && eta >= 0 ? eta : null;
}

/**
 * The time left as the run screen says it near the progress bar: nothing for a run that is not
 * active, "estimating…" while the server has no estimate yet, else "about 4 min left".
 */
export function timeLeft(global: GlobalProgress | undefined, active: boolean): string | null {
  if (!active) return null;
  const eta = etaSeconds(global);
  return eta === null ? "estimating…" : formatEta(eta);
}

/** Whether a run of this status has not ended: running, or paused. */
export function isActive(status: string | undefined): boolean {
  return status === "running" || status === "paused";
}

type RunAnswer = {
  run?: { run_id: string; status: string } | null;
  global_progress: { completed_items: number };
};

/**
 * Of the progress shown and a new answer, the one to show. The stream's events and a refetch of
 * the query (a window's focus, a change's invalidation) can arrive out of order: a refetch read
 * before an event may be answered after it. For one run the items handled only grow, and an
 * ended run does not start again, so an answer behind the one shown is an older read: kept out.
 */
export function newerProgress<T extends RunAnswer>(shown: T | undefined, next: T): T {
  const [before, after] = [shown?.run, next.run];
  if (!shown || !before || !after || before.run_id !== after.run_id) return next;
  if (!isActive(before.status) && isActive(after.status)) return shown;
  const behind = next.global_progress.completed_items < shown.global_progress.completed_items;
  return behind ? shown : next;
}

/**
 * How many runs a stage's per-run limit takes to work through what waits for it: null when the
 * limit is 0 (unlimited) or unreadable, or when nothing waits.
 */
export function runsNeeded(pending: number, limit: number): number | null {
  if (!Number.isFinite(limit) || limit <= 0 || pending <= 0) return null;
  return Math.ceil(pending / limit);
}

/** The hint beside a per-run limit (003 Phase 5): "≈ 3 runs to process all". */
export function limitHint(pending: number, limitText: string): string {
  const limit = Number(limitText);
  if (pending <= 0) return "nothing waiting";
  const runs = runsNeeded(pending, limit);
  if (runs === null || runs === 1) return "all in one run";
  return `≈ ${runs} runs to process all`;
}
