import type { Schemas } from "../api/client";
import { resultCounters, resultFlag, stageResult, StatusBadge } from "./format";
import type { Run } from "./queries";

const STAGE_NUMBERS = [1, 2, 3, 4, 5, 6, 7] as const;

type Props = {
  overview: Schemas["StageOverview"][] | undefined;
  progress: Schemas["StageProgress"][] | undefined;
  /** The run whose results the cards show: the active run, else the latest. */
  run: Run | undefined;
};

/** The seven stages: what waits for each, and how far the run got in it. */
export function StageCards({ overview, progress, run }: Props) {
  return (
    <section className="stage-grid" aria-label="Stages">
      {STAGE_NUMBERS.map((n) => {
        const waiting = overview?.find((s) => s.number === n);
        const stage = progress?.find((s) => s.number === n);
        const result = run ? stageResult(run, n) : null;
        const counters = resultCounters(result);
        const name = stage?.name ?? waiting?.name ?? "";
        return (
          <article
            key={n}
            className="card stage-card"
            aria-label={`Stage ${n}`}
            data-testid={`stage-${n}`}
          >
            <header>
              <span className="stage-number">Stage {n}</span>
              <StatusBadge status={stage?.status ?? "pending"} testId={`stage-${n}-status`} />
            </header>
            <h3>{name}</h3>
            <p className="hint">
              {waiting?.type ?? ""} ·{" "}
              <span data-testid={`stage-${n}-pending`}>{waiting?.pending ?? 0}</span> pending
            </p>
            {stage && stage.input_count > 0 && (
              <p className="hint" data-testid={`stage-${n}-processed`}>
                {stage.processed_count} of {stage.input_count} processed
              </p>
            )}
            {counters.length > 0 && (
              <dl className="counters">
                {counters.map(([label, value]) => (
                  <div key={label}>
                    <dt>{label}</dt>
                    <dd>{value}</dd>
                  </div>
                ))}
              </dl>
            )}
            {resultFlag(result, "partial") && <p className="hint">stopped part-way (partial)</p>}
            {resultFlag(result, "skipped") && <p className="hint">skipped: stage disabled</p>}
          </article>
        );
      })}
    </section>
  );
}
