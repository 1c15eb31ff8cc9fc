import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { StatusBadge } from "../automation/format";
import { FirstRunGuide } from "../components/Guide";
import { ErrorNote, NoSite, Pager, TableScroll, useDocumentTitle } from "../components/ui";
import { contentQueries, type ContentStatus as Status } from "../content/queries";
import { formatCount, formatDate } from "../lib/format";
import { useSession } from "../session";

const PAGE = 50;
const STATUSES: Status[] = ["draft", "review", "approved", "rejected", "published"];

export function ContentPage() {
  useDocumentTitle("Content");
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
        {content.data?.total === 0 &&
          (status ? (
            <p className="hint">No {status} articles.</p>
          ) : (
            <FirstRunGuide step={3}>
              No articles yet: a run of <Link to="/automation">Automation</Link> writes them from
              your keywords. They appear here for review.
            </FirstRunGuide>
          ))}
        {content.data?.total !== 0 && (
          <TableScroll label="Articles table">
            <table>
              <thead>
                <tr>
                  <th scope="col">Title</th>
                  <th scope="col">Words</th>
                  <th scope="col">Status</th>
                  <th scope="col">On the site</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {content.data?.items.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <Link to={`/content/${c.id}`}>{c.title}</Link>
                    </td>
                    <td>{formatCount(c.word_count)}</td>
                    <td>
                      <StatusBadge status={c.status} />
                    </td>
                    <td>{c.site_status.replaceAll("_", " ")}</td>
                    <td>{formatDate(c.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
        {content.data && content.data.total > 0 && (
          <Pager total={content.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
        )}
      </section>
    </>
  );
}
