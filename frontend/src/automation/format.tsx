import type { Schemas } from "../api/client";
import type { RunStatus } from "./queries";

export type StageResult = { [key: string]: unknown } | null;

export const STAGE_NUMBERS = [1, 2, 3, 4, 5, 6, 7] as const;
export type StageNumber = (typeof STAGE_NUMBERS)[number];

/** The stages' names as the API gives them, for a page that has not read them yet. */
export const STAGE_NAMES: Record<StageNumber, string> = {
  1: "Keywords → Clusters",
  2: "Clusters → Ideas",
  3: "Ideas → Tasks",
  4: "Tasks → Content",
  5: "Content → Image prompts",
  6: "Image prompts → Images",
  7: "Review → Published",
};

export function stageName(n: number): string {
  return STAGE_NAMES[n as StageNumber] ?? `Stage ${n}`;
}

/**
 * Articles a run left in review (auto-approval off, or past the approvals limit): the result's
 * own count where the API gives one, else those ready for review less those approved.
 */
export function awaitingReview(result: StageResult): number {
  const count = (key: string) => (typeof result?.[key] === "number" ? result[key] : undefined);
  const own = count("awaiting_review");
  if (own !== undefined) return own;
  return Math.max(0, (count("ready_for_review") ?? 0) - (count("approved_count") ?? 0));
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
      {status.replaceAll("_", " ")}
    </span>
  );
}

/** What each stage works on, singular and plural: "12 keywords pending". */
export const STAGE_ITEMS: Record<StageNumber, [string, string]> = {
  1: ["keyword", "keywords"],
  2: ["cluster", "clusters"],
  3: ["idea", "ideas"],
  4: ["task", "tasks"],
  5: ["article", "articles"],
  6: ["image", "images"],
  7: ["article in review", "articles in review"],
};

export function stageNoun(n: number, count: number): string {
  const [one, many] = STAGE_ITEMS[n as StageNumber] ?? ["item", "items"];
  return count === 1 ? one : many;
}

export function stageItems(n: number, count: number): string {
  return `${count.toLocaleString("en-US")} ${stageNoun(n, count)}`;
}

/** Each stage's per-run limit (003 Part 4) and the config's enabled flag. */
export const STAGE_LIMITS = {
  1: "max_keywords_per_run",
  2: "max_clusters_per_run",
  3: "max_ideas_per_run",
  4: "max_tasks_per_run",
  5: "max_content_per_run",
  6: "max_images_per_run",
  7: "max_approvals_per_run",
} as const satisfies Record<StageNumber, keyof Schemas["ConfigOut"]>;

export const STAGE_ENABLED = {
  1: "stage_1_enabled",
  2: "stage_2_enabled",
  3: "stage_3_enabled",
  4: "stage_4_enabled",
  5: "stage_5_enabled",
  6: "stage_6_enabled",
  7: "stage_7_enabled",
} as const satisfies Record<StageNumber, keyof Schemas["ConfigOut"]>;

/**
 * Items waiting in the stages a run would do: the enabled ones (all of them until the config
 * is read). Zero means Run now has nothing to do (the API answers 400 nothing_to_do).
 */
export function pendingForRun(
  overview: Schemas["StageOverview"][] | undefined,
  config: Schemas["ConfigOut"] | undefined,
): number | undefined {
  if (!overview) return undefined;
  return overview
    .filter((s) => !config || config[STAGE_ENABLED[s.number as StageNumber]] !== false)
    .reduce((sum, s) => sum + s.pending, 0);
}
