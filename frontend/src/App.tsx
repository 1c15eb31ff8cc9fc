import { useEffect, useState } from "react";
import { Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { formatCredits } from "./lib/format";
import { SessionProvider, useSession } from "./session";
import { AutomationPage } from "./pages/Automation";
import { ContentDetailPage } from "./pages/ContentDetail";
import { ContentPage } from "./pages/Content";
import { KeysPage } from "./pages/Keys";
import { KeywordsPage } from "./pages/Keywords";
import { LoginPage } from "./pages/Login";
import { PublishingPage } from "./pages/Publishing";
import { RunDetailPage } from "./pages/RunDetail";
import { SiteSettingsPage } from "./pages/SiteSettings";
import { SitesPage } from "./pages/Sites";

export function App() {
  return (
    <SessionProvider>
      <Shell />
    </SessionProvider>
  );
}

const LINKS = [
  ["/keywords", "Keywords"],
  ["/automation", "Automation"],
  ["/content", "Content"],
  ["/publishing", "Publishing"],
  ["/sites", "Sites"],
  ["/keys", "API keys"],
] as const;

function Shell() {
  const session = useSession();
  const location = useLocation();
  // On a phone the navigation folds behind a Menu button; a chosen page folds it again.
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [location.pathname]);
  if (!session.signedIn) return <LoginPage />;
  const account = session.me?.account;
  return (
    <div className="shell">
      <header className="topbar">
        <div className="topbar-row">
          <strong className="brand">Content automation</strong>
          <span className="account" data-testid="credits" title="The account's credit balance">
            {account && (
              <>
                <span className="account-name">{account.name} · </span>
                {formatCredits(account.credits)} credits
              </>
            )}
          </span>
          <button
            type="button"
            className="menu-toggle secondary"
            aria-expanded={menuOpen}
            aria-controls="main-menu"
            onClick={() => setMenuOpen((open) => !open)}
          >
            Menu
          </button>
        </div>
        <div id="main-menu" className={menuOpen ? "menu open" : "menu"}>
          <nav aria-label="Main">
            {LINKS.map(([to, name]) => (
              <NavLink key={to} to={to}>
                {name}
              </NavLink>
            ))}
          </nav>
          <label className="site-picker">
            Site
            <select
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
          <button type="button" className="link" onClick={session.signOut}>
            Sign out
          </button>
        </div>
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
          <Route path="/sites/:siteId/settings" element={<SiteSettingsPage />} />
          <Route path="/keys" element={<KeysPage />} />
          <Route path="*" element={<Navigate to="/keywords" replace />} />
        </Routes>
      </main>
    </div>
  );
}
