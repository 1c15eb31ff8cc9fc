"""Planner input and output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from app.schemas import InputModel, OutputModel

MAX_KEYWORD_LENGTH = 500
MAX_KEYWORDS_PER_REQUEST = 5000
# The column is a BIGINT; 2^53 - 1 is the largest integer every JSON client reads exactly (and
# billions of searches a month is already more than any keyword has).
MAX_VOLUME = 2**53 - 1


class KeywordIn(InputModel):
    """A keyword to add. Surrounding and repeated white space is removed."""

    keyword: str = Field(max_length=2000)
    volume: int | None = Field(None, ge=0, le=MAX_VOLUME, description="Monthly search volume.")
    difficulty: int | None = Field(None, ge=0, le=100, description="Ranking difficulty, 0-100.")
    intent: str | None = Field(None, max_length=50, description="e.g. informational.")


class KeywordsIn(InputModel):
    """Keywords to add to a site."""

    keywords: list[KeywordIn] = Field(min_length=1, max_length=MAX_KEYWORDS_PER_REQUEST)


class RowError(OutputModel):
    """A row that was not imported, and why. Rows count from 1; in a CSV the header is row 1."""

    row: int
    message: str


class ImportResult(OutputModel):
    """What an import did: new keywords, rows that repeated a keyword, rows in error."""

    created: int = Field(description="Keywords added.")
    duplicates: int = Field(
        description="Rows skipped because the keyword already exists for the site (in any case) "
        "or appeared earlier in the same input."
    )
    errors: list[RowError]


class KeywordPatch(InputModel):
    """Fields of a keyword to change."""

    disabled: bool


class KeywordOut(OutputModel):
    """A keyword of a site."""

    id: int
    site_id: int
    keyword: str
    volume: int | None
    difficulty: int | None
    intent: str | None
    cluster_id: int | None
    status: str
    disabled: bool
    created_at: datetime


class ClusterOut(OutputModel):
    """A group of related keywords."""

    id: int
    site_id: int
    name: str
    description: str
    keywords_count: int
    status: str
    created_at: datetime


class IdeaOut(OutputModel):
    """An article idea for a cluster, with its outline."""

    id: int
    site_id: int
    cluster_id: int
    title: str
    description: str
    outline: list[dict[str, Any]]
    content_type: str
    content_structure: str
    target_keywords: list[str]
    target_word_count: int | None
    status: str
    created_at: datetime
