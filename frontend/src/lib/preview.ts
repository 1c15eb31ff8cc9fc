/**
 * The article as a publisher posts it: in-article image n after the n-th `</h2>`, those beyond
 * the headings at the end (app/publishing/publishers/wordpress.py `with_images`, the same rule).
 */

export type PreviewImage = { src: string; alt: string };

const H2_END = /<\/h2\s*>/gi;

function escapeAttribute(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll('"', "&quot;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

export function withImages(html: string, images: PreviewImage[]): string {
  const ends = [...html.matchAll(H2_END)].map((m) => (m.index ?? 0) + m[0].length);
  const parts: string[] = [];
  let last = 0;
  images.forEach((image, index) => {
    const figure = `<figure><img src="${escapeAttribute(image.src)}" alt="${escapeAttribute(image.alt)}"></figure>`;
    const at = index < ends.length ? ends[index] : html.length;
    parts.push(html.slice(last, at), figure);
    last = at;
  });
  parts.push(html.slice(last));
  return parts.join("");
}

/** The preview's own styles: images fit the frame's width. */
export const PREVIEW_STYLE =
  "<style>body{font-family:system-ui,sans-serif;line-height:1.5;margin:1rem;color:#1d2330}" +
  "img{max-width:100%;height:auto;border-radius:4px}figure{margin:1rem 0}</style>";
