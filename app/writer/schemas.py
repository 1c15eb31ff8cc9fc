"""Writer output shapes."""

from __future__ import annotations

from datetime import datetime

from app.schemas import OutputModel


class TaskOut(OutputModel):
    """A writing task made from an idea."""

    id: int
    site_id: int
    idea_id: int | None
    cluster_id: int | None
    title: str
    description: str
    status: str
    error: str | None
    created_at: datetime


class ImageOut(OutputModel):
    """An image of an article: its prompt, and once generated, its URL."""

    id: int
    content_id: int
    image_type: str
    position: int
    prompt: str
    url: str | None
    status: str
    error: str | None


class ContentSummaryOut(OutputModel):
    """An article without its HTML (lists)."""

    id: int
    site_id: int
    task_id: int | None
    title: str
    word_count: int
    meta_title: str
    meta_description: str
    status: str
    site_status: str
    scheduled_publish_at: datetime | None
    published_at: datetime | None
    external_id: str | None
    external_url: str | None
    publish_error: str | None
    created_at: datetime
    updated_at: datetime


class ContentOut(ContentSummaryOut):
    """An article with its HTML and images."""

    html: str
    images: list[ImageOut]
