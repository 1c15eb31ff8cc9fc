import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import type { paths } from "../api/schema";

export type Settings = Schemas["PublishingSettingsOut"];
export type Integration = Schemas["IntegrationOut"];
type QueueQuery = paths["/api/v1/publishing/queue/"]["get"]["parameters"]["query"];
export type QueueStatus = NonNullable<QueueQuery["status"]>;

/** The publish cron works every minute: the queue page follows it at this pace. */
export const QUEUE_POLL_MS = 15_000;

/** Every site-scoped publishing query starts with this key, so one call refreshes them all. */
export const keys = {
  site: (siteId: number) => ["publishing", siteId] as const,
  settings: (siteId: number) => ["publishing", siteId, "settings"] as const,
  integration: (siteId: number) => ["publishing", siteId, "integration"] as const,
  queue: (siteId: number) => ["publishing", siteId, "queue"] as const,
};

export function useSettings(siteId: number) {
  return useQuery({
    queryKey: keys.settings(siteId),
    queryFn: () =>
      unwrap(api.GET("/api/v1/publishing/settings/", { params: { query: { site_id: siteId } } })),
  });
}

export function useIntegration(siteId: number) {
  return useQuery({
    queryKey: keys.integration(siteId),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/publishing/integration/", { params: { query: { site_id: siteId } } }),
      ),
  });
}
