import {
  queryOptions,
  replaceEqualDeep,
  skipToken,
  useMutation,
  useQueryClient,
  type QueryClient,
} from "@tanstack/react-query";
import { useCallback } from "react";
import { accountKeys } from "../account/queries";
import { api, unwrap, type Schemas } from "../api/client";
import { isActive, newerProgress } from "../lib/progress";
import type { HistoryQuery } from "./historyFilters";

export type Run = Schemas["RunOut"];
export type RunStatus = Schemas["RunStatus"];
export type Progress = Schemas["RunProgress"];
/**
 * A history row, and for the active run the seconds it has run as its last progress event
 * counted them (the server's clock, as the run card's; the browser's may be off).
 */
export type HistoryItem = Schemas["RunSummary"] & { elapsed_seconds?: number };
type HistoryData = Omit<Schemas["Page_RunSummary_"], "items"> & { items: HistoryItem[] };

export const LOG_SIZES = [50, 100, 200, 500] as const;
export type LogSize = (typeof LOG_SIZES)[number];
/** While a run is active and its event stream is down, the page polls this often. */
export const POLL_MS = 3000;

/** A page of the history and its filters (the endpoint's own parameters). */
type HistoryPage = { limit: number; offset: number } & HistoryQuery;

/** Every site-scoped automation query starts with this key, so one call refreshes them all. */
export const automationKeys = {
  site: (siteId: number) => ["automation", siteId] as const,
  config: (siteId: number) => [...automationKeys.site(siteId), "config"] as const,
  estimate: (siteId: number) => [...automationKeys.site(siteId), "estimate"] as const,
  currentRun: (siteId: number) => [...automationKeys.site(siteId), "current_run"] as const,
  overview: (siteId: number) => [...automationKeys.site(siteId), "pipeline_overview"] as const,
  processing: (siteId: number) => [...automationKeys.site(siteId), "current_processing"] as const,
  processingOf: (siteId: number, runId: string | undefined) =>
    [...automationKeys.processing(siteId), runId] as const,
  history: (siteId: number) => [...automationKeys.site(siteId), "history"] as const,
  historyPage: (siteId: number, page: HistoryPage) =>
    [...automationKeys.history(siteId), page] as const,
  progress: (siteId: number, runId?: string) =>
    [...automationKeys.site(siteId), "run_progress", runId ?? "latest"] as const,
  // Outside the site's key: a run's own record and log, the account's balance, and the budget
  // (which no run changes) are refreshed by name.
  logs: (runId: string, lines: number) => ["automation-logs", runId, lines] as const,
  run: (runId: string) => ["automation-run", runId] as const,
  balance: ["balance"] as const,
  budget: (siteId: number) => ["ai-budget", siteId] as const,
};

/** A query whose argument is missing (no run to show yet) waits for it: `skipToken`. */
export const automationQueries = {
  config: (siteId: number) =>
    queryOptions({
      queryKey: automationKeys.config(siteId),
      queryFn: () =>
        unwrap(api.GET("/api/v1/automation/config/", { params: { query: { site_id: siteId } } })),
    }),
  estimate: (siteId: number) =>
    queryOptions({
      queryKey: automationKeys.estimate(siteId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/automation/estimate/", { params: { query: { site_id: siteId } } }),
        ),
    }),
  currentRun: (siteId: number) =>
    queryOptions({
      queryKey: automationKeys.currentRun(siteId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/automation/current_run/", { params: { query: { site_id: siteId } } }),
        ),
    }),
  overview: (siteId: number) =>
    queryOptions({
      queryKey: automationKeys.overview(siteId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/automation/pipeline_overview/", {
            params: { query: { site_id: siteId } },
          }),
        ),
    }),
  processing: (siteId: number, runId: string | undefined) =>
    queryOptions({
      queryKey: automationKeys.processingOf(siteId, runId),
      queryFn:
        runId === undefined
          ? skipToken
          : () =>
              unwrap(
                api.GET("/api/v1/automation/current_processing/", {
                  params: { query: { site_id: siteId, run_id: runId } },
                }),
              ),
    }),
  history: (siteId: number, page: HistoryPage) =>
    queryOptions({
      queryKey: automationKeys.historyPage(siteId, page),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/automation/history/", {
            params: { query: { site_id: siteId, ...page } },
          }),
        ),
    }),
  /** The run's progress, or without `runId` the active run's, else the latest run's. */
  progress: (siteId: number | undefined, runId?: string) =>
    queryOptions({
      queryKey: automationKeys.progress(siteId ?? 0, runId),
      // The stream's events are set into this query too: an older answer never replaces them.
      structuralSharing: (shown: unknown, next: unknown) =>
        replaceEqualDeep(shown, newerProgress(shown as Progress | undefined, next as Progress)),
      queryFn:
        siteId === undefined
          ? skipToken
          : () =>
              unwrap(
                api.GET("/api/v1/automation/run_progress/", {
                  params: { query: { site_id: siteId, ...(runId ? { run_id: runId } : {}) } },
                }),
              ),
    }),
  run: (runId: string | undefined) =>
    queryOptions({
      queryKey: automationKeys.run(runId ?? ""),
      queryFn:
        runId === undefined
          ? skipToken
          : () =>
              unwrap(
                api.GET("/api/v1/automation/runs/{run_id}/", {
                  params: { path: { run_id: runId } },
                }),
              ),
      // A finished run never changes again.
      staleTime: (query) => (isActive(query.state.data?.status) ? 0 : Infinity),
    }),
  logs: (runId: string | undefined, lines: number) =>
    queryOptions({
      queryKey: automationKeys.logs(runId ?? "", lines),
      queryFn:
        runId === undefined
          ? skipToken
          : () =>
              unwrap(
                api.GET("/api/v1/automation/logs/", {
                  params: { query: { run_id: runId, lines } },
                }),
              ),
    }),
  balance: () =>
    queryOptions({
      queryKey: automationKeys.balance,
      queryFn: () => unwrap(api.GET("/api/v1/billing/balance/")),
    }),
  budget: (siteId: number) =>
    queryOptions({
      queryKey: automationKeys.budget(siteId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/billing/sites/{site_id}/ai-budget/", {
            params: { path: { site_id: siteId } },
          }),
        ),
    }),
};

