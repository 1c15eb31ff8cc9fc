import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import type { paths } from "../api/schema";

export type Settings = Schemas["PublishingSettingsOut"];
export type Integration = Schemas["IntegrationOut"];
type QueueQuery = paths["/api/v1/publishing/queue/"]["get"]["parameters"]["query"];
export type QueueStatus = NonNullable<QueueQuery["status"]>;

/** The publish cron works every minute: the queue page follows it at this pace. */
export const QUEUE_POLL_MS = 15_000;

/** Every site-scoped publishing query starts with this key, so one call refreshes them all. */
export const publishingKeys = {
  site: (siteId: number) => ["publishing", siteId] as const,
  settings: (siteId: number) => [...publishingKeys.site(siteId), "settings"] as const,
  integration: (siteId: number) => [...publishingKeys.site(siteId), "integration"] as const,
  queue: (siteId: number) => [...publishingKeys.site(siteId), "queue"] as const,
  queuePage: (query: QueueQuery) => [...publishingKeys.queue(query.site_id), query] as const,
};

export const publishingQueries = {
  settings: (siteId: number) =>
    queryOptions({
      queryKey: publishingKeys.settings(siteId),
      queryFn: () =>
        unwrap(api.GET("/api/v1/publishing/settings/", { params: { query: { site_id: siteId } } })),
    }),
  integration: (siteId: number) =>
    queryOptions({
      queryKey: publishingKeys.integration(siteId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/publishing/integration/", { params: { query: { site_id: siteId } } }),
        ),
    }),
  queue: (query: QueueQuery) =>
    queryOptions({
      queryKey: publishingKeys.queuePage(query),
      queryFn: () => unwrap(api.GET("/api/v1/publishing/queue/", { params: { query } })),
      refetchInterval: QUEUE_POLL_MS,
    }),
};

/** Saved settings can schedule or unschedule articles: the queue refetches. */
export function useSaveSettings(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["PublishingSettingsUpdate"]) =>
      unwrap(
        api.PUT("/api/v1/publishing/settings/", { params: { query: { site_id: siteId } }, body }),
      ),
    onSuccess: (saved) => {
      queryClient.setQueryData(publishingQueries.settings(siteId).queryKey, saved);
      return queryClient.invalidateQueries({ queryKey: publishingKeys.queue(siteId) });
    },
  });
}

export function useSaveIntegration(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["IntegrationUpdate"]) =>
      unwrap(
        api.PUT("/api/v1/publishing/integration/", {
          params: { query: { site_id: siteId } },
          body,
        }),
      ),
    onSuccess: (saved) => {
      queryClient.setQueryData(publishingQueries.integration(siteId).queryKey, saved);
    },
  });
}

/** Puts a failed article back in the queue; the queue refetches whatever the answer. */
export function useRetryPublish(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (contentId: number) =>
      unwrap(
        api.POST("/api/v1/publishing/content/{content_id}/retry/", {
          params: { path: { content_id: contentId } },
        }),
      ),
    onSettled: () => queryClient.invalidateQueries({ queryKey: publishingKeys.queue(siteId) }),
  });
}
