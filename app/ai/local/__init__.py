"""The `local` AI provider: real algorithms on the input, no network, deterministic output."""

from app.ai.local.provider import LocalProvider

__all__ = ["LocalProvider"]
