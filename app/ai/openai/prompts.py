"""Every prompt of the `openai` provider, in one place.

A text function is a system message (the instructions) and a user message that is the input as a
JSON document, answered with JSON fitting the output model's schema. The input documents are
models too, so a test server can read them back (tests/servers/openai_compatible.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from app.ai.schemas import (
    ArticleBrief,
    ArticleOut,
    ClusterBrief,
    ClusteringOut,
    ContentBrief,
    IdeasOut,
    ImagePromptsOut,
    KeywordBrief,
)

Out = TypeVar("Out", bound=BaseModel)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusteringInput(_Input):
    keywords: list[KeywordBrief]


class IdeasInput(_Input):
    cluster: ClusterBrief


class ArticleInput(_Input):
    brief: ContentBrief


class ImagePromptsInput(_Input):
    article: ArticleBrief
    in_article_count: int


@dataclass(frozen=True)
class Prompt(Generic[Out]):
    """One text function: `name` names its JSON schema (and tells a test server which it is)."""

    name: str
    system: str
    input: type[_Input]
    output: type[Out]


_JSON_ONLY = (
    "The user message is a JSON document. Answer with one JSON object that fits the given "
    "schema, and nothing else: no prose, no code fences."
)

CLUSTERING = Prompt(
    name="clustering",
    input=ClusteringInput,
    output=ClusteringOut,
    system=f"""You are an SEO strategist. Group the given keywords into topic clusters: keywords
a single article (or a small group of closely linked articles) could rank for together, sharing
the searcher's intent. Give each cluster a short, specific name (not one of its keywords
verbatim unless it is the natural topic name) and a one or two sentence description of the
topic and its intent. Every keyword must be in exactly one cluster, spelled exactly as given;
use no keyword that was not given. A keyword that fits nowhere gets a cluster of its own.
{_JSON_ONLY}""",
)

IDEAS = Prompt(
    name="ideas",
    input=IdeasInput,
    output=IdeasOut,
    system=f"""You are a content strategist. For the given keyword cluster, propose 3 to 7
distinct article ideas that together cover the cluster without overlapping. For each idea give:
a compelling title; a description of the article's angle and reader; an outline of 3 to 10 H2
sections, each with its heading and what the section covers; content_type (post, page or
guide); content_structure (article, listicle, how_to, comparison, review, checklist or faq);
the primary keyword and the other keywords of the cluster it covers (as given); and a target
word count between 800 and 3000 that fits the topic's depth.
{_JSON_ONLY}""",
)

ARTICLE = Prompt(
    name="article",
    input=ArticleInput,
    output=ArticleOut,
    system=f"""You are an expert writer. Write the article the brief describes. Follow its
outline: one <h2> per outline section, in the given order, with the given headings, each
covering what its section says it covers. Aim for the brief's target_word_count (within about
10%). Use the target keywords naturally, never stuffed. Match the content_structure (a listicle
uses lists, a how_to numbered steps, a faq questions as headings). The html is the article
body only: <h2>, <h3>, <p>, <ul>, <ol>, <li>, <strong>, <em>, <blockquote>, <a>; no <h1>, no
<html>, <head> or <body>, no scripts, no styles, no images. meta_title is at most 60
characters, meta_description at most 160.
{_JSON_ONLY}""",
)

IMAGE_PROMPTS = Prompt(
    name="image_prompts",
    input=ImagePromptsInput,
    output=ImagePromptsOut,
    system=f"""You are an art director. From the given article, write prompts for an image
generator: `featured`, a hero image that captures the article's subject as a whole, and
`in_article`, exactly in_article_count prompts, one per major section in order, each showing
what that section is about. Each prompt is one or two sentences describing a concrete scene:
subject, setting, composition, light and style. No text, letters, logos or watermarks in the
image; no real people's names.
{_JSON_ONLY}""",
)

_IMAGE_STYLE = "Photographic, natural light, high detail, no text, letters or watermarks."


def image_prompt(prompt: str, *, featured: bool) -> str:
    """What the image model gets for one of the prompts the image prompt function wrote."""
    framing = "Wide hero image for the top of an article" if featured else "Article illustration"
    return f"{framing}: {prompt.strip()} {_IMAGE_STYLE}"


def repair_request(error: str) -> str:
    """The user message that asks once more after an answer failed its schema."""
    return (
        "Your answer could not be used: "
        f"{error}\nAnswer again with the corrected JSON object only, fitting the schema."
    )
