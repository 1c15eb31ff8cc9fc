import { ApiError } from "../api/client";

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? ` (${error.code})` : "";
  return (
    <p role="alert" className="error">
      {message}
      {code}
    </p>
  );
}

type PagerProps = {
  total: number;
  limit: number;
  offset: number;
  onChange: (offset: number) => void;
};

export function Pager({ total, limit, offset, onChange }: PagerProps) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <div className="pager">
      <button type="button" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>
        Previous
      </button>
      <span>
        {first}–{last} of {total}
      </span>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit)}>
        Next
      </button>
    </div>
  );
}

export function NoSite() {
  return <p>This account has no site yet: add one under Sites.</p>;
}

/** The API's 400 lists each bad field with its message in `details`: field name → message. */
export function fieldProblems(error: unknown): Map<string, string> {
  const problems = new Map<string, string>();
  if (!(error instanceof ApiError) || !Array.isArray(error.details)) return problems;
  for (const item of error.details as unknown[]) {
    if (
      typeof item === "object" &&
      item !== null &&
      "field" in item &&
      "message" in item &&
      typeof item.field === "string" &&
      typeof item.message === "string"
    ) {
      problems.set(item.field, item.message);
    }
  }
  return problems;
}

/** The API's message for one field, shown next to it. */
export function FieldError({ problems, field }: { problems: Map<string, string>; field: string }) {
  const message = problems.get(field);
  if (message === undefined) return null;
  return (
    <span className="field-error">
      {field}: {message}
    </span>
  );
}
