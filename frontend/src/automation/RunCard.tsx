import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { Confirm } from "../components/Confirm";
import { InfoTip, Term } from "../components/InfoTip";
import { ErrorNote } from "../components/ui";
import { formatCredits, formatDuration, runName } from "../lib/format";
import { timeLeft } from "../lib/progress";
import { stageName, StatusBadge } from "./format";
import type { Progress, RunAction, RunStatus } from "./queries";

type Props = {
  progress: Progress | undefined;
  /** Articles the shown run left waiting for a person's review. */
  awaiting: number;
  /** The active run's status, undefined when none is active. */
  status: RunStatus | undefined;
  busy: boolean;
  /** Items waiting in the enabled stages; 0 disables Run now. */
  pending: number | undefined;
  error: unknown;
  timeZone: string | undefined;
  onAction: (what: RunAction) => void;
};

const TIPS = {
  progress:
    "Items done out of all the run will do: what waited when it started plus what its stages create. It never goes back.",
  spent: "Credits charged to this run so far.",
  elapsed: "Time since the run started, pauses included.",
  left: "From the items left and the time each took so far in this run.",
};

/** The run shown (the active one, else the latest): its state, progress and controls. */
export function RunCard({
  progress,
  awaiting,
  status,
  busy,
  pending,
  error,
  timeZone,
  onAction,
}: Props) {
  const summary = progress?.run ?? null;
  const global = progress?.global_progress;
  const percentage = global?.percentage ?? 0;
  const active = status !== undefined;
  const left = timeLeft(global, active);
  const stage = progress?.stages.find((s) => s.number === summary?.current_stage);
  const nothingToDo = !active && pending === 0;

  return (
    <section className="card" aria-label="Run">
      <h2>Run</h2>
      <p className="run-line">
        {summary ? (
          <>
            <StatusBadge status={summary.status} testId="run-status" />{" "}
            <Link to={`/automation/runs/${encodeURIComponent(summary.run_id)}`}>
              {runName(summary.started_at, timeZone)}
            </Link>
          </>
        ) : (
          <span className="badge" data-testid="run-status">
            never run
          </span>
        )}
      </p>
      {summary && (
        <p className="hint" data-testid="run-stage">
          Stage {summary.current_stage} of 7: {stage?.name ?? stageName(summary.current_stage)}
          {summary.stopped_reason && summary.stopped_reason !== summary.status && (
            <> · stopped: {summary.stopped_reason.replaceAll("_", " ")}</>
          )}
        </p>
      )}
      <div
        className="progress"
        role="progressbar"
        aria-label="Overall progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percentage}
        aria-valuetext={`${percentage}%${left !== null ? `, ${left}` : ""}`}
      >
        <div style={{ width: `${percentage}%` }} />
      </div>
      {left !== null && (
        <p className="hint eta" data-testid="run-eta">
          {left} <InfoTip about="Time left">{TIPS.left}</InfoTip>
        </p>
      )}
      <dl className="figures">
        <div>
          <dt>
            <Term label="Progress" tip={TIPS.progress} />
          </dt>
          <dd>
            <span data-testid="global-percentage">{percentage}%</span>{" "}
            <span className="hint" data-testid="global-items">
              {global ? `${global.completed_items} of ${global.total_items} items` : "…"}
            </span>
          </dd>
        </div>
        {summary && progress && (
          <>
            <div>
              <dt>
                <Term label="Credits spent" tip={TIPS.spent} />
              </dt>
              <dd data-testid="run-credits">
                {formatCredits(progress.metrics.credits_used)} credits
              </dd>
            </div>
            <div>
              <dt>
                <Term label="Elapsed" tip={TIPS.elapsed} />
              </dt>
              <dd data-testid="run-duration">
                {formatDuration(progress.metrics.duration_seconds)}
              </dd>
            </div>
          </>
        )}
      </dl>
      <div className="actions">
        <button
          type="button"
          disabled={busy || active || nothingToDo}
          aria-describedby={nothingToDo ? "run-now-why" : undefined}
          onClick={() => onAction("run")}
        >
          Run now
        </button>
        <button
          type="button"
          className="secondary"
          disabled={busy || status !== "running"}
          onClick={() => onAction("pause")}
        >
          Pause
        </button>
        <button
          type="button"
          className="secondary"
          disabled={busy || status !== "paused"}
          onClick={() => onAction("resume")}
        >
          Resume
        </button>
        <Confirm
          trigger={
            <button
              type="button"
              className="danger"
              disabled={busy || (status !== "running" && status !== "paused")}
            >
              Cancel
            </button>
          }
          title="Cancel this run?"
          description="The item in flight finishes; nothing else is done. What the run made so far is kept, and the next run picks up the rest."
          keep="Keep running"
          confirm="Cancel the run"
          onConfirm={() => onAction("cancel")}
        />
      </div>
      {!active && awaiting > 0 && (
        <p className="note" data-testid="awaiting-review">
          {awaiting === 1 ? "1 article awaits" : `${awaiting} articles await`} your review:{" "}
          <Link to="/content">approve or reject under Content</Link>.
        </p>
      )}
      {nothingToDo && (
        <p className="hint" id="run-now-why" data-testid="run-now-why">
          Add keywords first: nothing waits in any enabled stage.{" "}
          <Link to="/keywords">Add keywords</Link>
        </p>
      )}
      <ErrorNote error={error} />
    </section>
  );
}

/** The run's status, said once per change to screen readers (not every progress tick). */
export function RunAnnouncer({ run }: { run: Schemas["RunSummary"] | null | undefined }) {
  const text = run ? `Run ${run.status.replaceAll("_", " ")}` : "";
  return (
    <p className="sr-only" role="status" aria-live="polite" data-testid="run-announcer">
      {text}
    </p>
  );
}
