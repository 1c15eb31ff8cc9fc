import type { Schemas } from "../api/client";
import { formatCount, formatCredits, formatDuration } from "../lib/format";
import { STOPPED_TEXT } from "./format";

/** What a stage result's counter (SPEC §7) is called and how its value reads. */
type Counter = {
  label: string;
  tip: string;
  unit?: "credits" | "seconds" | "words" | "stopped_reason";
};

const COUNTERS: Record<string, Counter> = {
  keywords_processed: {
    label: "Keywords clustered",
    tip: "Keywords this run grouped into clusters.",
  },
  clusters_created: {
    label: "Clusters created",
    tip: "New clusters; keywords may also join clusters that already existed.",
  },
  clusters_processed: {
    label: "Clusters processed",
    tip: "Clusters this run wrote article ideas for.",
  },
  ideas_created: {
    label: "Ideas created",
    tip: "Article ideas, each with an outline and a target length.",
  },
  ideas_processed: { label: "Ideas processed", tip: "Ideas this run turned into writing tasks." },
  tasks_created: { label: "Tasks created", tip: "Writing tasks queued, one per idea." },
  tasks_processed: { label: "Tasks written", tip: "Tasks this run wrote an article for." },
  content_created: { label: "Articles written", tip: "Draft articles created by this run." },
  total_words: {
    label: "Words written",
    tip: "The words of the articles this run wrote.",
    unit: "words",
  },
  content_processed: {
    label: "Articles given image prompts",
    tip: "Articles this run wrote image prompts for.",
  },
  prompts_created: {
    label: "Image prompts",
    tip: "One featured image and the in-article images of each article.",
  },
  images_processed: { label: "Images processed", tip: "Image prompts this run worked on." },
  images_generated: { label: "Images made", tip: "Images generated and stored." },
  images_failed: {
    label: "Images failed",
    tip: "Images the AI could not make; the article goes on without them.",
  },
  ready_for_review: {
    label: "Articles in review",
    tip: "Articles with all their images, waiting for approval.",
  },
  approved_count: { label: "Approved", tip: "Articles approved by this run (auto-approval)." },
  scheduled_count: {
    label: "Scheduled to publish",
    tip: "Approved articles given a publishing slot.",
  },
  not_scheduled: {
    label: "Not scheduled",
    tip: "Approved articles that got no publishing slot: the queue is full or auto-publish is off.",
  },
  awaiting_review: {
    label: "Awaiting review",
    tip: "Articles left in review: auto-approval is off, so a person approves or rejects them under Content.",
  },
  batches_run: { label: "Batches", tip: "Batches of the stage's batch size processed." },
  credits_used: {
    label: "Credits spent",
    tip: "Credits charged for this stage's AI calls.",
    unit: "credits",
  },
  time_elapsed: { label: "Time", tip: "How long the stage took.", unit: "seconds" },
  errors: {
    label: "Errors",
    tip: "Items that failed (marked failed with their error); the stage went on.",
  },
  stopped_reason: {
    label: "Stopped because",
    tip: "Why the stage ended before its end.",
    unit: "stopped_reason",
  },
};

/**
 * A stage's skip, and the articles it handled: not counters, each with its own row.
 * `content_ids` lists the articles stage 7 approved, or counted for review where auto-approval
 * is off (000).
 */
export const SKIPPED = {
  text: "Skipped: nothing to do",
  tip: "Nothing waited for this stage when the run reached it (or the stage is turned off in the configuration), so it did no work.",
};
export const CONTENT_IDS = {
  label: "Articles",
  tip: "The articles this stage handled: those it approved, or, where auto-approval is off, those it counted for review.",
};

// Bookkeeping fields of a stage result, shown apart from its counters (or not at all).
const NOT_COUNTERS = new Set(["started_at", "completed_at", "skipped", "partial", "content_ids"]);

export type CounterRow = { key: string; label: string; value: string; tip: string };

function humanKey(key: string): string {
  const words = key.replaceAll("_", " ");
  return words[0].toUpperCase() + words.slice(1);
}

function stoppedText(value: string): string {
  return STOPPED_TEXT[value as Schemas["StoppedReason"]] ?? humanKey(value);
}

function formatValue(counter: Counter | undefined, value: number | string): string {
  if (counter?.unit === "stopped_reason") return stoppedText(String(value));
  if (typeof value !== "number") return value;
  switch (counter?.unit) {
    case "credits":
      return `${formatCredits(value)} credits`;
    case "seconds":
      return formatDuration(value);
    case "words":
      return `${formatCount(value)} words`;
    default:
      return formatCount(value);
  }
}

const RANK = Object.keys(COUNTERS);
const rank = (key: string) => (RANK.includes(key) ? RANK.indexOf(key) : RANK.length);

/** A stage result's counters as labelled values with units: what the stage made first, then
 * batches, credits, time and errors; counters this page does not know last, as the API wrote
 * them. */
export function resultCounters(result: Record<string, unknown> | null): CounterRow[] {
  if (!result) return [];
  return Object.entries(result)
    .filter(
      (entry): entry is [string, number | string] =>
        !NOT_COUNTERS.has(entry[0]) &&
        (typeof entry[1] === "number" || typeof entry[1] === "string"),
    )
    .sort((a, b) => rank(a[0]) - rank(b[0]))
    .map(([key, value]) => {
      const counter = COUNTERS[key];
      return {
        key,
        label: counter?.label ?? humanKey(key),
        value: formatValue(counter, value),
        tip: counter?.tip ?? "",
      };
    });
}

/** The article ids a stage result lists (stage 7's `content_ids`), or none. */
export function contentIds(result: Record<string, unknown> | null): number[] {
  const ids = result?.content_ids;
  return Array.isArray(ids) ? ids.filter((id): id is number => Number.isInteger(id)) : [];
}
