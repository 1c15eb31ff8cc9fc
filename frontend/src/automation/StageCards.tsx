import type { Schemas } from "../api/client";
import { InfoTip } from "../components/InfoTip";
import { resultCounters } from "./counters";
import {
  resultFlag,
  STAGE_ENABLED,
  STAGE_NUMBERS,
  stageNoun,
  stageName,
  stageResult,
  StatusBadge,
} from "./format";
import type { Run } from "./queries";

type Props = {
  overview: Schemas["StageOverview"][] | undefined;
  progress: Schemas["StageProgress"][] | undefined;
  config: Schemas["ConfigOut"] | undefined;
  /** The run whose results the cards show: the active run, else the latest. */
  run: Run | undefined;
};

const KIND = { AI: "AI stage", local: "no AI, no credits" } as Record<string, string>;

/** The seven stages: what waits for each, and how far the run got in it. */
export function StageCards({ overview, progress, config, run }: Props) {
  return (
    <section className="stage-grid" aria-label="Stages">
      {STAGE_NUMBERS.map((n) => {
        const waiting = overview?.find((s) => s.number === n);
        const stage = progress?.find((s) => s.number === n);
        const result = run ? stageResult(run, n) : null;
        const counters = resultCounters(result);
        const name = stage?.name ?? waiting?.name ?? stageName(n);
        const disabled = config?.[STAGE_ENABLED[n]] === false;
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
              <span data-testid={`stage-${n}-pending`}>{waiting?.pending ?? 0}</span>{" "}
              {stageNoun(n, waiting?.pending ?? 0)} {n === 7 ? "" : "waiting"}
              {waiting && KIND[waiting.type] && <> · {KIND[waiting.type]}</>}
              {disabled && <> · disabled</>}
            </p>
            {stage && stage.input_count > 0 && (
              <p className="hint" data-testid={`stage-${n}-processed`}>
                {stage.processed_count} of {stage.input_count} done in this run
              </p>
            )}
            {counters.length > 0 && (
              <dl className="counters">
                {counters.map((c) => (
                  <div key={c.key}>
                    <dt>
                      {c.label}
                      {c.tip && (
                        <>
                          {" "}
                          <InfoTip about={c.label}>{c.tip}</InfoTip>
                        </>
                      )}
                    </dt>
                    <dd data-testid={`stage-${n}-${c.key}`}>{c.value}</dd>
                  </div>
                ))}
              </dl>
            )}
            {resultFlag(result, "partial") && <p className="hint">Stopped part-way (partial).</p>}
            {resultFlag(result, "skipped") && (
              <p className="hint">Skipped: {disabled ? "stage disabled" : "nothing to process"}.</p>
            )}
          </article>
        );
      })}
    </section>
  );
}
