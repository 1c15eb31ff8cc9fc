import { describe, expect, it } from "vitest";
import { creditsOf, rebalance, total, type Shares } from "./budget";

const DEFAULTS: Shares = {
  clustering: 15,
  idea_generation: 10,
  content_generation: 40,
  image_prompt_extraction: 5,
  image_generation: 30,
};

describe("rebalance", () => {
  it("keeps the sum at 100, the others in their proportions", () => {
    const next = rebalance(DEFAULTS, "content_generation", 60);
    expect(next.content_generation).toBe(60);
    expect(total(next)).toBe(100);
    // 40 left for 15:10:5:30 (60 parts): 10, 6.67, 3.33, 20.
    expect(next).toEqual({
      clustering: 10,
      idea_generation: 7,
      content_generation: 60,
      image_prompt_extraction: 3,
      image_generation: 20,
    });
  });
  it("gives everything to one share", () => {
    const next = rebalance(DEFAULTS, "image_generation", 100);
    expect(next.image_generation).toBe(100);
    expect(total(next)).toBe(100);
    expect(next.clustering).toBe(0);
  });
  it("shares equally among others that had nothing", () => {
    const all = rebalance(DEFAULTS, "clustering", 100);
    const next = rebalance(all, "clustering", 20);
    expect(next).toEqual({
      clustering: 20,
      idea_generation: 20,
      content_generation: 20,
      image_prompt_extraction: 20,
      image_generation: 20,
    });
  });
  it("clamps to 0..100 and whole percent", () => {
    expect(rebalance(DEFAULTS, "clustering", 140).clustering).toBe(100);
    expect(rebalance(DEFAULTS, "clustering", -5).clustering).toBe(0);
    expect(total(rebalance(DEFAULTS, "clustering", 33.4))).toBe(100);
  });
  it("ends at 100 from shares with decimals", () => {
    const odd = { ...DEFAULTS, clustering: 12.5, image_generation: 32.5 };
    expect(total(rebalance(odd, "idea_generation", 11))).toBe(100);
  });
});

describe("creditsOf", () => {
  it("divides the run's credit cap", () => {
    expect(creditsOf(40, 50)).toBe(20);
    expect(creditsOf(15, 33)).toBe(4.95);
  });
  it("is nothing while there is no cap", () => {
    expect(creditsOf(40, 0)).toBeNull();
  });
});
