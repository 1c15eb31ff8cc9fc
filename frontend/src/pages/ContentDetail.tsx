import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { ErrorNote } from "../components/ui";
import { contentQueries, useReviewContent } from "../content/queries";

export function ContentDetailPage() {
  const contentId = Number(useParams().contentId);
  const content = useQuery(contentQueries.detail(contentId));
  const review = useReviewContent(contentId);

  const c = content.data;
  return (
    <>
      <p>
        <Link to="/content">← All content</Link>
      </p>
      <ErrorNote error={content.error ?? review.error} />
      {c && (
        <article className="card">
          <h1>{c.title}</h1>
          <p className="hint">
            {c.word_count} words · {c.status} · {c.site_status.replace("_", " ")}
            {c.external_url && (
              <>
                {" · "}
                <a href={c.external_url}>on the site</a>
              </>
            )}
          </p>
          <dl className="meta">
            <dt>Meta title</dt>
            <dd>{c.meta_title}</dd>
            <dt>Meta description</dt>
            <dd>{c.meta_description}</dd>
            {c.publish_error && (
              <>
                <dt>Publishing error</dt>
                <dd className="error">{c.publish_error}</dd>
              </>
            )}
          </dl>
          <div className="actions">
            <button
              type="button"
              disabled={!["review", "rejected"].includes(c.status) || review.isPending}
              onClick={() => review.mutate("approve")}
            >
              Approve
            </button>
            <button
              type="button"
              disabled={!["review", "approved"].includes(c.status) || review.isPending}
              onClick={() => review.mutate("reject")}
            >
              Reject
            </button>
          </div>
          {c.images.length > 0 && (
            <div className="gallery">
              {c.images.map((image) => (
                <figure key={image.id}>
                  {image.url ? <img src={image.url} alt={image.prompt} /> : <div className="placeholder">{image.status}</div>}
                  <figcaption>
                    {image.image_type === "featured" ? "Featured" : `In article ${image.position}`}
                  </figcaption>
                </figure>
              ))}
            </div>
          )}
          {/* The HTML was sanitised by the server; the sandbox keeps any script from running. */}
          <iframe title="Article preview" className="preview" sandbox="" srcDoc={c.html} />
        </article>
      )}
    </>
  );
}
