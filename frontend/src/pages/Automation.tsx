import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { ActivityLog } from "../automation/ActivityLog";
import { ConfigDialog } from "../automation/ConfigDialog";
import { CreditsCard } from "../automation/CreditsCard";
import { ProcessingCard } from "../automation/ProcessingCard";
import { RunAnnouncer, RunCard } from "../automation/RunCard";
import { RunHistory } from "../automation/RunHistory";
import { ScheduleNote } from "../automation/ScheduleNote";
import { StageCards } from "../automation/StageCards";
import { awaitingReview, pendingForRun, stageResult } from "../automation/format";
import {
  applyProgress,
  automationKeys,
  automationQueries,
  POLL_MS,
  useRunAction,
  useSiteRefresh,
  type LogSize,
  type Progress,
  type RunAction,
} from "../automation/queries";
import { useRunStream } from "../automation/useRunStream";
import { FirstRunGuide } from "../components/Guide";
import { useNotify } from "../components/Toasts";
import { NoSite, useDocumentTitle } from "../components/ui";
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
  useDocumentTitle("Automation");
  const { siteId } = useSession();
  if (siteId === null) return <NoSite />;
  return <Automation key={siteId} siteId={siteId} />;
}

function Automation({ siteId }: { siteId: number }) {
  const queryClient = useQueryClient();
  const notify = useNotify();
  const { me, sites } = useSession();
  const timeZone = sites.find((s) => s.id === siteId)?.timezone;
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
  const progressQuery = automationQueries.progress(siteId);
  const progress = useQuery({ ...progressQuery, refetchInterval });
  const shownId = activeId ?? progress.data?.run?.run_id;

  const stream = useRunStream(shownId, activeId !== undefined, {
    onProgress: (next: Progress) => {
      const before = queryClient.getQueryData(progressQuery.queryKey);
      queryClient.setQueryData(progressQuery.queryKey, next);
      applyProgress(queryClient, siteId, next, before?.metrics.credits_used);
      for (const key of [
        automationKeys.currentRun(siteId),
        automationKeys.processing(siteId),
        automationKeys.overview(siteId),
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
  const config = useQuery(automationQueries.config(siteId));
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

  const run = (what: RunAction) =>
    action.mutate(what, { onSuccess: (answer) => notify(answer.message) });
  const lines = streaming ? stream.lines : (log.data?.lines ?? []);
  const pending = pendingForRun(overview.data?.stages, config.data);
  const neverRun = progress.isSuccess && !progress.data.run;

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
      <ScheduleNote config={config.data} timeZone={timeZone} />
      {neverRun && (
        <FirstRunGuide step={pending === 0 ? 1 : 2}>
          {pending === 0 ? (
            <>
              No run yet, and nothing to work on: <Link to="/keywords">add keywords</Link> first,
              then come back and press Run now.
            </>
          ) : (
            <>No run yet: press Run now to turn the waiting keywords into articles.</>
          )}
        </FirstRunGuide>
      )}

      <section className="grid2">
        <RunCard
          progress={progress.data}
          awaiting={shownRun ? awaitingReview(stageResult(shownRun, 7)) : 0}
          status={active?.status}
          busy={action.isPending || currentRun.isPending}
          pending={pending}
          error={action.error ?? currentRun.error ?? progress.error}
          timeZone={timeZone}
          onAction={run}
        />
        <CreditsCard
          siteId={siteId}
          spent={activeId !== undefined ? progress.data?.metrics.credits_used : undefined}
        />
      </section>
      <RunAnnouncer run={progress.data?.run} />

      <StageCards
        overview={overview.data?.stages}
        progress={progress.data?.stages}
        config={config.data}
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
      <RunHistory siteId={siteId} timeZone={timeZone} />
      <p className="hint">
        How a run's credit cap is shared between the AI functions:{" "}
        <Link to={`/sites/${siteId}/settings`}>AI budget allocation</Link> in the site's settings.
      </p>
      <ConfigDialog
        siteId={siteId}
        open={configOpen}
        onClose={() => setConfigOpen(false)}
        timeZone={timeZone}
      />
    </>
  );
}
