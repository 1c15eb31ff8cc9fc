import { useQuery } from "@tanstack/react-query";
import { ErrorNote } from "../components/ui";
import { formatCredits } from "./format";
import { automationQueries } from "./queries";

/** The account's balance and what a run of the site would cost now. */
export function CreditsCard({ siteId }: { siteId: number }) {
  const balance = useQuery(automationQueries.balance());
  const estimate = useQuery(automationQueries.estimate(siteId));
  const e = estimate.data;
  return (
    <section className="card" aria-label="Credits">
      <h2>Credits</h2>
      <ErrorNote error={balance.error ?? estimate.error} />
      <dl className="meta">
        <dt>Balance</dt>
        <dd data-testid="balance">
          {balance.data ? `${formatCredits(balance.data.credits)} credits` : "…"}
          {balance.data && balance.data.reserved > 0 && (
            <span className="hint"> ({formatCredits(balance.data.reserved)} reserved)</span>
          )}
        </dd>
        <dt>Next run, estimated</dt>
        <dd data-testid="estimate-credits">
          {e ? `${formatCredits(e.estimated_credits)} credits` : "…"}
        </dd>
        <dt>Required (with 20% buffer)</dt>
        <dd data-testid="estimate-required">
          {e ? `${formatCredits(e.required_with_buffer)} credits` : "…"}
        </dd>
        <dt>Covered</dt>
        <dd data-testid="estimate-sufficient" className={e && !e.sufficient ? "error" : undefined}>
          {e ? (e.sufficient ? "Sufficient" : "Insufficient: top up before running") : "…"}
        </dd>
      </dl>
      {e && (
        <p className="hint">
          {e.basis === "history"
            ? `Projected from the site's last ${e.projection?.completed_runs ?? 3} completed runs.`
            : "Reference formula (no run history yet)."}
          {e.capped_by_max_credits_per_run && " Capped by the per-run credit limit."}
        </p>
      )}
    </section>
  );
}
