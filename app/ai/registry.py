"""Which provider a name stands for. An explicit table rather than import side effects, so a
test can add a fake under its own name. Each factory imports its provider when called: a
process loads only the provider it runs (the local one's clustering pulls in scikit-learn and
SciPy, about 100 MB resident, which a worker talking to OpenAI has no use for)."""

from __future__ import annotations

from collections.abc import Callable

from app.ai.base import AIProvider
from app.config import Settings


def _local(settings: Settings) -> AIProvider:
    from app.ai.local import LocalProvider

    return LocalProvider(latency_ms=settings.local_ai_latency_ms)


def _openai(settings: Settings) -> AIProvider:
    from app.ai.openai import OpenAIProvider

    return OpenAIProvider(settings)


PROVIDERS: dict[str, Callable[[Settings], AIProvider]] = {
    "local": _local,
    "openai": _openai,
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
