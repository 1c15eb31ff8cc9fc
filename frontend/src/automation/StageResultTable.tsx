import { Link } from "react-router-dom";
import { InfoTip } from "../components/InfoTip";
import { formatDate } from "../lib/format";
import { CONTENT_IDS, contentIds, resultCounters, SKIPPED } from "./counters";
import { resultFlag, stageName, StatusBadge, type StageResult } from "./format";

/** Past this many articles, the rest fold behind "Show all". */
const SHOWN_IDS = 5;

type Props = {
  number: number;
  name: string | undefined;
  status: string;
  result: StageResult;
  timeZone: string | undefined;
};

/** One stage's result on the run's page: its counters with names and units, a skip said in
 * words, the articles it handled as links, and when it ran. */
export function StageResultTable({ number, name, status, result, timeZone }: Props) {
  const skipped = resultFlag(result, "skipped");
  // A skipped stage's counters are all zero: the skip says it.
  const counters = skipped ? [] : resultCounters(result);
  const ids = contentIds(result);
  return (
    <table aria-label={`Stage ${number} result`} className="compact">
      <caption>
        Stage {number}: {name ?? stageName(number)}{" "}
        <StatusBadge status={status} testId={`detail-stage-${number}-status`} />
        {resultFlag(result, "partial") && <span className="hint"> stopped before its end</span>}
      </caption>
      <tbody>
        {!result && (
          <tr>
            <td className="hint">Not reached.</td>
          </tr>
        )}
        {skipped && (
          <tr>
            <td colSpan={2} data-testid={`detail-stage-${number}-skipped`}>
              {SKIPPED.text} <InfoTip about="Skipped">{SKIPPED.tip}</InfoTip>
            </td>
          </tr>
        )}
        {counters.map((c) => (
          <tr key={c.key}>
            <th scope="row">
              {c.label}
              {c.tip && (
                <>
                  {" "}
                  <InfoTip about={c.label}>{c.tip}</InfoTip>
                </>
              )}
            </th>
            <td>{c.value}</td>
          </tr>
        ))}
        {ids.length > 0 && (
          <tr>
            <th scope="row">
              {CONTENT_IDS.label} <InfoTip about={CONTENT_IDS.label}>{CONTENT_IDS.tip}</InfoTip>
            </th>
            <td data-testid={`detail-stage-${number}-articles`}>
              <ContentLinks ids={ids} />
            </td>
          </tr>
        )}
        {result && typeof result.started_at === "string" && (
          <tr>
            <th scope="row">{skipped ? "Reached" : "Started"}</th>
            <td>{formatDate(result.started_at, timeZone)}</td>
          </tr>
        )}
        {result && !skipped && typeof result.completed_at === "string" && (
          <tr>
            <th scope="row">Ended</th>
            <td>{formatDate(result.completed_at, timeZone)}</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

function ContentLinks({ ids }: { ids: number[] }) {
  const links = (some: number[]) =>
    some.map((id) => (
      <li key={id}>
        <Link to={`/content/${id}`}>Article {id}</Link>
      </li>
    ));
  if (ids.length <= SHOWN_IDS + 1) return <ul className="id-list">{links(ids)}</ul>;
  return (
    <>
      <ul className="id-list">{links(ids.slice(0, SHOWN_IDS))}</ul>
      <details className="more-ids">
        <summary>Show all {ids.length}</summary>
        <ul className="id-list">{links(ids.slice(SHOWN_IDS))}</ul>
      </details>
    </>
  );
}
