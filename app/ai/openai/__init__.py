"""The `openai` AI provider: any OpenAI-compatible endpoint, through the official SDK."""

from app.ai.openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider"]
