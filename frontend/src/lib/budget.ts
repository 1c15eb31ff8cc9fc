/** The AI budget allocation: five shares of `max_credits_per_run` that always sum to 100. */

export const SHARES = [
  "clustering",
  "idea_generation",
  "content_generation",
  "image_prompt_extraction",
  "image_generation",
] as const;
export type Share = (typeof SHARES)[number];
export type Shares = Record<Share, number>;

/**
 * Sets one share and gives the rest of 100 to the others in the proportions they had (equally
 * where they had nothing), in whole percent: the largest remainders get the rounding, so the
 * sum stays exactly 100.
 */
export function rebalance(shares: Shares, changed: Share, value: number): Shares {
  const fixed = Math.min(100, Math.max(0, Math.round(value)));
  const others = SHARES.filter((s) => s !== changed);
  const rest = 100 - fixed;
  const had = others.reduce((sum, s) => sum + Math.max(0, shares[s]), 0);
  const exact = others.map((s) =>
    had > 0 ? (Math.max(0, shares[s]) * rest) / had : rest / others.length,
  );
  const floors = exact.map(Math.floor);
  let left = rest - floors.reduce((a, b) => a + b, 0);
  const byRemainder = exact
    .map((x, i) => [x - Math.floor(x), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of byRemainder) {
    if (left <= 0) break;
    floors[i] += 1;
    left -= 1;
  }
  const next = { ...shares, [changed]: fixed };
  others.forEach((s, i) => {
    next[s] = floors[i];
  });
  return next;
}

export function total(shares: Shares): number {
  return Math.round(SHARES.reduce((sum, s) => sum + shares[s], 0) * 100) / 100;
}

/** Credits a share gets of a run's cap; null while the cap is 0 (no cap: the share does nothing). */
export function creditsOf(share: number, maxCreditsPerRun: number): number | null {
  if (maxCreditsPerRun <= 0) return null;
  return Math.round(share * maxCreditsPerRun) / 100;
}
