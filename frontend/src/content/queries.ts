import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import type { paths } from "../api/schema";

export type ContentStatus = Schemas["ContentStatus"];
type ListQuery = paths["/api/v1/writer/content/"]["get"]["parameters"]["query"];

/** The lists (every site's) refresh together; an article's own page is a separate entry. */
export const contentKeys = {
  all: ["content"] as const,
  lists: () => [...contentKeys.all, "list"] as const,
  list: (query: ListQuery) => [...contentKeys.lists(), query] as const,
  detail: (contentId: number) => [...contentKeys.all, "detail", contentId] as const,
};

export const contentQueries = {
  list: (query: ListQuery) =>
    queryOptions({
      queryKey: contentKeys.list(query),
      queryFn: () => unwrap(api.GET("/api/v1/writer/content/", { params: { query } })),
    }),
  detail: (contentId: number) =>
    queryOptions({
      queryKey: contentKeys.detail(contentId),
      queryFn: () =>
        unwrap(
          api.GET("/api/v1/writer/content/{content_id}/", {
            params: { path: { content_id: contentId } },
          }),
        ),
    }),
};

/** Approves or rejects an article: its page shows the answer, the lists refetch. */
export function useReviewContent(contentId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (decision: "approve" | "reject") => {
      const path = { params: { path: { content_id: contentId } } };
      return unwrap(
        decision === "approve"
          ? api.POST("/api/v1/writer/content/{content_id}/approve/", path)
          : api.POST("/api/v1/writer/content/{content_id}/reject/", path),
      );
    },
    onSuccess: (article) => {
      queryClient.setQueryData(contentQueries.detail(contentId).queryKey, article);
      return queryClient.invalidateQueries({ queryKey: contentKeys.lists() });
    },
  });
}
