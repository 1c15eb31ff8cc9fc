import { useState, type FormEvent } from "react";
import { useCreateSite } from "../account/queries";
import { ErrorNote } from "../components/ui";
import { useSession } from "../session";

export function SitesPage() {
  const { sites, setSiteId } = useSession();
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone);
  const create = useCreateSite();

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate(
      { name, url, timezone },
      {
        // After the site list was refetched: the session only takes a site it knows.
        onSuccess: (site) => {
          setName("");
          setUrl("");
          setSiteId(site.id);
        },
      },
    );
  }

  return (
    <>
      <h1>Sites</h1>
      <section className="card">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>URL</th>
              <th>Time zone</th>
            </tr>
          </thead>
          <tbody>
            {sites.map((s) => (
              <tr key={s.id}>
                <td>{s.name}</td>
                <td>{s.url}</td>
                <td>{s.timezone}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <form className="card" onSubmit={submit}>
        <h2>Add a site</h2>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          URL
          <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} />
        </label>
        <label>
          Time zone
          <input value={timezone} onChange={(e) => setTimezone(e.target.value)} required />
        </label>
        <button type="submit" disabled={create.isPending}>
          Add site
        </button>
        <ErrorNote error={create.error} />
      </form>
    </>
  );
}
