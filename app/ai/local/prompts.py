"""Image prompts from an article: the featured image from its title, the in-article images from
its H2 headings. Each prompt is "<subject> — <style>"; the local image renderer prints the
subject."""

from __future__ import annotations

from app.ai.html import headings
from app.ai.local.text import shorten
from app.ai.schemas import ArticleBrief, ImagePromptsOut

FEATURED_STYLE = "featured image, editorial illustration, bright flat colours, wide format, no text"
IN_ARTICLE_STYLE = "illustration for the article “{title}”, clean flat style, soft light, no text"
# When there are more images than headings, the headings come round again from another view.
VIEWS = ("", "close-up detail", "wide scene", "abstract composition")
# Keeps a prompt well inside the schema's limit whatever the article's title and headings.
SUBJECT_CHARS = 500


def generate_image_prompts(article: ArticleBrief, in_article_count: int) -> ImagePromptsOut:
    """Exactly `in_article_count` in-article prompts, cycling through the headings (or the title
    when the article has none)."""
    title = shorten(article.title, SUBJECT_CHARS)
    subjects = [shorten(h, SUBJECT_CHARS) for h in headings(article.html) if h] or [title]
    style = IN_ARTICLE_STYLE.format(title=title)
    prompts = []
    for index in range(in_article_count):
        subject = subjects[index % len(subjects)]
        view = VIEWS[(index // len(subjects)) % len(VIEWS)]
        prompts.append(", ".join(part for part in (f"{subject} — {style}", view) if part))
    return ImagePromptsOut(featured=f"{title} — {FEATURED_STYLE}", in_article=prompts)
