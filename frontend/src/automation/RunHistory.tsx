import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ErrorNote, Pager, TableScroll } from "../components/ui";
import { formatCredits, formatDate, formatDuration, runName, secondsBetween } from "../lib/format";
import { isActive } from "../lib/progress";
import { StatusBadge } from "./format";
import {
  changeFilters,
  historyQuery,
  isFiltered,
  rangeProblem,
  readFilters,
  RUN_STATUSES,
  TRIGGERS,
  type HistoryFilters,
} from "./historyFilters";
import { automationQueries, type HistoryItem } from "./queries";

const PAGE = 20;

/**
 * The site's runs, newest first, each named by its start and leading to its detail page;
 * filtered by status, trigger and the days they started on, the filters kept in the URL.
 */
export function RunHistory({ siteId, timeZone }: { siteId: number; timeZone?: string }) {
  const [search, setSearch] = useSearchParams();
  const filters = readFilters(search);
  // Each change starts from the address as it is now, not from `search`: the router renders a
  // change later (in a transition), so a second change made before that render (a status
  // chosen, then a day cleared at once) would otherwise drop the first.
  const changeTo = (change: HistoryFilters | null) =>
    setSearch(changeFilters(new URLSearchParams(window.location.search), change), {
      replace: true,
    });
  return (
    <section className="card" aria-labelledby="history-title">
      <h2 id="history-title">Run history</h2>
      <FilterControls filters={filters} timeZone={timeZone} onChange={changeTo} />
      {/* A new filter starts again at the first page. */}
      <HistoryTable
        key={JSON.stringify(filters)}
        siteId={siteId}
        filters={filters}
        timeZone={timeZone}
      />
    </section>
  );
}

type ControlsProps = {
  filters: HistoryFilters;
  timeZone: string | undefined;
  /** The filters to change (a key set to undefined is cleared); null clears them all. */
  onChange: (change: HistoryFilters | null) => void;
};

function FilterControls({ filters, timeZone, onChange }: ControlsProps) {
  const set = (key: keyof HistoryFilters, value: string) =>
    onChange({ [key]: value || undefined });
  return (
    <fieldset className="filters history-filters">
      <legend className="sr-only">Filter the runs</legend>
      <label>
        Status
        <select value={filters.status ?? ""} onChange={(e) => set("status", e.target.value)}>
          <option value="">Any status</option>
          {RUN_STATUSES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Started by
        <select value={filters.trigger ?? ""} onChange={(e) => set("trigger", e.target.value)}>
          <option value="">Anything</option>
          {TRIGGERS.map((t) => (
            <option key={t.value} value={t.value}>
              {t.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Started from
        <input
          type="date"
          value={filters.from ?? ""}
          max={filters.to}
          onChange={(e) => set("from", e.target.value)}
        />
      </label>
      <label>
        Started until
        <input
          type="date"
          value={filters.to ?? ""}
          min={filters.from}
          onChange={(e) => set("to", e.target.value)}
        />
      </label>
      {isFiltered(filters) && (
        <button type="button" className="secondary" onClick={() => onChange(null)}>
          Clear filters
        </button>
      )}
      {(filters.from || filters.to) && (
        <p className="hint filters-note">Days in the site's time zone ({timeZone ?? "UTC"}).</p>
      )}
    </fieldset>
  );
}

type TableProps = { siteId: number; filters: HistoryFilters; timeZone: string | undefined };

function HistoryTable({ siteId, filters, timeZone }: TableProps) {
  const [offset, setOffset] = useState(0);
  const problem = rangeProblem(filters);
  const history = useQuery({
    ...automationQueries.history(siteId, {
      limit: PAGE,
      offset,
      ...historyQuery(filters, timeZone),
    }),
    enabled: problem === null,
  });
  const filtered = isFiltered(filters);
  if (problem) {
    return (
      <p role="alert" className="error" data-testid="history-problem">
        {problem}
      </p>
    );
  }
  const total = history.data?.total;
  return (
    <>
      <ErrorNote error={history.error} />
      {filtered && total !== undefined && (
        <p className="hint" role="status" data-testid="history-count">
          {matching(total)}
        </p>
      )}
      {total === 0 && !filtered && <p className="hint">No runs yet.</p>}
      {total !== 0 && (
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
    </>
  );
}

function matching(total: number): string {
  if (total === 0) return "No run matches the filters.";
  if (total === 1) return "1 run matches the filters.";
  return `${total.toLocaleString("en-US")} runs match the filters.`;
}

function HistoryRow({ run, timeZone }: { run: HistoryItem; timeZone?: string }) {
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
          ? `${formatDuration(run.elapsed_seconds ?? secondsBetween(run.started_at, null))} so far`
          : run.completed_at
            ? formatDuration(secondsBetween(run.started_at, run.completed_at))
            : "–"}
      </td>
      <td data-testid="history-credits">{formatCredits(run.total_credits_used)}</td>
      <td>{run.current_stage} of 7</td>
    </tr>
  );
}
