import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { ErrorNote, useDocumentTitle } from "../components/ui";
import { contentQueries, useReviewContent } from "../content/queries";
import { PREVIEW_STYLE, withImages } from "../lib/preview";

export function ContentDetailPage() {
  const contentId = Number(useParams().contentId);
  const content = useQuery(contentQueries.detail(contentId));
  const review = useReviewContent(contentId);

  const c = content.data;
  useDocumentTitle(c ? c.title : "Article");
  // The article as it will be published: its in-article images placed in the text.
  const inArticle = (c?.images ?? [])
    .filter((i) => i.image_type !== "featured" && i.url)
    .sort((a, b) => a.position - b.position)
    .map((i) => ({ src: i.url ?? "", alt: i.prompt }));
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
            {c.word_count} words · {c.status} · {c.site_status.replaceAll("_", " ")}
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
              className="approve"
              disabled={!["review", "rejected"].includes(c.status) || review.isPending}
              onClick={() => review.mutate("approve")}
            >
              <span aria-hidden="true">✓ </span>
              Approve
            </button>
            <button
              type="button"
              className="reject"
              disabled={!["review", "approved"].includes(c.status) || review.isPending}
              onClick={() => review.mutate("reject")}
            >
              <span aria-hidden="true">✕ </span>
              Reject
            </button>
          </div>
          {c.images.length > 0 && (
            <div className="gallery">
              {c.images.map((image) => (
                <figure key={image.id}>
                  {image.url ? (
                    <img src={image.url} alt={image.prompt} />
                  ) : (
                    <div className="placeholder">{image.status}</div>
                  )}
                  <figcaption>
                    {image.image_type === "featured" ? "Featured" : `In article ${image.position}`}
                  </figcaption>
                </figure>
              ))}
            </div>
          )}
          {/* The HTML was sanitised by the server; the sandbox keeps any script from running. */}
          <iframe
            title="Article preview"
            className="preview"
            sandbox=""
            srcDoc={PREVIEW_STYLE + withImages(c.html, inArticle)}
          />
        </article>
      )}
    </>
  );
}
