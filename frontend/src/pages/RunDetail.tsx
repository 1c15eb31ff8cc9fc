import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ActivityLog } from "../automation/ActivityLog";
import {
  STAGE_NUMBERS,
  stageName,
  stageResult,
  StatusBadge,
  STOPPED_TEXT,
} from "../automation/format";
import {
  applyProgress,
  automationKeys,
  automationQueries,
  POLL_MS,
  type LogSize,
} from "../automation/queries";
import { StageResultTable } from "../automation/StageResultTable";
import { useRunStream } from "../automation/useRunStream";
import { ErrorNote, useDocumentTitle } from "../components/ui";
import { formatCredits, formatDate, formatDuration, runName, secondsBetween } from "../lib/format";
import { isActive, timeLeft } from "../lib/progress";
import { useSession } from "../session";

/** One run: its outcome, each stage's result, and its log. */
export function RunDetailPage() {
  const runId = useParams().runId ?? "";
  const queryClient = useQueryClient();
  const { sites } = useSession();
  const [logSize, setLogSize] = useState<LogSize>(100);
  const [polling, setPolling] = useState(false);
  const refetchInterval = polling ? POLL_MS : false;
  const run = useQuery({ ...automationQueries.run(runId), refetchInterval });
  const active = isActive(run.data?.status);
  const siteId = run.data?.site_id;
  const timeZone = sites.find((s) => s.id === siteId)?.timezone;
  const progress = useQuery({ ...automationQueries.progress(siteId, runId), refetchInterval });
  const stream = useRunStream(runId, active, {
    onProgress: (next) => {
      if (siteId !== undefined) {
        const key = automationQueries.progress(siteId, runId).queryKey;
        const before = queryClient.getQueryData(key);
        queryClient.setQueryData(key, next);
        // The top bar's credits follow the run's spend here too.
        applyProgress(queryClient, siteId, next, before?.metrics.credits_used);
      }
      void queryClient.invalidateQueries({ queryKey: automationKeys.run(runId) });
    },
    onEnd: () => void queryClient.invalidateQueries({ queryKey: automationKeys.run(runId) }),
  });
  const streaming = stream !== null && stream.state !== "broken";
  const shouldPoll = active && stream?.state === "broken";
  if (shouldPoll !== polling) setPolling(shouldPoll);
  const log = useQuery({
    ...automationQueries.logs(runId, logSize),
    enabled: run.isSuccess && !streaming,
    refetchInterval,
  });

  const r = run.data;
  useDocumentTitle(r ? runName(r.started_at, timeZone) : "Run");
  const global = progress.data?.global_progress;
  const left = timeLeft(global, active);
  return (
    <>
      <p>
        <Link to="/automation">← Automation</Link>
      </p>
      <ErrorNote error={run.error ?? progress.error ?? log.error} />
      {r && (
        <>
          <section className="card">
            <h1>{runName(r.started_at, timeZone)}</h1>
            {r.stopped_reason ? (
              <p className={`banner banner-${r.stopped_reason}`} data-testid="stopped-reason">
                <strong>Stopped: {r.stopped_reason.replaceAll("_", " ")}</strong>.{" "}
                {STOPPED_TEXT[r.stopped_reason]}
              </p>
            ) : (
              <p className="banner">
                <strong>Not stopped yet</strong>: the run is {r.status}.
              </p>
            )}
            {r.error_message && (
              <p className="error" data-testid="error-message">
                Error: {r.error_message}
              </p>
            )}
            <dl className="meta">
              <dt>Status</dt>
              <dd>
                <StatusBadge status={r.status} testId="detail-status" />
              </dd>
              <dt>Run id</dt>
              <dd className="mono">{r.run_id}</dd>
              <dt>Trigger</dt>
              <dd>{r.trigger_type}</dd>
              <dt>Stage</dt>
              <dd>
                {r.current_stage} of 7: {stageName(r.current_stage)}
              </dd>
              <dt>Started</dt>
              <dd>{formatDate(r.started_at, timeZone)}</dd>
              {r.paused_at && (
                <>
                  <dt>Paused</dt>
                  <dd>{formatDate(r.paused_at, timeZone)}</dd>
                </>
              )}
              {r.resumed_at && (
                <>
                  <dt>Resumed</dt>
                  <dd>{formatDate(r.resumed_at, timeZone)}</dd>
                </>
              )}
              {r.cancelled_at && (
                <>
                  <dt>Cancelled</dt>
                  <dd>{formatDate(r.cancelled_at, timeZone)}</dd>
                </>
              )}
              <dt>Ended</dt>
              <dd>{formatDate(r.completed_at, timeZone)}</dd>
              <dt>Duration</dt>
              <dd>
                {formatDuration(
                  progress.data?.metrics.duration_seconds ??
                    secondsBetween(r.started_at, r.completed_at),
                )}
              </dd>
              <dt>Credits spent</dt>
              <dd data-testid="detail-credits">
                {/* The live figure where the stream has brought one, as the top bar's. */}
                {formatCredits(progress.data?.metrics.credits_used ?? r.total_credits_used)} credits
              </dd>
              {global && (
                <>
                  <dt>Progress</dt>
                  <dd>
                    {global.percentage}% · {global.completed_items} of {global.total_items} items
                    {left !== null && <> · {left}</>}
                  </dd>
                </>
              )}
            </dl>
          </section>

          <section className="stage-results" aria-label="Stage results">
            {STAGE_NUMBERS.map((n) => {
              const stage = progress.data?.stages.find((s) => s.number === n);
              return (
                <div key={n} className="card">
                  <StageResultTable
                    number={n}
                    name={stage?.name}
                    status={stage?.status ?? "pending"}
                    result={stageResult(r, n)}
                    timeZone={timeZone}
                  />
                </div>
              );
            })}
          </section>

          <ActivityLog
            lines={streaming ? stream.lines : (log.data?.lines ?? [])}
            size={logSize}
            onSizeChange={setLogSize}
            mode={!active ? "static" : stream?.state === "open" ? "live" : "polling"}
          />
        </>
      )}
    </>
  );
}
