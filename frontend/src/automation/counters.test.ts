import { describe, expect, it } from "vitest";
import { resultCounters } from "./counters";
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
    expect(resultCounters({ content_ids: "1,2", new_thing: 4 })).toEqual([
      { key: "content_ids", label: "Content ids", value: "1,2", tip: "" },
      { key: "new_thing", label: "New thing", value: "4", tip: "" },
    ]);
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
