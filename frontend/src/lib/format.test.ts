import { describe, expect, it } from "vitest";
import { formatDate, formatDuration, formatEta, plural, runName, secondsBetween } from "./format";

describe("formatDuration", () => {
  it.each([
    [0, "0 s"],
    [7, "7 s"],
    [59.6, "1 min"],
    [246, "4 min 6 s"],
    [600, "10 min"],
    [3720, "1 h 2 min"],
    [7200, "2 h"],
    [86399, "23 h 59 min"],
    [86400, "1 d"],
    [27_345_360, "316 d 11 h"],
    [-3, "0 s"],
  ])("%s seconds read %s", (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe("formatEta", () => {
  it.each([
    [20, "less than a minute left"],
    [60, "about 1 min left"],
    [230, "about 4 min left"],
    [246, "about 5 min left"],
    [3600, "about 1 h left"],
    [3660, "about 1 h 1 min left"],
  ])("%s seconds read %s", (seconds, text) => {
    expect(formatEta(seconds)).toBe(text);
  });
});

describe("labels", () => {
  it("names a run by its start time", () => {
    expect(runName("2026-03-12T14:05:00Z", "UTC")).toBe("Run of 12 Mar 2026, 14:05");
  });
  it("writes no date for none", () => {
    expect(formatDate(null)).toBe("–");
  });
  it("counts in words", () => {
    expect(plural(1, "run")).toBe("1 run");
    expect(plural(1200, "keyword")).toBe("1,200 keywords");
    expect(plural(0, "batch", "batches")).toBe("0 batches");
  });
  it("measures a run until now while it has no end", () => {
    const start = "2026-03-12T14:00:00Z";
    expect(secondsBetween(start, "2026-03-12T14:04:06Z")).toBe(246);
    expect(secondsBetween(start, null, Date.parse("2026-03-12T14:01:00Z"))).toBe(60);
  });
});
