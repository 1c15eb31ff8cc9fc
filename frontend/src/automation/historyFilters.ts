import { TZDate } from "@date-fns/tz";
import type { Schemas } from "../api/client";

/**
 * The run history's filters (000 "Viewing History"), kept in the page's query string so that a
 * reload or a shared link shows the same runs: `?status=failed&trigger=scheduled&from=2026-01-01
 * &to=2026-01-31`. Dates are days of the site's calendar, both included.
 */
export type HistoryFilters = {
  status?: Schemas["RunStatus"];
  trigger?: Schemas["TriggerType"];
  /** First day, YYYY-MM-DD. */
  from?: string;
  /** Last day, YYYY-MM-DD. */
  to?: string;
};

export type HistoryQuery = {
  status?: Schemas["RunStatus"];
  trigger_type?: Schemas["TriggerType"];
  started_after?: string;
  started_before?: string;
};

export const RUN_STATUSES: { value: Schemas["RunStatus"]; label: string }[] = [
  { value: "running", label: "Running" },
  { value: "paused", label: "Paused" },
  { value: "completed", label: "Completed" },
  { value: "failed", label: "Failed" },
  { value: "cancelled", label: "Cancelled" },
];

export const TRIGGERS: { value: Schemas["TriggerType"]; label: string }[] = [
  { value: "manual", label: "Run now (manual)" },
  { value: "scheduled", label: "Schedule" },
];

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar day written YYYY-MM-DD, else undefined. */
function day(text: string | null): string | undefined {
  const match = text ? DAY.exec(text) : null;
  if (!match) return undefined;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(y, m - 1, d));
  const real =
    date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
  return real && y >= 1 ? text! : undefined;
}

function oneOf<T extends string>(text: string | null, values: { value: T }[]): T | undefined {
  return values.find((v) => v.value === text)?.value;
}

/** The filters a query string names; a value the history cannot filter by is left out. */
export function readFilters(search: URLSearchParams): HistoryFilters {
  const filters: HistoryFilters = {
    status: oneOf(search.get("status"), RUN_STATUSES),
    trigger: oneOf(search.get("trigger"), TRIGGERS),
    from: day(search.get("from")),
    to: day(search.get("to")),
  };
  return Object.fromEntries(
    Object.entries(filters).filter(([, v]) => v !== undefined),
  ) as HistoryFilters;
}

/** `search` with the history's filters replaced by `filters` (other parameters kept). */
export function writeFilters(search: URLSearchParams, filters: HistoryFilters): URLSearchParams {
  const next = new URLSearchParams(search);
  for (const key of ["status", "trigger", "from", "to"] as const) {
    const value = filters[key];
    if (value) next.set(key, value);
    else next.delete(key);
  }
  return next;
}

/**
 * `search` with the filters `change` names replaced and the others kept (a key set to
 * undefined is cleared); `null` clears them all.
 */
export function changeFilters(
  search: URLSearchParams,
  change: HistoryFilters | null,
): URLSearchParams {
  return writeFilters(search, change ? { ...readFilters(search), ...change } : {});
}

export function isFiltered(filters: HistoryFilters): boolean {
  return Object.values(filters).some((v) => v !== undefined);
}

/** What is wrong with the date range, in words, or null. */
export function rangeProblem(filters: HistoryFilters): string | null {
  if (filters.from && filters.to && filters.from > filters.to) {
    return "The first day is after the last day: no run can match.";
  }
  return null;
}

/** The instant a day of `timeZone`'s calendar begins, as RFC 3339 with its offset. */
export function dayStart(date: string, timeZone: string): string {
  const [y, m, d] = date.split("-").map(Number);
  return new TZDate(y, m - 1, d, timeZone).toISOString();
}

/** The day after `date`, YYYY-MM-DD. */
function nextDay(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/**
 * The history endpoint's parameters: the days taken in the site's time zone (the zone its
 * dates are shown in), from the first day's start (included) to the start of the day after
 * the last (excluded), so that the last day is included whole.
 */
export function historyQuery(filters: HistoryFilters, timeZone = "UTC"): HistoryQuery {
  const query: HistoryQuery = {};
  if (filters.status) query.status = filters.status;
  if (filters.trigger) query.trigger_type = filters.trigger;
  if (filters.from) query.started_after = dayStart(filters.from, timeZone);
  if (filters.to) query.started_before = dayStart(nextDay(filters.to), timeZone);
  return query;
}
