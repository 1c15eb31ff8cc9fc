import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { useCreateSite } from "../account/queries";
import { ErrorNote, TableScroll, useDocumentTitle } from "../components/ui";
import { useSession } from "../session";

export function SitesPage() {
  useDocumentTitle("Sites");
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
        <TableScroll label="Sites table">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">URL</th>
                <th scope="col">Time zone</th>
                <th scope="col">Settings</th>
              </tr>
            </thead>
            <tbody>
              {sites.map((s) => (
                <tr key={s.id}>
                  <td>{s.name}</td>
                  <td>{s.url}</td>
                  <td>{s.timezone}</td>
                  <td>
                    <Link to={`/sites/${s.id}/settings`}>
                      AI budget<span className="sr-only"> of {s.name}</span>
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
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
        <ErrorNote
          error={create.error}
          labelOf={(f) => ({ name: "Name", url: "URL", timezone: "Time zone" })[f]}
        />
      </form>
    </>
  );
}
