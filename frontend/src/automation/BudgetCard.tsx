import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { Schemas } from "../api/client";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { automationQueries, useSaveBudget } from "./queries";

type Budget = Schemas["AIBudgetOut"];
type BudgetIn = Schemas["AIBudgetIn"];

const FUNCTIONS = [
  ["clustering", "Clustering (%)"],
  ["idea_generation", "Ideas (%)"],
  ["content_generation", "Content (%)"],
  ["image_prompt_extraction", "Image prompts (%)"],
  ["image_generation", "Images (%)"],
] as const satisfies readonly (readonly [keyof Budget & keyof BudgetIn, string])[];
type Share = (typeof FUNCTIONS)[number][0];

/** Percentages as typed: sent as decimal strings, so the API sums them exactly. */
type Form = { use_global_defaults: boolean; shares: Record<Share, string> };

function formOf(budget: Budget): Form {
  return {
    use_global_defaults: budget.use_global_defaults,
    shares: Object.fromEntries(FUNCTIONS.map(([f]) => [f, String(budget[f])])) as Record<
      Share,
      string
    >,
  };
}

function bodyOf(form: Form): BudgetIn {
  // With the defaults, the site's own percentages are left out and kept for later.
  if (form.use_global_defaults) return { use_global_defaults: true };
  return { use_global_defaults: false, ...form.shares };
}

/** What the typed percentages add up to, for the person typing (the API checks it exactly). */
function total(form: Form): string {
  const sum = FUNCTIONS.reduce((acc, [f]) => acc + Number(form.shares[f]), 0);
  return Number.isFinite(sum) ? String(Math.round(sum * 100) / 100) : "?";
}

/** How a run's credit cap is shared between the AI functions (SPEC §8). */
export function BudgetCard({ siteId }: { siteId: number }) {
  const budget = useQuery(automationQueries.budget(siteId));
  return (
    <section className="card" aria-label="AI budget">
      <h2>AI budget allocation</h2>
      <p className="hint">
        How a run's credit cap (Max credits per run) is shared between the AI functions; a function
        that spends its share stops with "credit budget reached".
      </p>
      <ErrorNote error={budget.error} />
      {budget.data && <BudgetForm siteId={siteId} budget={budget.data} />}
    </section>
  );
}

function BudgetForm({ siteId, budget }: { siteId: number; budget: Budget }) {
  const [form, setForm] = useState<Form>(() => formOf(budget));
  const save = useSaveBudget(siteId);
  const problems = fieldProblems(save.error);
  const change = (update: (f: Form) => Form) => {
    if (save.isSuccess) save.reset();
    setForm(update);
  };

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate(bodyOf(form), { onSuccess: (saved) => setForm(formOf(saved)) });
  }

  const sum = total(form);
  return (
    // noValidate: the API is the validator, and its 400 names the field.
    <form noValidate onSubmit={submit} className="config-form">
      <label className="check">
        <input
          type="checkbox"
          checked={form.use_global_defaults}
          onChange={(e) => change((f) => ({ ...f, use_global_defaults: e.target.checked }))}
        />
        Use the global defaults
      </label>
      <fieldset disabled={form.use_global_defaults}>
        <legend>Share of the run's credit cap</legend>
        {FUNCTIONS.map(([field, label]) => (
          <label key={field}>
            {label}
            <input
              type="number"
              inputMode="decimal"
              step="0.01"
              value={form.shares[field]}
              aria-invalid={problems.has(field) || undefined}
              onChange={(e) =>
                change((f) => ({ ...f, shares: { ...f.shares, [field]: e.target.value } }))
              }
            />
            <FieldError problems={problems} field={field} />
          </label>
        ))}
        <p className={sum === "100" ? "hint wide" : "error wide"}>
          Total: <span data-testid="budget-total">{sum}%</span>
          {sum !== "100" && " (must be 100)"}
        </p>
      </fieldset>
      <ErrorNote error={save.error} />
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
