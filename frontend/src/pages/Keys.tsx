import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { accountQueries, useCreateApiKey, useRevokeApiKey } from "../account/queries";
import { ErrorNote, TableScroll, useDocumentTitle } from "../components/ui";
import { formatDate } from "../lib/format";

/** The new key, once: a copy button, and the warning that it is not shown again. */
function NewKey({ apiKey }: { apiKey: string }) {
  const [copied, setCopied] = useState<"yes" | "failed" | null>(null);
  return (
    <div className="new-key-box" data-testid="new-key-box">
      <p className="note" role="status">
        Copy the key now: it is not shown again. Anyone with it can use this account.
      </p>
      <div className="new-key-row">
        <code className="new-key" data-testid="new-key">
          {apiKey}
        </code>
        <button
          type="button"
          className="secondary"
          onClick={() =>
            navigator.clipboard.writeText(apiKey).then(
              () => setCopied("yes"),
              () => setCopied("failed"),
            )
          }
        >
          Copy
        </button>
      </div>
      {copied === "yes" && (
        <p className="hint" role="status">
          Copied to the clipboard.
        </p>
      )}
      {copied === "failed" && (
        <p className="error" role="status">
          The browser did not allow copying: select the key and copy it by hand.
        </p>
      )}
    </div>
  );
}

export function KeysPage() {
  useDocumentTitle("API keys");
  const [name, setName] = useState("");
  const keys = useQuery(accountQueries.apiKeys());
  const create = useCreateApiKey();
  const revoke = useRevokeApiKey();

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate(name, { onSuccess: () => setName("") });
  }

  return (
    <>
      <h1>API keys</h1>
      <form className="card" onSubmit={submit}>
        <h2>New key</h2>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <button type="submit" disabled={create.isPending}>
          Create key
        </button>
        <ErrorNote error={create.error} labelOf={(f) => (f === "name" ? "Name" : undefined)} />
        {create.data && <NewKey apiKey={create.data.api_key} />}
      </form>
      <section className="card">
        <ErrorNote error={keys.error ?? revoke.error} />
        <TableScroll label="API keys table">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data?.items.map((k) => (
                <tr key={k.id} className={k.revoked_at ? "muted" : undefined}>
                  <td>
                    {k.name}
                    {k.current && " (this session)"}
                  </td>
                  <td className="mono">{k.prefix}</td>
                  <td>{formatDate(k.created_at)}</td>
                  <td>{k.last_used_at ? formatDate(k.last_used_at) : "–"}</td>
                  <td>
                    {k.revoked_at ? (
                      "revoked"
                    ) : (
                      <button
                        type="button"
                        className="link"
                        disabled={k.current}
                        onClick={() => revoke.mutate(k.id)}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      </section>
    </>
  );
}
