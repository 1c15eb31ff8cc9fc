import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";

/** The signed-in account's own queries: who it is, its sites and its API keys. */
export const accountKeys = {
  me: ["me"] as const,
  sites: ["sites"] as const,
  apiKeys: ["keys"] as const,
};

export const accountQueries = {
  me: () =>
    queryOptions({
      queryKey: accountKeys.me,
      queryFn: () => unwrap(api.GET("/api/v1/me")),
    }),
  sites: () =>
    queryOptions({
      queryKey: accountKeys.sites,
      queryFn: () => unwrap(api.GET("/api/v1/sites/", { params: { query: { limit: 500 } } })),
    }),
  apiKeys: () =>
    queryOptions({
      queryKey: accountKeys.apiKeys,
      queryFn: () => unwrap(api.GET("/api/v1/auth/keys/", { params: { query: { limit: 500 } } })),
    }),
};

type Credentials = { email: string; password: string };

/** Signs in with a password: answers the session's API key (nothing cached changes). */
export function useLogin() {
  return useMutation({
    mutationFn: (body: Credentials) => unwrap(api.POST("/api/v1/auth/login", { body })),
  });
}

type NewSite = { name: string; url: string; timezone: string };

/** Resolves once the site list holds the new site, so the caller can choose it. */
export function useCreateSite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: NewSite) => unwrap(api.POST("/api/v1/sites/", { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: accountKeys.sites }),
  });
}

export function useCreateApiKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => unwrap(api.POST("/api/v1/auth/keys/", { body: { name } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: accountKeys.apiKeys }),
  });
}

export function useRevokeApiKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: number) =>
      unwrap(api.DELETE("/api/v1/auth/keys/{key_id}/", { params: { path: { key_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: accountKeys.apiKeys }),
  });
}
