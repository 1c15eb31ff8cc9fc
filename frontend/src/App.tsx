import { Navigate, NavLink, Route, Routes } from "react-router-dom";
import { SessionProvider, useSession } from "./session";
import { AutomationPage } from "./pages/Automation";
import { ContentDetailPage } from "./pages/ContentDetail";
import { ContentPage } from "./pages/Content";
import { KeysPage } from "./pages/Keys";
import { KeywordsPage } from "./pages/Keywords";
import { LoginPage } from "./pages/Login";
import { PublishingPage } from "./pages/Publishing";
import { RunDetailPage } from "./pages/RunDetail";
import { SitesPage } from "./pages/Sites";

export function App() {
  return (
    <SessionProvider>
      <Shell />
    </SessionProvider>
  );
}

function Shell() {
  const session = useSession();
  if (!session.signedIn) return <LoginPage />;
  return (
    <div className="shell">
      <header className="topbar">
        <strong className="brand">Content automation</strong>
        <nav>
          <NavLink to="/automation">Automation</NavLink>
          <NavLink to="/keywords">Keywords</NavLink>
          <NavLink to="/content">Content</NavLink>
          <NavLink to="/publishing">Publishing</NavLink>
          <NavLink to="/sites">Sites</NavLink>
          <NavLink to="/keys">API keys</NavLink>
        </nav>
        <label className="site-picker">
          Site
          <select
            aria-label="Site"
            value={session.siteId ?? ""}
            onChange={(e) => session.setSiteId(Number(e.target.value))}
          >
            {session.sites.map((site) => (
              <option key={site.id} value={site.id}>
                {site.name}
              </option>
            ))}
          </select>
        </label>
        <span className="account" data-testid="credits">
          {session.me ? `${session.me.account.name} · ${session.me.account.credits} credits` : ""}
        </span>
        <button type="button" className="link" onClick={session.signOut}>
          Sign out
        </button>
      </header>
      <main>
        <Routes>
          <Route path="/automation" element={<AutomationPage />} />
          <Route path="/automation/runs/:runId" element={<RunDetailPage />} />
          <Route path="/keywords" element={<KeywordsPage />} />
          <Route path="/content" element={<ContentPage />} />
          <Route path="/content/:contentId" element={<ContentDetailPage />} />
          <Route path="/publishing" element={<PublishingPage />} />
          <Route path="/sites" element={<SitesPage />} />
          <Route path="/keys" element={<KeysPage />} />
          <Route path="*" element={<Navigate to="/keywords" replace />} />
        </Routes>
      </main>
    </div>
  );
}
