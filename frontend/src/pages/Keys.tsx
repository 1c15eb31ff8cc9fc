import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, unwrap } from "../api/client";
import { ErrorNote } from "../components/ui";

export function KeysPage() {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const keys = useQuery({
    queryKey: ["keys"],
    queryFn: () => unwrap(api.GET("/api/v1/auth/keys/", { params: { query: { limit: 500 } } })),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["keys"] });
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/keys/", { body: { name } })),
    onSuccess: () => {
      setName("");
      return refresh();
    },
  });
  const revoke = useMutation({
    mutationFn: (id: number) =>
      unwrap(api.DELETE("/api/v1/auth/keys/{key_id}/", { params: { path: { key_id: id } } })),
    onSuccess: refresh,
  });

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate();
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
