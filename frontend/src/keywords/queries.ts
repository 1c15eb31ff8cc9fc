import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import type { paths } from "../api/schema";

export type Keyword = Schemas["KeywordOut"];
export type KeywordStatus = Schemas["KeywordStatus"];
type ListQuery = paths["/api/v1/planner/keywords/"]["get"]["parameters"]["query"];

/** Every keyword query of a site starts with its site's key, so one call refreshes them all. */
export const keywordKeys = {
  site: (siteId: number) => ["keywords", siteId] as const,
  list: (query: ListQuery) => [...keywordKeys.site(query.site_id), query] as const,
};

export const keywordQueries = {
  list: (query: ListQuery) =>
    queryOptions({
      queryKey: keywordKeys.list(query),
      queryFn: () => unwrap(api.GET("/api/v1/planner/keywords/", { params: { query } })),
    }),
};

/** Adds keywords by name: the answer counts those added, the duplicates and the rows in error. */
export function useAddKeywords(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (keywords: string[]) =>
      unwrap(
        api.POST("/api/v1/planner/keywords/", {
          params: { query: { site_id: siteId } },
          body: { keywords: keywords.map((keyword) => ({ keyword })) },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keywordKeys.site(siteId) }),
  });
}

export function useImportKeywords(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (csv: File) =>
      unwrap(
        api.POST("/api/v1/planner/keywords/import/", {
          params: { query: { site_id: siteId } },
          body: { file: csv as unknown as string },
          bodySerializer: () => {
            const form = new FormData();
            form.append("file", csv);
            return form;
          },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keywordKeys.site(siteId) }),
  });
}

/** Disables an enabled keyword, enables a disabled one. */
export function useToggleKeyword(siteId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (keyword: Keyword) =>
      unwrap(
        api.PATCH("/api/v1/planner/keywords/{keyword_id}/", {
          params: { path: { keyword_id: keyword.id } },
          body: { disabled: !keyword.disabled },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keywordKeys.site(siteId) }),
  });
}
