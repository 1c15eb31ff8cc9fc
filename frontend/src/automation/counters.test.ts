import { describe, expect, it } from "vitest";
import { contentIds, resultCounters } from "./counters";
import { awaitingReview } from "./format";

describe("resultCounters", () => {
  it("names each counter with its unit, what the stage made first", () => {
    const rows = resultCounters({
      errors: 0,
      batches_run: 1,
      credits_used: 0.6,
      time_elapsed: 246,
      clusters_created: 3,
      keywords_processed: 3,
      started_at: "2026-03-12T14:00:00Z",
      skipped: false,
    });
    expect(rows.map((r) => [r.label, r.value])).toEqual([
      ["Keywords clustered", "3"],
      ["Clusters created", "3"],
      ["Batches", "1"],
      ["Credits spent", "0.6 credits"],
      ["Time", "4 min 6 s"],
      ["Errors", "0"],
    ]);
    expect(rows.every((r) => r.tip.length > 0)).toBe(true);
  });
  it("keeps a counter it does not know, in words", () => {
    expect(resultCounters({ new_thing: 4 })).toEqual([
      { key: "new_thing", label: "New thing", value: "4", tip: "" },
    ]);
  });
  it("has a label and a tip of its own for every key the stages write", () => {
    // SPEC §7 and app/pipeline/results.py: every stage's counters, and what the runner and
    // stage 7 add to them.
    const written = {
      keywords_processed: 1,
      clusters_created: 1,
      clusters_processed: 1,
      ideas_created: 1,
      ideas_processed: 1,
      tasks_created: 1,
      tasks_processed: 1,
      content_created: 1,
      total_words: 1,
      content_processed: 1,
      prompts_created: 1,
      images_processed: 1,
      images_generated: 1,
      images_failed: 1,
      ready_for_review: 1,
      approved_count: 1,
      scheduled_count: 1,
      not_scheduled: 1,
      awaiting_review: 1,
      batches_run: 1,
      credits_used: 1,
      time_elapsed: 1,
      errors: 1,
      stopped_reason: "credit_budget_reached",
    };
    const rows = resultCounters(written);
    expect(rows).toHaveLength(Object.keys(written).length);
    // A key this page does not know gets no tip: each of these has its own.
    for (const row of rows) expect(row.tip, row.key).not.toBe("");
    const label = (key: string) => rows.find((r) => r.key === key);
    expect(label("awaiting_review")?.label).toBe("Awaiting review");
    expect(label("stopped_reason")).toMatchObject({
      label: "Stopped because",
      value: "Credit budget reached: the run's cap or a function's allocation is spent",
    });
  });
  it("leaves the skip, the article list and the times to their own rows", () => {
    const result = {
      skipped: true,
      partial: false,
      content_ids: [4, 5],
      started_at: "2026-03-12T14:00:00Z",
      completed_at: "2026-03-12T14:00:00Z",
    };
    expect(resultCounters(result)).toEqual([]);
    expect(contentIds(result)).toEqual([4, 5]);
    expect(contentIds({ content_ids: "4" })).toEqual([]);
    expect(contentIds(null)).toEqual([]);
  });
  it("formats words", () => {
    expect(resultCounters({ total_words: 11666 })[0].value).toBe("11,666 words");
  });
});

describe("awaitingReview", () => {
  it("reads the result's own count", () => {
    expect(awaitingReview({ awaiting_review: 4, ready_for_review: 9 })).toBe(4);
  });
  it("else counts those ready less those approved", () => {
    expect(awaitingReview({ ready_for_review: 9, approved_count: 0 })).toBe(9);
    expect(awaitingReview({ ready_for_review: 9, approved_count: 9 })).toBe(0);
    expect(awaitingReview(null)).toBe(0);
  });
});
