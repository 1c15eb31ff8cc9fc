import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { StatusBadge } from "../automation/format";
import { FirstRunGuide } from "../components/Guide";
import { ErrorNote, Pager, TableScroll } from "../components/ui";
import { publishingQueries, useRetryPublish, type QueueStatus } from "./queries";

const PAGE = 50;
const STATUSES: QueueStatus[] = ["scheduled", "publishing", "failed"];

/** A slot as the site's wall clock reads it: the API gives it with the site's UTC offset. */
function siteTime(local: string | null): string {
  return local ? local.slice(0, 16).replace("T", " ") : "–";
}

/** Only web links: the URL comes from the publisher's answer. */
function webUrl(url: string | null): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}

type Props = {
  siteId: number;
  /** From the settings the page shows: the queue's own flag may predate their first read. */
  autoPublish: boolean | undefined;
};

/** The articles waiting for their slot, being published, or failed (SPEC §9). */
export function QueueCard({ siteId, autoPublish }: Props) {
  const [offset, setOffset] = useState(0);
  const [status, setStatus] = useState<QueueStatus | "">("");
  const query = { site_id: siteId, limit: PAGE, offset, ...(status ? { status } : {}) };
  const queue = useQuery(publishingQueries.queue(query));
  const retry = useRetryPublish(siteId);
  const summary = queue.data?.summary;

  return (
    <section className="card" aria-label="Queue">
      <div className="section-head">
        <h2>Queue</h2>
        <select
          aria-label="Queue status"
          value={status}
          onChange={(e) => {
            setStatus(STATUSES.find((s) => s === e.target.value) ?? "");
            setOffset(0);
          }}
        >
          <option value="">All</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      {summary && (
        <p className="hint">
          <span data-testid="queue-count">
            {summary.scheduled} of {summary.queue_limit} scheduled
          </span>{" "}
          · {summary.waiting} approved waiting for a slot · slots in {summary.timezone}
          {autoPublish === false && <> · auto-publish is off: nothing is scheduled</>}
        </p>
      )}
      <ErrorNote error={queue.error ?? retry.error} />
      {queue.data?.total === 0 &&
        (status ? (
          <p className="hint">Nothing in the queue.</p>
        ) : (
          <FirstRunGuide step={4}>
            Nothing in the queue. Approved articles wait here for their publishing slot; choose the
            publisher and the slots below.
          </FirstRunGuide>
        ))}
      {queue.data?.total !== 0 && (
        <TableScroll label="Queue table">
          <table>
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Slot (site time)</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Error</th>
                <th scope="col">Post</th>
                <th scope="col">
                  <span className="sr-only">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {queue.data?.items.map((item) => {
                const post = webUrl(item.external_url);
                return (
                  <tr key={item.id} data-testid={`queue-item-${item.id}`}>
                    <td>
                      <Link to={`/content/${item.id}`}>{item.title}</Link>
                    </td>
                    <td className="mono">{siteTime(item.scheduled_local)}</td>
                    <td>
                      <StatusBadge status={item.site_status} />
                    </td>
                    <td>{item.publish_attempts}</td>
                    <td className="error">{item.publish_error}</td>
                    <td>
                      {post && (
                        <a href={post} target="_blank" rel="noreferrer">
                          View post
                        </a>
                      )}
                    </td>
                    <td>
                      {item.site_status === "failed" && (
                        <button
                          type="button"
                          className="secondary"
                          disabled={retry.isPending}
                          aria-label={`Retry ${item.title}`}
                          onClick={() => retry.mutate(item.id)}
                        >
                          Retry
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableScroll>
      )}
      {queue.data && queue.data.total > 0 && (
        <Pager total={queue.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
      )}
    </section>
  );
}
