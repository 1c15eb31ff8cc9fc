import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { ActivityLog } from "../automation/ActivityLog";
import { BudgetCard } from "../automation/BudgetCard";
import { ConfigDialog } from "../automation/ConfigDialog";
import { CreditsCard } from "../automation/CreditsCard";
import { ProcessingCard } from "../automation/ProcessingCard";
import { RunHistory } from "../automation/RunHistory";
import { StageCards } from "../automation/StageCards";
import { formatCredits, StatusBadge } from "../automation/format";
import {
  automationKeys,
  automationQueries,
  POLL_MS,
  useRunAction,
  useSiteRefresh,
  type LogSize,
  type Progress,
} from "../automation/queries";
import { useRunStream } from "../automation/useRunStream";
import { ErrorNote, NoSite } from "../components/ui";
import { useSession } from "../session";

type Provider = { name: string; text_model?: string | null; image_model?: string | null };

// SPEC §10: the UI says which provider writes, above all when it is the built-in one.
function providerNote(provider: Provider | undefined): string {
  if (!provider) return "";
  if (provider.name === "local") {
    return "AI provider: local (built in, no network): clusters, ideas, articles and images are made on this server.";
  }
  return `AI provider: ${provider.name} (text: ${provider.text_model}, images: ${provider.image_model})`;
}

export function AutomationPage() {
  const { siteId } = useSession();
  if (siteId === null) return <NoSite />;
  return <Automation key={siteId} siteId={siteId} />;
}

function Automation({ siteId }: { siteId: number }) {
  const queryClient = useQueryClient();
  const { me } = useSession();
  const [configOpen, setConfigOpen] = useState(false);
  const [logSize, setLogSize] = useState<LogSize>(100);

  // Set while the active run's event stream is down: then the page polls every 3 s.
  const [polling, setPolling] = useState(false);
  const refetchInterval = polling ? POLL_MS : false;
  const currentRun = useQuery({ ...automationQueries.currentRun(siteId), refetchInterval });
  const active = currentRun.data?.run ?? undefined;
  const activeId = active?.run_id;

  const refreshSite = useSiteRefresh(siteId);
  // The active run, else the latest: what the progress bar, the cards and the log show.
  const progress = useQuery({ ...automationQueries.progress(siteId), refetchInterval });
  const shownId = activeId ?? progress.data?.run?.run_id;

  const stream = useRunStream(shownId, activeId !== undefined, {
    onProgress: (next: Progress) => {
      queryClient.setQueryData(automationQueries.progress(siteId).queryKey, next);
      for (const key of [
        automationKeys.currentRun(siteId),
        automationKeys.processing(siteId),
        automationKeys.overview(siteId),
        automationKeys.balance,
      ]) {
        void queryClient.invalidateQueries({ queryKey: key });
      }
    },
    onEnd: () =>
      void queryClient.invalidateQueries({ queryKey: automationKeys.currentRun(siteId) }),
  });
  // The stream's lines are the log unless it broke (then the log comes from logs/).
  const streaming = stream !== null && stream.state !== "broken";
  const shouldPoll = activeId !== undefined && stream?.state === "broken";
  if (shouldPoll !== polling) setPolling(shouldPoll);

  const latest = useQuery(automationQueries.run(activeId ? undefined : shownId));
  const shownRun = active ?? latest.data;
  const overview = useQuery(automationQueries.overview(siteId));
  const processing = useQuery({
    ...automationQueries.processing(siteId, activeId),
    refetchInterval,
  });
  const log = useQuery({
    ...automationQueries.logs(shownId, logSize),
    enabled: !streaming,
    refetchInterval,
  });
  const action = useRunAction(siteId, activeId);

  const resetAction = action.reset;
  // A run that stops being active (seen by the stream or by polling) changed everything else.
  const wasActive = useRef<string | undefined>(undefined);
  useEffect(() => {
    const ended = wasActive.current;
    wasActive.current = activeId;
    if (ended && ended !== activeId) {
      void queryClient.invalidateQueries({ queryKey: automationKeys.run(ended) });
      void refreshSite();
      resetAction();
    }
  }, [activeId, queryClient, refreshSite, resetAction]);

  const status = active?.status;
  const busy = action.isPending || currentRun.isPending;
  const summary = progress.data?.run ?? null;
  const global = progress.data?.global_progress;
  const percentage = global?.percentage ?? 0;
  const lines = streaming ? stream.lines : (log.data?.lines ?? []);

  return (
    <>
      <div className="section-head">
        <h1>Automation</h1>
        <button type="button" className="secondary" onClick={() => setConfigOpen(true)}>
          Configure
        </button>
      </div>
      <p className="hint" data-testid="ai-provider">
        {providerNote(me?.ai_provider)}
      </p>

      <section className="grid2">
        <CreditsCard siteId={siteId} />
        <section className="card" aria-label="Run">
          <h2>Run</h2>
          <p>
            Status:{" "}
            {summary ? (
              <>
                <StatusBadge status={summary.status} testId="run-status" /> ·{" "}
                <Link
                  to={`/automation/runs/${encodeURIComponent(summary.run_id)}`}
                  className="mono"
                >
                  {summary.run_id}
                </Link>{" "}
                · stage {summary.current_stage}
                {summary.stopped_reason && (
                  <> · stopped: {summary.stopped_reason.replaceAll("_", " ")}</>
                )}
              </>
            ) : (
              <span data-testid="run-status">never run</span>
            )}
          </p>
          <div
            className="progress"
            role="progressbar"
            aria-label="Overall progress"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={percentage}
          >
            <div style={{ width: `${percentage}%` }} />
          </div>
          <p className="hint">
            <span data-testid="global-percentage">{percentage}%</span> ·{" "}
            <span data-testid="global-items">
              {global ? `${global.completed_items} of ${global.total_items} items` : "…"}
            </span>
            {progress.data?.run && (
              <>
                {" "}
                · {formatCredits(progress.data.metrics.credits_used)} credits ·{" "}
                {progress.data.metrics.duration_seconds} s
              </>
            )}
          </p>
          <div className="actions">
            <button
              type="button"
              disabled={busy || active !== undefined}
              onClick={() => action.mutate("run")}
            >
              Run now
            </button>
            <button
              type="button"
              disabled={busy || status !== "running"}
              onClick={() => action.mutate("pause")}
            >
              Pause
            </button>
            <button
              type="button"
              disabled={busy || status !== "paused"}
              onClick={() => action.mutate("resume")}
            >
              Resume
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy || (status !== "running" && status !== "paused")}
              onClick={() => action.mutate("cancel")}
            >
              Cancel
            </button>
          </div>
          <ErrorNote error={action.error ?? currentRun.error ?? progress.error} />
          {action.data && (
            <p role="status" className="hint">
              {action.data.message}
            </p>
          )}
        </section>
      </section>

      <StageCards
        overview={overview.data?.stages}
        progress={progress.data?.stages}
        run={shownRun}
      />
      <ProcessingCard
        processing={activeId && processing.data?.run_id === activeId ? processing.data : undefined}
      />
      <ActivityLog
        lines={lines}
        size={logSize}
        onSizeChange={setLogSize}
        mode={activeId === undefined ? "static" : stream?.state === "open" ? "live" : "polling"}
      />
      <RunHistory siteId={siteId} />
      <BudgetCard siteId={siteId} />
      <ConfigDialog siteId={siteId} open={configOpen} onClose={() => setConfigOpen(false)} />
    </>
  );
}
