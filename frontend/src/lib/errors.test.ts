import { describe, expect, it } from "vitest";
import { humanField, plainMessage, sentence } from "./errors";

describe("plainMessage", () => {
  it.each([
    ["Input should be greater than or equal to 1", "must be 1 or more"],
    ["Input should be less than or equal to 1000", "must be 1000 or less"],
    ["Input should be greater than 0", "must be more than 0"],
    [
      "Input should be a valid integer, unable to parse string as an integer",
      "must be a whole number",
    ],
    [
      "Input should be a valid integer, got a number with a fractional part",
      "must be a whole number",
    ],
    ["Input should be a valid number, unable to parse string as a number", "must be a number"],
    ["Input should be 'daily', 'weekly' or 'monthly'", "must be daily, weekly or monthly"],
    ["Field required", "is required"],
    ["Value error, must be later than stagger_start_time", "must be later than stagger_start_time"],
    ["must use https", "must use https"],
  ])("%s → %s", (raw, plain) => {
    expect(plainMessage(raw)).toBe(plain);
  });
});

describe("sentence", () => {
  it("capitalises and ends the message", () => {
    expect(sentence("insufficient credits: a run needs 12")).toBe(
      "Insufficient credits: a run needs 12.",
    );
    expect(sentence("Done.")).toBe("Done.");
  });
});

describe("humanField", () => {
  it("reads a field name as words", () => {
    expect(humanField("stage_1_batch_size")).toBe("stage 1 batch size");
    expect(humanField("publish_time_slots.2")).toBe("publish time slots 2");
  });
});
