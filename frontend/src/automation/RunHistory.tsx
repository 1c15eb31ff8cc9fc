import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { ErrorNote, Pager } from "../components/ui";
import { formatCredits, formatDate, StatusBadge } from "./format";
import { automationQueries } from "./queries";

const PAGE = 20;

/** The site's runs, newest first; each run_id leads to its detail page. */
export function RunHistory({ siteId }: { siteId: number }) {
  const [offset, setOffset] = useState(0);
  const history = useQuery(automationQueries.history(siteId, { limit: PAGE, offset }));
  return (
    <section className="card">
      <h2>Run history</h2>
      <ErrorNote error={history.error} />
      {history.data?.total === 0 && <p className="hint">No runs yet.</p>}
      <table aria-label="Run history">
        <thead>
          <tr>
            <th>Run</th>
            <th>Status</th>
            <th>Trigger</th>
            <th>Started</th>
            <th>Completed</th>
            <th>Credits</th>
            <th>Stage</th>
          </tr>
        </thead>
        <tbody>
          {history.data?.items.map((run) => (
            <HistoryRow key={run.run_id} run={run} />
          ))}
        </tbody>
      </table>
      {history.data && history.data.total > PAGE && (
        <Pager total={history.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
      )}
    </section>
  );
}

function HistoryRow({ run }: { run: Schemas["RunSummary"] }) {
  // The history's rows carry no credit total: the run's own record does (cached for good once
  // the run is over).
  const detail = useQuery(automationQueries.run(run.run_id));
  return (
    <tr>
      <td>
        <Link to={`/automation/runs/${encodeURIComponent(run.run_id)}`} className="mono">
          {run.run_id}
        </Link>
      </td>
      <td>
        <StatusBadge status={run.status} />
      </td>
      <td>{run.trigger_type}</td>
      <td>{formatDate(run.started_at)}</td>
      <td>{formatDate(run.completed_at)}</td>
      <td>{detail.data ? formatCredits(detail.data.total_credits_used) : "…"}</td>
      <td>{run.current_stage}</td>
    </tr>
  );
}
