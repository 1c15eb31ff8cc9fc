import { describe, expect, it } from "vitest";
import { withImages } from "./preview";

const html = "<p>Intro</p><h2>One</h2><p>a</p><h2>Two</h2><p>b</p>";

describe("withImages", () => {
  it("puts image n after the n-th heading", () => {
    const out = withImages(html, [
      { src: "/media/a.png", alt: "first" },
      { src: "/media/b.png", alt: "second" },
    ]);
    expect(out).toBe(
      '<p>Intro</p><h2>One</h2><figure><img src="/media/a.png" alt="first"></figure><p>a</p>' +
        '<h2>Two</h2><figure><img src="/media/b.png" alt="second"></figure><p>b</p>',
    );
  });
  it("puts images beyond the headings at the end", () => {
    const out = withImages("<p>x</p>", [{ src: "/m.png", alt: "m" }]);
    expect(out).toBe('<p>x</p><figure><img src="/m.png" alt="m"></figure>');
  });
  it("escapes the alt text", () => {
    const out = withImages("", [{ src: "/m.png", alt: 'a "quoted" <b>' }]);
    expect(out).toContain('alt="a &quot;quoted&quot; &lt;b&gt;"');
  });
  it("leaves an article without images as it is", () => {
    expect(withImages(html, [])).toBe(html);
  });
});