/**
 * Refreshes what a run's start, steering or end changes: every site-scoped query, the balance
 * and the account's credits in the top bar.
 */
export function useSiteRefresh(siteId: number) {
  const queryClient = useQueryClient();
  return useCallback(
    () =>
      Promise.all([
        queryClient.invalidateQueries({ queryKey: automationKeys.site(siteId) }),
        queryClient.invalidateQueries({ queryKey: automationKeys.balance }),
        queryClient.invalidateQueries({ queryKey: accountKeys.me }),
      ]),
    [queryClient, siteId],
  );
}

export type RunAction = "run" | "pause" | "resume" | "cancel";

/** Starts a run of the site, or steers its active run `runId`; the site refreshes either way. */
export function useRunAction(siteId: number, runId: string | undefined) {
  const refreshSite = useSiteRefresh(siteId);
  return useMutation({
    mutationFn: (what: RunAction) => {
      if (what === "run") {
        return unwrap(
          api.POST("/api/v1/automation/run_now/", { params: { query: { site_id: siteId } } }),
        );
      }
      const params = { params: { query: { run_id: runId ?? "" } } };
      if (what === "pause") return unwrap(api.POST("/api/v1/automation/pause/", params));
      if (what === "resume") return unwrap(api.POST("/api/v1/automation/resume/", params));
      return unwrap(api.POST("/api/v1/automation/cancel/", params));
    },
    onSettled: refreshSite,
  });
}

/** A saved config can change what the next run would cost: the estimate refetches. */
export function useSaveConfig(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["ConfigUpdate"]) =>
      unwrap(
        api.PUT("/api/v1/automation/update_config/", {
          params: { query: { site_id: siteId } },
          body,
        }),
      ),
    onSuccess: (saved) => {
      queryClient.setQueryData(automationQueries.config(siteId).queryKey, saved);
      return queryClient.invalidateQueries({ queryKey: automationKeys.estimate(siteId) });
    },
  });
}

export function useSaveBudget(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["AIBudgetIn"]) =>
      unwrap(
        api.PUT("/api/v1/billing/sites/{site_id}/ai-budget/", {
          params: { path: { site_id: siteId } },
          body,
        }),
      ),
    onSuccess: (saved) => {
      queryClient.setQueryData(automationQueries.budget(siteId).queryKey, saved);
    },
  });
}

/**
 * A progress event changes figures shown elsewhere on the screen: the history's row of the run
 * is patched in place (status, stage, credits and time so far), and where the run spent credits since the last event, the balance and the
 * account's credits in the top bar are read again, so that every number on screen agrees.
 */
export function applyProgress(
  queryClient: QueryClient,
  siteId: number,
  progress: Progress,
  spentBefore: number | undefined,
) {
  const run = progress.run;
  if (!run) return;
  queryClient.setQueriesData<HistoryData>({ queryKey: automationKeys.history(siteId) }, (page) =>
    page
      ? {
          ...page,
          items: page.items.map((item) =>
            item.run_id === run.run_id
              ? {
                  ...item,
                  ...run,
                  total_credits_used: progress.metrics.credits_used,
                  elapsed_seconds: progress.metrics.duration_seconds,
                }
              : item,
          ),
        }
      : page,
  );
  if (spentBefore !== progress.metrics.credits_used) {
    void queryClient.invalidateQueries({ queryKey: automationKeys.balance });
    void queryClient.invalidateQueries({ queryKey: accountKeys.me });
  }
}
