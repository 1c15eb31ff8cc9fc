import { Link, useParams } from "react-router-dom";
import { useDocumentTitle } from "../components/ui";
import { useSession } from "../session";
import { BudgetCard } from "../sites/BudgetCard";

/** A site's settings: its AI budget allocation (003 Part 2, "Site Settings > AI Settings"). */
export function SiteSettingsPage() {
  const siteId = Number(useParams().siteId);
  const { sites } = useSession();
  const site = sites.find((s) => s.id === siteId);
  useDocumentTitle(site ? `${site.name} settings` : "Site settings");
  return (
    <>
      <p>
        <Link to="/sites">← Sites</Link>
      </p>
      <h1>{site ? `${site.name}: settings` : "Site settings"}</h1>
      {sites.length === 0 ? null : site ? (
        <>
          <p className="hint">
            {site.url || "No URL"} · time zone {site.timezone}
          </p>
          <BudgetCard key={site.id} siteId={site.id} />
        </>
      ) : (
        <p className="error" role="alert">
          No such site in this account.
        </p>
      )}
    </>
  );
}
