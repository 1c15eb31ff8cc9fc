import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { ErrorNote, NoSite, Pager } from "../components/ui";
import { contentQueries, type ContentStatus as Status } from "../content/queries";
import { useSession } from "../session";

const PAGE = 50;
const STATUSES: Status[] = ["draft", "review", "approved", "rejected", "published"];

export function ContentPage() {
  const { siteId } = useSession();
  const [offset, setOffset] = useState(0);
  const [status, setStatus] = useState<Status | "">("");
  const query = { site_id: siteId ?? 0, limit: PAGE, offset, ...(status ? { status } : {}) };
  const content = useQuery({ ...contentQueries.list(query), enabled: siteId !== null });
  if (siteId === null) return <NoSite />;

  return (
    <>
      <h1>Content</h1>
      <section className="card">
        <div className="filters">
          <select
            aria-label="Status"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as Status | "");
              setOffset(0);
            }}
          >
            <option value="">All statuses</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <ErrorNote error={content.error} />
        {content.data?.total === 0 && (
          <p className="hint">No articles yet: the automation pipeline writes them from keywords.</p>
        )}
        <table>
          <thead>
            <tr>
              <th>Title</th>
              <th>Words</th>
              <th>Status</th>
              <th>On the site</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {content.data?.items.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/content/${c.id}`}>{c.title}</Link>
                </td>
                <td>{c.word_count}</td>
                <td>{c.status}</td>
                <td>{c.site_status.replace("_", " ")}</td>
                <td>{new Date(c.updated_at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {content.data && (
          <Pager total={content.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
        )}
      </section>
    </>
  );
}
