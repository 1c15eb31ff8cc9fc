/** Formatting for people: durations, amounts, dates and plurals, the same on every page. */

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/**
 * Seconds as "4 min 6 s", "1 h 2 min", "3 d 4 h", "45 s"; whole seconds, the largest two units.
 */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const d = Math.floor(total / 86400);
  if (d > 0) {
    // A run paused for days: its minutes no longer tell anything.
    const hours = Math.floor((total % 86400) / 3600);
    return hours > 0 ? `${d} d ${hours} h` : `${d} d`;
  }
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return s > 0 ? `${m} min ${s} s` : `${m} min`;
  return `${s} s`;
}

/**
 * Time left as a person would say it: "about 4 min left". Rounded up to a whole minute past
 * one minute (an estimate claims no seconds), "less than a minute left" below.
 */
export function formatEta(seconds: number): string {
  if (seconds < 60) return "less than a minute left";
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m > 0 ? `about ${h} h ${m} min left` : `about ${h} h left`;
}

export function formatCredits(amount: number): string {
  return amount.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

const DATE_TIME: Intl.DateTimeFormatOptions = {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
};

/** An instant in the reader's time zone, "12 Mar 2026, 14:05"; "–" for none. */
export function formatDate(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return "–";
  return new Date(iso).toLocaleString("en-GB", { ...DATE_TIME, timeZone });
}

/** A run is named by when it started: "Run of 12 Mar 2026, 14:05". */
export function runName(startedAt: string, timeZone?: string): string {
  return `Run of ${formatDate(startedAt, timeZone)}`;
}

/** Seconds between two instants, or from `start` to `now` while there is no end. */
export function secondsBetween(start: string, end: string | null | undefined, now = Date.now()) {
  const to = end ? Date.parse(end) : now;
  return Math.max(0, Math.round((to - Date.parse(start)) / 1000));
}
