import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { accountQueries, useCreateApiKey, useRevokeApiKey } from "../account/queries";
import { ErrorNote } from "../components/ui";

export function KeysPage() {
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
        <ErrorNote error={create.error} />
        {create.data && (
          <p>
            Copy it now, it is not shown again:
            <br />
            <code className="new-key" data-testid="new-key">
              {create.data.api_key}
            </code>
          </p>
        )}
      </form>
      <section className="card">
        <ErrorNote error={keys.error ?? revoke.error} />
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Created</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data?.items.map((k) => (
              <tr key={k.id} className={k.revoked_at ? "muted" : undefined}>
                <td>
                  {k.name}
                  {k.current && " (this session)"}
                </td>
                <td>{k.prefix}</td>
                <td>{new Date(k.created_at).toLocaleString()}</td>
                <td>{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "–"}</td>
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
      </section>
    </>
  );
}
