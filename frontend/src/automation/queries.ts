import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";

export type Run = Schemas["RunOut"];
export type RunStatus = Schemas["RunStatus"];
export type Progress = Schemas["RunProgress"];

export const LOG_SIZES = [50, 100, 200, 500] as const;
export type LogSize = (typeof LOG_SIZES)[number];
/** While a run is active and its event stream is down, the page polls this often. */
export const POLL_MS = 3000;

/** Every site-scoped automation query starts with this key, so one call refreshes them all. */
export const keys = {
  site: (siteId: number) => ["automation", siteId] as const,
  config: (siteId: number) => ["automation", siteId, "config"] as const,
  estimate: (siteId: number) => ["automation", siteId, "estimate"] as const,
  currentRun: (siteId: number) => ["automation", siteId, "current_run"] as const,
  overview: (siteId: number) => ["automation", siteId, "pipeline_overview"] as const,
  processing: (siteId: number) => ["automation", siteId, "current_processing"] as const,
  history: (siteId: number) => ["automation", siteId, "history"] as const,
  progress: (siteId: number, runId?: string) =>
    ["automation", siteId, "run_progress", runId ?? "latest"] as const,
  logs: (runId: string, lines: number) => ["automation-logs", runId, lines] as const,
  run: (runId: string) => ["automation-run", runId] as const,
  balance: ["balance"] as const,
};

export function isActive(status: RunStatus | undefined): boolean {
  return status === "running" || status === "paused";
}

export function useRun(runId: string | undefined, poll: boolean) {
  return useQuery({
    queryKey: keys.run(runId ?? ""),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/automation/runs/{run_id}/", { params: { path: { run_id: runId ?? "" } } }),
      ),
    enabled: runId !== undefined,
    // A finished run never changes again.
    staleTime: (query) => (isActive(query.state.data?.status) ? 0 : Infinity),
    refetchInterval: poll ? POLL_MS : false,
  });
}

export function useRunLog(
  runId: string | undefined,
  lines: number,
  enabled: boolean,
  poll: boolean,
) {
  return useQuery({
    queryKey: keys.logs(runId ?? "", lines),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/automation/logs/", { params: { query: { run_id: runId ?? "", lines } } }),
      ),
    enabled: enabled && runId !== undefined,
    refetchInterval: poll ? POLL_MS : false,
  });
}

export function useRunProgress(
  siteId: number | undefined,
  runId: string | undefined,
  poll: boolean,
) {
  return useQuery({
    queryKey: keys.progress(siteId ?? 0, runId),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/automation/run_progress/", {
          params: { query: { site_id: siteId ?? 0, ...(runId ? { run_id: runId } : {}) } },
        }),
      ),
    enabled: siteId !== undefined,
    refetchInterval: poll ? POLL_MS : false,
  });
}
