import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { accountQueries } from "./account/queries";
import { api, getApiKey, setApiKey, type Schemas } from "./api/client";

type Session = {
  signedIn: boolean;
  signIn: (key: string) => void;
  signOut: () => void;
  me?: Schemas["MeOut"];
  sites: Schemas["SiteOut"][];
  siteId: number | null;
  setSiteId: (id: number) => void;
};

const SessionContext = createContext<Session | null>(null);
const SITE_STORAGE = "automation.siteId";

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [signedIn, setSignedIn] = useState(() => getApiKey() !== null);
  const [chosenSite, setChosenSite] = useState<number | null>(() => {
    const stored = localStorage.getItem(SITE_STORAGE);
    return stored ? Number(stored) : null;
  });

  const me = useQuery({ ...accountQueries.me(), enabled: signedIn });
  const sites = useQuery({ ...accountQueries.sites(), enabled: signedIn });

  const signIn = useCallback((key: string) => {
    setApiKey(key);
    setSignedIn(true);
  }, []);
  const signOut = useCallback(() => {
    // Revoke the key on the server too; the local session ends whatever it answers.
    void api.POST("/api/v1/auth/logout").finally(() => {
      setApiKey(null);
      setSignedIn(false);
      queryClient.clear();
    });
  }, [queryClient]);
  const setSiteId = useCallback((id: number) => {
    localStorage.setItem(SITE_STORAGE, String(id));
    setChosenSite(id);
  }, []);

  const failed = me.error ?? sites.error;
  const value = useMemo<Session>(() => {
    const siteList = sites.data?.items ?? [];
    const known = siteList.some((s) => s.id === chosenSite);
    return {
      signedIn: signedIn && getApiKey() !== null && !failed,
      signIn,
      signOut,
      me: me.data,
      sites: siteList,
      siteId: known ? chosenSite : (siteList[0]?.id ?? null),
      setSiteId,
    };
  }, [signedIn, failed, signIn, signOut, me.data, sites.data, chosenSite, setSiteId]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
