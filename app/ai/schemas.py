"""What the five AI functions take and give. A provider's output that does not validate against
these models is a failure of the call, never written to the database."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Inputs


class KeywordBrief(_Model):
    id: int
    keyword: str
    volume: int | None = None
    intent: str | None = None


class ClusterBrief(_Model):
    name: str
    description: str
    keywords: list[str]


class OutlineSection(_Model):
    heading: str = Field(min_length=1, max_length=300)
    covers: str = Field(min_length=1, max_length=2000, description="What the section covers.")


class ContentBrief(_Model):
    """An idea as the content function receives it: its stored outline and target length."""

    title: str
    description: str
    outline: list[OutlineSection]
    content_type: str
    content_structure: str
    target_keywords: list[str]
    target_word_count: int


class ArticleBrief(_Model):
    title: str
    html: str


# Outputs


class ClusterOut(_Model):
    name: str = Field(min_length=1, max_length=300)
    description: str = Field(max_length=5000)
    keywords: list[str] = Field(min_length=1, description="Keywords of the input, as given.")


class ClusteringOut(_Model):
    clusters: list[ClusterOut]

    @model_validator(mode="after")
    def _only_given_keywords(self, info: ValidationInfo) -> ClusteringOut:
        """With the keywords given as context (`given_keywords`), a keyword the answer made up
        fails validation, so the provider's repair request can name it."""
        given = (info.context or {}).get("keywords")
        if given is None:
            return self
        unknown = [k for c in self.clusters for k in c.keywords if normalised(k) not in given]
        if unknown:
            raise ValueError(
                f"keywords that were not given: {unknown[:5]}; use each keyword exactly as given"
            )
        return self


def normalised(keyword: str) -> str:
    """A keyword as answers are matched to the input: case and spacing aside."""
    return " ".join(keyword.split()).casefold()


def given_keywords(keywords: list[KeywordBrief]) -> dict[str, Any]:
    """The validation context that checks a clustering answer against the keywords given."""
    return {"keywords": {normalised(k.keyword) for k in keywords}}


class IdeaOut(_Model):
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(max_length=5000)
    outline: list[OutlineSection] = Field(min_length=1, max_length=20)
    content_type: str = Field(min_length=1, max_length=50)
    content_structure: str = Field(min_length=1, max_length=50)
    primary_keyword: str = Field(min_length=1, max_length=500)
    covered_keywords: list[str]
    target_word_count: int = Field(ge=100, le=10000)


MIN_IDEAS = 3
MAX_IDEAS = 7


def idea_count(keywords: int) -> int:
    """The ideas a cluster of `keywords` keywords is worth: one more for every two keywords past
    the first two, within 3 to 7 (the local provider makes this many; the estimate foresees it)."""
    return min(MAX_IDEAS, max(MIN_IDEAS, 2 + math.ceil(keywords / 2)))


class IdeasOut(_Model):
    ideas: list[IdeaOut] = Field(min_length=MIN_IDEAS, max_length=MAX_IDEAS)


class ArticleOut(_Model):
    title: str = Field(min_length=1, max_length=500)
    html: str = Field(min_length=1)
    meta_title: str = Field(max_length=300)
    meta_description: str = Field(max_length=500)


class ImagePromptsOut(_Model):
    featured: str = Field(min_length=1, max_length=4000)
    in_article: list[str] = Field(max_length=10)


class ImageOut(_Model):
    """A generated image: the file's bytes and its type."""

    data: bytes = Field(min_length=1)
    media_type: str = Field(pattern=r"^image/(png|jpeg|webp)$")


class Usage(_Model):
    """Tokens a call used, where the provider reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
