import { formatCount, formatCredits } from "../lib/format";

/** The ends of an estimated figure's range, as the estimate answers them. */
export type Range = { low: number; high: number };

/**
 * An estimated figure with its range: "311.5" when the range is that figure alone (work already
 * waiting), else "311.5 (295.5–381.25)". A server from before the range answers no ends: the
 * figure alone.
 */
function withRange(value: number, range: Partial<Range>, format: (n: number) => string): string {
  const { low, high } = range;
  if (typeof low !== "number" || typeof high !== "number") return format(value);
  if (low === value && high === value) return format(value);
  return `${format(value)} (${format(low)}–${format(high)})`;
}

export function creditsWithRange(value: number, range: Partial<Range>): string {
  return withRange(value, range, formatCredits);
}

export function itemsWithRange(value: number, range: Partial<Range>): string {
  return withRange(value, range, formatCount);
}

/** "between 295.5 and 381.25 credits", or null where the range is the figure alone. */
export function rangeSentence(value: number, range: Partial<Range>): string | null {
  const { low, high } = range;
  if (typeof low !== "number" || typeof high !== "number") return null;
  if (low === value && high === value) return null;
  return `likely between ${formatCredits(low)} and ${formatCredits(high)} credits`;
}
