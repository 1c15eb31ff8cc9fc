import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { ErrorNote, Pager, TableScroll } from "../components/ui";
import { formatCredits, formatDate, formatDuration, runName, secondsBetween } from "../lib/format";
import { StatusBadge } from "./format";
import { automationQueries, isActive } from "./queries";

const PAGE = 20;

/** The site's runs, newest first, each named by its start and leading to its detail page. */
export function RunHistory({ siteId, timeZone }: { siteId: number; timeZone?: string }) {
  const [offset, setOffset] = useState(0);
  const history = useQuery(automationQueries.history(siteId, { limit: PAGE, offset }));
  return (
    <section className="card">
      <h2>Run history</h2>
      <ErrorNote error={history.error} />
      {history.data?.total === 0 && <p className="hint">No runs yet.</p>}
      {history.data?.total !== 0 && (
        <TableScroll label="Run history table">
          <table aria-label="Run history">
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col">Trigger</th>
                <th scope="col">Ended</th>
                <th scope="col">Duration</th>
                <th scope="col">Credits</th>
                <th scope="col">Stage</th>
              </tr>
            </thead>
            <tbody>
              {history.data?.items.map((run) => (
                <HistoryRow key={run.run_id} run={run} timeZone={timeZone} />
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {history.data && history.data.total > PAGE && (
        <Pager total={history.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
      )}
    </section>
  );
}

function HistoryRow({ run, timeZone }: { run: Schemas["RunSummary"]; timeZone?: string }) {
  const active = isActive(run.status);
  return (
    <tr data-testid={`history-${run.run_id}`}>
      <td>
        <Link
          to={`/automation/runs/${encodeURIComponent(run.run_id)}`}
          title={`Run id ${run.run_id}`}
        >
          {runName(run.started_at, timeZone)}
        </Link>
      </td>
      <td>
        <StatusBadge status={run.status} />
      </td>
      <td>{run.trigger_type}</td>
      <td>{active ? "–" : formatDate(run.completed_at, timeZone)}</td>
      <td>
        {active
          ? `${formatDuration(secondsBetween(run.started_at, null))} so far`
          : run.completed_at
            ? formatDuration(secondsBetween(run.started_at, run.completed_at))
            : "–"}
      </td>
      <td data-testid="history-credits">{formatCredits(run.total_credits_used)}</td>
      <td>{run.current_stage} of 7</td>
    </tr>
  );
}
