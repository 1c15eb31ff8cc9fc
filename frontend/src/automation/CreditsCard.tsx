import { useQuery } from "@tanstack/react-query";
import { Term } from "../components/InfoTip";
import { ErrorNote, TableScroll } from "../components/ui";
import { formatCredits } from "../lib/format";
import { creditsWithRange, itemsWithRange, rangeSentence } from "./estimate";
import { STAGE_NUMBERS, stageName } from "./format";
import { automationQueries } from "./queries";

const TIPS = {
  balance: "The account's credits; reserved ones are held for AI calls in flight.",
  estimate:
    "What a run would cost now: the items waiting and what earlier stages will feed later ones.",
  required: "A run starts only while the balance covers the estimate plus 20%.",
  spent: "Credits this run has been charged so far.",
  remaining: "What the items still waiting would cost, at the same estimate.",
  range:
    "The range: with run history, from the site's cheapest to its dearest run per item; " +
    "without, the clusters, ideas and article length foreseen 10% lower and higher.",
};

type Props = {
  siteId: number;
  /** While a run is active: what it spent so far. */
  spent: number | undefined;
};

/** The account's balance and what a run of the site costs: before a run, or the rest of one. */
export function CreditsCard({ siteId, spent }: Props) {
  const balance = useQuery(automationQueries.balance());
  const estimate = useQuery(automationQueries.estimate(siteId));
  const e = estimate.data;
  const during = spent !== undefined;
  const total = e && { low: e.estimated_credits_low, high: e.estimated_credits_high };
  const likely = e && total ? rangeSentence(e.estimated_credits, total) : null;
  return (
    <section className="card" aria-label="Credits">
      <h2>Credits</h2>
      <ErrorNote error={balance.error ?? estimate.error} />
      <dl className="meta">
        <dt>
          <Term label="Balance" tip={TIPS.balance} />
        </dt>
        <dd data-testid="balance">
          {balance.data ? `${formatCredits(balance.data.credits)} credits` : "…"}
          {balance.data && balance.data.reserved > 0 && (
            <span className="hint"> ({formatCredits(balance.data.reserved)} reserved)</span>
          )}
        </dd>
        {during ? (
          <>
            <dt>
              <Term label="Spent so far" tip={TIPS.spent} />
            </dt>
            <dd data-testid="run-spent">{formatCredits(spent)} credits</dd>
            <dt>
              <Term label="Projected remaining" tip={TIPS.remaining} />
            </dt>
            <dd data-testid="projected-remaining">
              {e ? `≈ ${formatCredits(e.estimated_credits)} credits` : "…"}
              {likely && <span className="hint"> ({likely})</span>}
            </dd>
          </>
        ) : (
          <>
            <dt>
              <Term label="Next run, estimated" tip={TIPS.estimate} />
            </dt>
            <dd data-testid="estimate-credits">
              {e ? `${formatCredits(e.estimated_credits)} credits` : "…"}
              {likely && (
                <span className="hint" data-testid="estimate-range">
                  {" "}
                  ({likely})
                </span>
              )}
            </dd>
            <dt>
              <Term label="Needed to start" tip={TIPS.required} />
            </dt>
            <dd data-testid="estimate-required">
              {e ? `${formatCredits(e.required_with_buffer)} credits (estimate + 20%)` : "…"}
            </dd>
            <dt>Covered</dt>
            <dd
              data-testid="estimate-sufficient"
              className={e && !e.sufficient ? "error" : undefined}
            >
              {e ? (e.sufficient ? "Sufficient" : "Insufficient: top up before running") : "…"}
            </dd>
          </>
        )}
      </dl>
      {e && (
        <details className="breakdown">
          <summary>Per stage</summary>
          <TableScroll label="Estimate per stage">
            <table className="compact">
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col">Items</th>
                  <th scope="col">Credits</th>
                </tr>
              </thead>
              <tbody>
                {STAGE_NUMBERS.map((n) => {
                  const stage = e.per_stage[`stage_${n}`];
                  if (!stage) return null;
                  return (
                    <tr key={n} className={stage.enabled ? undefined : "muted"}>
                      <td>
                        {n}. {stageName(n)}
                      </td>
                      <td>
                        {stage.enabled
                          ? itemsWithRange(stage.items, {
                              low: stage.items_low,
                              high: stage.items_high,
                            })
                          : "off"}
                      </td>
                      <td>
                        {creditsWithRange(stage.credits, {
                          low: stage.credits_low,
                          high: stage.credits_high,
                        })}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableScroll>
          <p className="hint">
            {e.basis === "history"
              ? `Projected from the site's last ${e.projection?.completed_runs ?? 3} completed runs.`
              : "No run history yet: the clusters are foreseen from the waiting keywords, an article at 1,250 words."}
            {e.capped_by_max_credits_per_run && " Capped by the per-run credit limit."}
          </p>
          <p className="hint">
            <Term label="In brackets" tip={TIPS.range} />: the likely range, where the figure
            depends on what earlier stages will make.
          </p>
        </details>
      )}
    </section>
  );
}
