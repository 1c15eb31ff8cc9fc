"""`LocalProvider`: the five AI functions, computed here. CPU-bound work (clustering, writing,
rendering) runs in a thread so the event loop stays free; the configured latency is awaited on
the loop, outside any thread or lock, so concurrent calls wait at the same time as they would on
a real provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from app.ai.base import Answer
from app.ai.local.articles import generate_article
from app.ai.local.clustering import cluster_keywords
from app.ai.local.ideas import generate_ideas
from app.ai.local.images import render_image
from app.ai.local.prompts import generate_image_prompts
from app.ai.schemas import (
    ArticleBrief,
    ArticleOut,
    ClusterBrief,
    ClusteringOut,
    ContentBrief,
    IdeasOut,
    ImageOut,
    ImagePromptsOut,
    KeywordBrief,
)

T = TypeVar("T")


class LocalProvider:
    """No network, no account, deterministic; reports no token usage."""

    name: str = "local"

    def __init__(self, latency_ms: int = 0) -> None:
        self.latency = latency_ms / 1000

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        return await self._answer(asyncio.to_thread(cluster_keywords, keywords))

    async def generate_ideas(self, cluster: ClusterBrief) -> Answer[IdeasOut]:
        return await self._answer(asyncio.to_thread(generate_ideas, cluster))

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        return await self._answer(asyncio.to_thread(generate_article, brief))

    async def generate_image_prompts(
        self, article: ArticleBrief, in_article_count: int
    ) -> Answer[ImagePromptsOut]:
        return await self._answer(
            asyncio.to_thread(generate_image_prompts, article, in_article_count)
        )

    async def generate_image(self, prompt: str, *, featured: bool) -> Answer[ImageOut]:
        return await self._answer(asyncio.to_thread(render_image, prompt, featured=featured))

    async def aclose(self) -> None:
        """Nothing to release: no connections, no files."""

    async def _answer(self, work: Awaitable[T]) -> Answer[T]:
        """The result once both the work is done and `latency` has passed since the call."""
        started = time.monotonic()
        output = await work
        remaining = self.latency - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        return Answer(output)
