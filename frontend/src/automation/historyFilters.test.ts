import { describe, expect, it } from "vitest";
import {
  changeFilters,
  dayStart,
  historyQuery,
  isFiltered,
  rangeProblem,
  readFilters,
  writeFilters,
} from "./historyFilters";

const read = (query: string) => readFilters(new URLSearchParams(query));

describe("the history's filters in the query string", () => {
  it("reads the filters it can use", () => {
    expect(read("status=failed&trigger=scheduled&from=2026-01-01&to=2026-01-31")).toEqual({
      status: "failed",
      trigger: "scheduled",
      from: "2026-01-01",
      to: "2026-01-31",
    });
    expect(read("")).toEqual({});
    expect(isFiltered(read(""))).toBe(false);
  });
  it("leaves out what the history cannot filter by", () => {
    expect(read("status=done&trigger=cron&from=2026-02-30&to=31/01/2026")).toEqual({});
    expect(read("from=2026-1-5")).toEqual({});
  });
  it("writes them back, keeping other parameters and dropping cleared ones", () => {
    const search = new URLSearchParams("tab=log&status=failed&from=2026-01-01");
    const next = writeFilters(search, { trigger: "manual", from: "2026-01-02" });
    expect(next.toString()).toBe("tab=log&from=2026-01-02&trigger=manual");
    expect(readFilters(next)).toEqual({ trigger: "manual", from: "2026-01-02" });
  });
  it("changes the filters it names and keeps the others", () => {
    const search = new URLSearchParams("tab=log&status=running&from=2026-01-21&to=2026-01-20");
    const cleared = changeFilters(search, { from: undefined });
    expect(cleared.toString()).toBe("tab=log&status=running&to=2026-01-20");
    expect(changeFilters(cleared, { trigger: "scheduled" }).toString()).toBe(
      "tab=log&status=running&to=2026-01-20&trigger=scheduled",
    );
    expect(changeFilters(search, null).toString()).toBe("tab=log");
  });
  it("says when the first day is after the last", () => {
    expect(rangeProblem({ from: "2026-02-01", to: "2026-01-31" })).toMatch(/after the last day/);
    expect(rangeProblem({ from: "2026-01-31", to: "2026-01-31" })).toBeNull();
    expect(rangeProblem({ from: "2026-01-31" })).toBeNull();
  });
});

describe("historyQuery", () => {
  it("names the endpoint's parameters", () => {
    expect(historyQuery({ status: "completed", trigger: "manual" })).toEqual({
      status: "completed",
      trigger_type: "manual",
    });
  });
  it("takes the days whole, in the site's time zone", () => {
    expect(historyQuery({ from: "2026-01-10", to: "2026-01-20" }, "UTC")).toEqual({
      started_after: "2026-01-10T00:00:00.000+00:00",
      started_before: "2026-01-21T00:00:00.000+00:00",
    });
    expect(historyQuery({ to: "2026-12-31" }, "America/New_York")).toEqual({
      started_before: "2027-01-01T00:00:00.000-05:00",
    });
  });
  it("follows daylight saving time", () => {
    // Berlin moves to summer time on 29 March 2026: that day starts at +01:00, the next at +02:00.
    expect(dayStart("2026-03-29", "Europe/Berlin")).toBe("2026-03-29T00:00:00.000+01:00");
    expect(historyQuery({ to: "2026-03-29" }, "Europe/Berlin").started_before).toBe(
      "2026-03-30T00:00:00.000+02:00",
    );
    // A day with no midnight: São Paulo skipped 00:00–01:00 on 4 November 2018.
    expect(Date.parse(dayStart("2018-11-04", "America/Sao_Paulo"))).toBe(
      Date.parse("2018-11-04T01:00:00-02:00"),
    );
  });
});
