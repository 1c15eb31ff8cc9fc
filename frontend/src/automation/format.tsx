import type { Schemas } from "../api/client";
import type { RunStatus } from "./queries";

type StageResult = { [key: string]: unknown } | null;

export function formatDate(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function formatCredits(amount: number): string {
  return amount.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

// Bookkeeping fields of a stage result, shown apart from its counters (or not at all).
const NOT_COUNTERS = new Set(["started_at", "completed_at", "skipped", "partial"]);

/** A stage result's counters (SPEC §7) as label and value, in the order the API wrote them. */
export function resultCounters(result: StageResult): [string, string][] {
  if (!result) return [];
  return Object.entries(result)
    .filter(
      ([key, value]) =>
        !NOT_COUNTERS.has(key) && (typeof value === "number" || typeof value === "string"),
    )
    .map(([key, value]) => [key.replaceAll("_", " "), String(value)]);
}

export function resultFlag(result: StageResult, flag: "skipped" | "partial"): boolean {
  return result?.[flag] === true;
}

export function stageResult(run: Schemas["RunOut"], stage: number): StageResult {
  switch (stage) {
    case 1:
      return run.stage_1_result;
    case 2:
      return run.stage_2_result;
    case 3:
      return run.stage_3_result;
    case 4:
      return run.stage_4_result;
    case 5:
      return run.stage_5_result;
    case 6:
      return run.stage_6_result;
    case 7:
      return run.stage_7_result;
    default:
      return null;
  }
}

export const STOPPED_TEXT: Record<Schemas["StoppedReason"], string> = {
  completed: "Completed: every stage ran to its end",
  cancelled: "Cancelled by a user",
  credit_budget_reached: "Credit budget reached: the run's cap or a function's allocation is spent",
  insufficient_credits: "Insufficient credits: the balance ran out",
  failed: "Failed",
};

/** A run or stage status as a coloured badge. */
export function StatusBadge({ status, testId }: { status: RunStatus | string; testId?: string }) {
  return (
    <span className={`badge badge-${status}`} data-testid={testId}>
      {status}
    </span>
  );
}
