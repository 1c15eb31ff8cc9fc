import { useEffect, type ReactNode } from "react";
import { ApiError } from "../api/client";
import { humanField, plainMessage, sentence } from "../lib/errors";

/** A field's label for a person, from its API name; forms pass their own labels. */
export type LabelOf = (field: string) => string | undefined;

/**
 * An error in plain words. A 400 naming fields lists each with its form label and what is
 * wrong; any other error says the API's message as a sentence. The API's code stays on the
 * element (`data-code`) for programs, not in the text.
 */
export function ErrorNote({ error, labelOf }: { error: unknown; labelOf?: LabelOf }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  const problems = fieldProblems(error);
  let text: string;
  if (problems.size > 0) {
    const list = [...problems].map(
      ([field, message]) => `${labelOf?.(field) ?? humanField(field)} ${plainMessage(message)}`,
    );
    text = `Please correct: ${list.join("; ")}.`;
  } else {
    text = sentence(error instanceof Error ? error.message : String(error));
  }
  return (
    <p role="alert" className="error" data-code={code}>
      {text}
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
      <button
        type="button"
        className="secondary"
        disabled={offset === 0}
        onClick={() => onChange(Math.max(0, offset - limit))}
      >
        Previous
      </button>
      <span>
        {first}–{last} of {total}
      </span>
      <button
        type="button"
        className="secondary"
        disabled={last >= total}
        onClick={() => onChange(offset + limit)}
      >
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

/** What is wrong with one field, in plain words, shown under it. */
export function FieldError({ problems, field }: { problems: Map<string, string>; field: string }) {
  const message = problems.get(field);
  if (message === undefined) return null;
  return <span className="field-error">{sentence(plainMessage(message))}</span>;
}

/** A wide table scrolls sideways in its own box, never the page. */
export function TableScroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    // A focusable region: keyboard users can scroll it too.
    <div className="table-scroll" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

const APP_NAME = "Content automation";

/** The browser tab names the page. */
export function useDocumentTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · ${APP_NAME}` : APP_NAME;
  }, [title]);
}
