import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { FirstRunGuide } from "../components/Guide";
import { ErrorNote, NoSite, Pager, TableScroll, useDocumentTitle } from "../components/ui";
import { plural } from "../lib/format";
import {
  keywordQueries,
  useAddKeywords,
  useImportKeywords,
  useToggleKeyword,
  type KeywordStatus as Status,
} from "../keywords/queries";
import { useSession } from "../session";

const PAGE = 50;

export function KeywordsPage() {
  useDocumentTitle("Keywords");
  const { siteId } = useSession();
  if (siteId === null) return <NoSite />;
  return (
    <>
      <h1>Keywords</h1>
      <AddKeywords siteId={siteId} />
      <KeywordList siteId={siteId} />
    </>
  );
}

function ImportSummary({ result }: { result: Schemas["ImportResult"] }) {
  return (
    <div className="summary" data-testid="import-result">
      <p>
        {result.created} added, {plural(result.duplicates, "duplicate")},{" "}
        {plural(result.errors.length, "row")} in error
      </p>
      {result.errors.length > 0 && (
        <ul className="row-errors">
          {result.errors.map((e) => (
            <li key={e.row}>
              Row {e.row}: {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function AddKeywords({ siteId }: { siteId: number }) {
  const [text, setText] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const paste = useAddKeywords(siteId);
  const upload = useImportKeywords(siteId);

  function submitPaste(event: FormEvent) {
    event.preventDefault();
    const keywords = text
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
    paste.mutate(keywords, { onSuccess: () => setText("") });
  }

  function submitFile(event: FormEvent) {
    event.preventDefault();
    if (file) upload.mutate(file);
  }

  return (
    <section className="grid2">
      <form className="card" onSubmit={submitPaste}>
        <h2>Paste keywords</h2>
        <textarea
          aria-label="Keywords, one per line"
          rows={5}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="one keyword per line"
        />
        <button type="submit" disabled={!text.trim() || paste.isPending}>
          Add keywords
        </button>
        <ErrorNote error={paste.error} />
        {paste.data && <ImportSummary result={paste.data} />}
      </form>
      <form className="card" onSubmit={submitFile}>
        <h2>Import CSV</h2>
        <p className="hint">Header row: keyword, volume, difficulty, intent. UTF-8, up to 5 MB.</p>
        <input
          type="file"
          aria-label="CSV file"
          accept=".csv,text/csv"
          onChange={(e) => setFile(e.target.files?.[0] ?? null)}
        />
        <button type="submit" disabled={!file || upload.isPending}>
          Import
        </button>
        <ErrorNote error={upload.error} />
        {upload.data && <ImportSummary result={upload.data} />}
      </form>
    </section>
  );
}

function KeywordList({ siteId }: { siteId: number }) {
  const [offset, setOffset] = useState(0);
  const [status, setStatus] = useState<Status | "">("");
  const [search, setSearch] = useState("");
  const query = {
    site_id: siteId,
    limit: PAGE,
    offset,
    ...(status ? { status } : {}),
    ...(search ? { search } : {}),
  };
  const keywords = useQuery(keywordQueries.list(query));
  const toggle = useToggleKeyword(siteId);

  return (
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
          <option value="new">New</option>
          <option value="mapped">Mapped</option>
        </select>
        <input
          type="search"
          aria-label="Search keywords"
          placeholder="Search"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            setOffset(0);
          }}
        />
      </div>
      <ErrorNote error={keywords.error ?? toggle.error} />
      {keywords.data?.total === 0 && !status && !search && (
        <FirstRunGuide step={1}>
          No keywords yet. Paste some above or import a CSV; then{" "}
          <Link to="/automation">Automation</Link> turns them into articles.
        </FirstRunGuide>
      )}
      {keywords.data?.total === 0 && (status || search) && (
        <p className="hint">No keywords match.</p>
      )}
      {keywords.data?.total !== 0 && (
        <TableScroll label="Keywords table">
          <table>
            <thead>
              <tr>
                <th scope="col">Keyword</th>
                <th scope="col">Volume</th>
                <th scope="col">Difficulty</th>
                <th scope="col">Intent</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="sr-only">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keywords.data?.items.map((k) => (
                <tr key={k.id} className={k.disabled ? "muted" : undefined}>
                  <td>{k.keyword}</td>
                  <td>{k.volume ?? "–"}</td>
                  <td>{k.difficulty ?? "–"}</td>
                  <td>{k.intent ?? "–"}</td>
                  <td>{k.disabled ? "disabled" : k.status}</td>
                  <td>
                    <button type="button" className="link" onClick={() => toggle.mutate(k)}>
                      {k.disabled ? "Enable" : "Disable"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {keywords.data && keywords.data.total > 0 && (
        <Pager total={keywords.data.total} limit={PAGE} offset={offset} onChange={setOffset} />
      )}
    </section>
  );
}
