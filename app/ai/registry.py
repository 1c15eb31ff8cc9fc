"""Which provider a name stands for. An explicit table rather than import side effects, so a
test can add a fake under its own name."""

from __future__ import annotations

from collections.abc import Callable

from app.ai.base import AIProvider
from app.ai.local import LocalProvider
from app.ai.openai import OpenAIProvider
from app.config import Settings


def _local(settings: Settings) -> AIProvider:
    return LocalProvider(latency_ms=settings.local_ai_latency_ms)


PROVIDERS: dict[str, Callable[[Settings], AIProvider]] = {
    "local": _local,
    "openai": OpenAIProvider,
}


class UnknownProvider(ValueError):
    """AI_PROVIDER names no provider in the table: a configuration mistake, found at start."""


def create_provider(settings: Settings) -> AIProvider:
    try:
        factory = PROVIDERS[settings.ai_provider]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(
            f"unknown AI provider {settings.ai_provider!r} (AI_PROVIDER); known: {known}"
        ) from None
    return factory(settings)
