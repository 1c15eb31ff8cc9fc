import { useQuery } from "@tanstack/react-query";
import { Slider } from "radix-ui";
import { lazy, Suspense, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { automationQueries, useSaveBudget } from "../automation/queries";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { creditsOf, rebalance, total, type Share, type Shares } from "../lib/budget";
import { formatCredits } from "../lib/format";
import { FUNCTIONS } from "./budget";

const BudgetChart = lazy(() => import("./BudgetChart"));

type Budget = Schemas["AIBudgetOut"];
type Form = { use_global_defaults: boolean; shares: Shares };

function formOf(budget: Budget): Form {
  return {
    use_global_defaults: budget.use_global_defaults,
    shares: Object.fromEntries(FUNCTIONS.map((f) => [f.key, budget[f.key]])) as Shares,
  };
}

const LABELS = Object.fromEntries(FUNCTIONS.map((f) => [f.key, `${f.label} share`]));

/**
 * How a run's credit cap (`max_credits_per_run`) is shared between the AI functions
 * (SPEC §8, 003 Part 2): sliders that always sum to 100, and a chart.
 */
export function BudgetCard({ siteId }: { siteId: number }) {
  const budget = useQuery(automationQueries.budget(siteId));
  const config = useQuery(automationQueries.config(siteId));
  const cap = config.data?.max_credits_per_run;
  return (
    <section className="card" aria-label="AI budget">
      <h2>AI budget allocation</h2>
      <p>
        This divides the run's credit cap, <strong>Credit cap per run</strong> (
        <code>max_credits_per_run</code>
        {cap !== undefined && <>, now {cap > 0 ? `${formatCredits(cap)} credits` : "0"}</>}),
        between the AI functions. A function that has spent its share stops the run with "credit
        budget reached".
      </p>
      {cap === 0 && (
        <p className="note" data-testid="budget-no-effect">
          The credit cap per run is 0 (no cap), so this allocation has no effect now. Set a cap
          under <Link to="/automation">Automation</Link> → Configure → Credit cap per run.
        </p>
      )}
      <ErrorNote error={budget.error ?? config.error} />
      {budget.data && <BudgetForm siteId={siteId} budget={budget.data} cap={cap ?? 0} />}
    </section>
  );
}

function BudgetForm({ siteId, budget, cap }: { siteId: number; budget: Budget; cap: number }) {
  const [form, setForm] = useState<Form>(() => formOf(budget));
  const save = useSaveBudget(siteId);
  const problems = fieldProblems(save.error);
  const change = (update: (f: Form) => Form) => {
    if (save.isSuccess) save.reset();
    setForm(update);
  };
  const setShare = (key: Share, value: number) =>
    change((f) => ({ ...f, shares: rebalance(f.shares, key, value) }));

  function submit(event: FormEvent) {
    event.preventDefault();
    const body = form.use_global_defaults
      ? { use_global_defaults: true }
      : { use_global_defaults: false, ...form.shares };
    save.mutate(body, { onSuccess: (saved) => setForm(formOf(saved)) });
  }

  const locked = form.use_global_defaults;
  return (
    // noValidate: the API is the validator, and its 400 names the field.
    <form noValidate onSubmit={submit} className="budget-form">
      <label className="check">
        <input
          type="checkbox"
          checked={form.use_global_defaults}
          onChange={(e) => change((f) => ({ ...f, use_global_defaults: e.target.checked }))}
        />
        Use the global defaults
      </label>
      <div className="budget-body">
        <fieldset disabled={locked} className="shares">
          <legend>Share of the run's credit cap</legend>
          {FUNCTIONS.map(({ key, label, color }) => {
            const credits = creditsOf(form.shares[key], cap);
            return (
              <div key={key} className="share">
                <span className="share-name">
                  <span className="swatch" style={{ background: color }} aria-hidden="true" />
                  {label}
                </span>
                <Slider.Root
                  className="slider"
                  min={0}
                  max={100}
                  step={1}
                  disabled={locked}
                  value={[form.shares[key]]}
                  onValueChange={([v]) => setShare(key, v)}
                >
                  <Slider.Track className="slider-track">
                    <Slider.Range className="slider-range" style={{ background: color }} />
                  </Slider.Track>
                  <Slider.Thumb className="slider-thumb" aria-label={`${label} share`} />
                </Slider.Root>
                <label className="share-input">
                  <input
                    type="number"
                    inputMode="numeric"
                    min={0}
                    max={100}
                    aria-label={`${label} (%)`}
                    value={form.shares[key]}
                    aria-invalid={problems.has(key) || undefined}
                    onChange={(e) => {
                      const v = Number(e.target.value);
                      if (e.target.value !== "" && Number.isFinite(v)) setShare(key, v);
                    }}
                  />
                  %
                </label>
                <span className="hint share-credits">
                  {credits === null ? "" : `${formatCredits(credits)} credits`}
                </span>
                <FieldError problems={problems} field={key} />
              </div>
            );
          })}
          <p className="hint">
            Total: <span data-testid="budget-total">{total(form.shares)}%</span> (moving one share
            shares the rest among the others, so the total stays 100)
          </p>
        </fieldset>
        <Suspense fallback={<div className="budget-chart" />}>
          <BudgetChart shares={form.shares} />
        </Suspense>
      </div>
      <ErrorNote error={save.error} labelOf={(field) => LABELS[field]} />
      <div className="actions">
        <button type="submit" disabled={save.isPending}>
          Save allocation
        </button>
        {save.isSuccess && (
          <span role="status" className="hint">
            Allocation saved.
          </span>
        )}
      </div>
    </form>
  );
}
