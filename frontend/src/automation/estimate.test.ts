import { describe, expect, it } from "vitest";
import { creditsWithRange, itemsWithRange, rangeSentence } from "./estimate";

describe("creditsWithRange", () => {
  it("shows the range after the figure", () => {
    expect(creditsWithRange(311.5, { low: 295.5, high: 381.25 })).toBe("311.5 (295.5–381.25)");
  });

  it("shows the figure alone when the range is only that figure", () => {
    expect(creditsWithRange(62.5, { low: 62.5, high: 62.5 })).toBe("62.5");
  });

  it("shows the figure alone when the server gives no range", () => {
    expect(creditsWithRange(10, {})).toBe("10");
  });
});

describe("itemsWithRange", () => {
  it("counts items with thousands separators", () => {
    expect(itemsWithRange(1200, { low: 1080, high: 1320 })).toBe("1,200 (1,080–1,320)");
  });
});

describe("rangeSentence", () => {
  it("says between which figures the cost is likely", () => {
    expect(rangeSentence(311.5, { low: 295.5, high: 381.25 })).toBe(
      "likely between 295.5 and 381.25 credits",
    );
  });

  it("says nothing when there is no range", () => {
    expect(rangeSentence(5, { low: 5, high: 5 })).toBeNull();
    expect(rangeSentence(5, {})).toBeNull();
  });
});
