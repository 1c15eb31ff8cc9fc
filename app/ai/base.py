"""The provider interface: five async functions. Each answer carries the validated output and,
where the provider reports it, the tokens used (token-priced operations are charged by them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

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
    Usage,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    output: T
    usage: Usage | None = None


class AIError(Exception):
    """One call failed (after the provider's own retries): the item fails, the stage goes on.
    `usage`: the tokens its requests used all the same, where the provider reported them."""

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class AIFatalError(AIError):
    """The provider cannot work at all (a rejected key, a missing model): the run fails."""


class AIProvider(Protocol):
    name: str

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]: ...

    async def generate_ideas(self, cluster: ClusterBrief) -> Answer[IdeasOut]: ...

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]: ...

    async def generate_image_prompts(
        self, article: ArticleBrief, in_article_count: int
    ) -> Answer[ImagePromptsOut]: ...

    async def generate_image(self, prompt: str, *, featured: bool) -> Answer[ImageOut]: ...

    async def aclose(self) -> None: ...
