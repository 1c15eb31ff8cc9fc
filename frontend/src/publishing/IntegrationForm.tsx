import { useState, type FormEvent } from "react";
import type { Schemas } from "../api/client";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { useSaveIntegration, type Integration } from "./queries";

type Update = Schemas["IntegrationUpdate"];
type Kind = Schemas["IntegrationKind"];

const KINDS = [
  ["none", "None: mark articles published here"],
  ["wordpress", "WordPress"],
  ["webhook", "Webhook"],
] as const satisfies readonly (readonly [Kind, string])[];
// What each kind calls its URL and its secret.
const LABELS = {
  wordpress: { url: "WordPress site URL", secret: "Application password" },
  webhook: { url: "Webhook URL", secret: "Signing secret" },
} as const;

type Form = {
  kind: Kind;
  endpoint_url: string;
  username: string;
  /** Write-only: empty keeps the saved secret. */
  secret: string;
  is_active: boolean;
};

function formOf(integration: Integration): Form {
  return {
    kind: integration.kind,
    endpoint_url: integration.endpoint_url ?? "",
    username: integration.username ?? "",
    secret: "",
    is_active: integration.is_active,
  };
}

/** The whole integration: only the fields the kind uses (the API refuses the others). */
function bodyOf(form: Form): Update {
  const is_active = form.is_active;
  const secret = form.secret !== "" ? { secret: form.secret } : {};
  const endpoint_url = form.endpoint_url.trim();
  switch (form.kind) {
    case "none":
      return { kind: "none", is_active };
    case "wordpress": {
      const username = form.username.trim();
      return { kind: "wordpress", is_active, endpoint_url, username, ...secret };
    }
    case "webhook":
      return { kind: "webhook", is_active, endpoint_url, ...secret };
  }
}

/** The secret field's placeholder: whether leaving it empty keeps a saved secret. The API keeps
 * it only while the kind and the URL stay the same. */
function secretHint(saved: Integration, form: Form): string {
  if (!saved.secret_set) return "not set";
  const same = saved.kind === form.kind && (saved.endpoint_url ?? "") === form.endpoint_url.trim();
  return same ? "set: leave empty to keep it" : "required again: the kind or URL changed";
}

type Props = { siteId: number; integration: Integration };

/** Where the site's due articles go (SPEC §9): WordPress, a signed webhook, or nowhere. */
export function IntegrationForm({ siteId, integration }: Props) {
  const [form, setForm] = useState<Form>(() => formOf(integration));
  const save = useSaveIntegration(siteId);
  const problems = fieldProblems(save.error);
  const change = (update: (f: Form) => Form) => {
    if (save.isSuccess) save.reset();
    setForm(update);
  };

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate(bodyOf(form), { onSuccess: (saved) => setForm(formOf(saved)) });
  }

  const labels = form.kind === "none" ? null : LABELS[form.kind];
  return (
    // noValidate: the API is the validator, and its 400 names the field.
    <form noValidate onSubmit={submit} className="card" aria-label="Publisher">
      <h2>Publisher</h2>
      <label>
        Publish to
        <select
          value={form.kind}
          onChange={(e) => {
            const picked = KINDS.find(([k]) => k === e.target.value);
            if (picked) change((f) => ({ ...f, kind: picked[0] }));
          }}
        >
          {KINDS.map(([kind, label]) => (
            <option key={kind} value={kind}>
              {label}
            </option>
          ))}
        </select>
      </label>
      {labels && (
        <>
          <label>
            {labels.url}
            <input
              type="url"
              value={form.endpoint_url}
              placeholder="https://"
              aria-invalid={problems.has("endpoint_url") || undefined}
              onChange={(e) => change((f) => ({ ...f, endpoint_url: e.target.value }))}
            />
            <FieldError problems={problems} field="endpoint_url" />
          </label>
          {form.kind === "wordpress" && (
            <label>
              User name
              <input
                value={form.username}
                autoComplete="off"
                aria-invalid={problems.has("username") || undefined}
                onChange={(e) => change((f) => ({ ...f, username: e.target.value }))}
              />
              <FieldError problems={problems} field="username" />
            </label>
          )}
          <label>
            {labels.secret}
            <input
              type="password"
              autoComplete="new-password"
              value={form.secret}
              placeholder={secretHint(integration, form)}
              aria-invalid={problems.has("secret") || undefined}
              onChange={(e) => change((f) => ({ ...f, secret: e.target.value }))}
            />
            <FieldError problems={problems} field="secret" />
          </label>
        </>
      )}
      <label className="check">
        <input
          type="checkbox"
          checked={form.is_active}
          onChange={(e) => change((f) => ({ ...f, is_active: e.target.checked }))}
        />
        Active (off: due articles wait in the queue)
      </label>
      <ErrorNote
        error={save.error}
        labelOf={(field) =>
          ({
            kind: "Publish to",
            endpoint_url: labels?.url ?? "URL",
            username: "User name",
            secret: labels?.secret ?? "Secret",
          })[field]
        }
      />
      <div className="actions">
        <button type="submit" disabled={save.isPending}>
          Save publisher
        </button>
        {save.isSuccess && (
          <span role="status" className="hint">
            Publisher saved.
          </span>
        )}
      </div>
    </form>
  );
}
