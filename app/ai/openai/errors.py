"""The SDK's errors as the engine's: `AIFatalError` where no call can succeed (the key or the
model is refused, the account's quota is spent, the server cannot answer to a JSON schema: the
run fails), `AIError` where this call failed after the SDK's own retries (the item fails).
Messages name the provider's reason and never carry the API key, nor credentials or a query of
`AI_BASE_URL`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai

from app.ai.base import AIError, AIFatalError

# A provider's error message is shown on the run; a page of HTML from a proxy is cut short.
MAX_REASON_CHARS = 300
MIN_SECRET_CHARS = 8


class ErrorTranslator:
    def __init__(self, *, base_url: str, api_key: str, timeout: float, max_retries: int) -> None:
        self._base_url = shown_url(base_url)
        self._api_key = api_key
        self._timeout = timeout
        self._attempts = max_retries + 1

    @contextmanager
    def translating(self, what: str) -> Iterator[None]:
        """Around one SDK call; `what` says what was asked ("text model 'gpt-4o-mini'").

        `from None` everywhere: the SDK's exception holds the request, Authorization header
        included, and a chained traceback would carry it into the logs."""
        try:
            yield
        except openai.AuthenticationError as exc:
            raise AIFatalError(
                f"the AI provider rejected the API key (401): {self._reason(exc)}"
            ) from None
        except openai.PermissionDeniedError as exc:
            raise AIFatalError(
                f"the AI provider refused access to the {what} (403): {self._reason(exc)}"
            ) from None
        except openai.NotFoundError as exc:
            raise AIFatalError(
                f"the AI provider does not know the {what} (404): {self._reason(exc)}"
            ) from None
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota":
                raise AIFatalError(
                    f"the AI provider account has no quota left (429): {self._reason(exc)}"
                ) from None
            raise AIError(
                f"the AI provider answered 429 after {self._attempts} attempts: {self._reason(exc)}"
            ) from None
        except openai.BadRequestError as exc:
            if exc.param == "response_format" or "response_format" in self._reason(exc):
                raise AIFatalError(
                    f"the AI provider cannot answer the {what} to a JSON schema (400): "
                    f"{self._reason(exc)}; use a model and server with structured outputs"
                ) from None
            raise AIError(f"the AI provider answered 400: {self._reason(exc)}") from None
        except openai.APITimeoutError:
            raise AIError(
                f"the AI provider did not answer within {self._timeout:g} s "
                f"({self._attempts} attempts)"
            ) from None
        except openai.APIConnectionError as exc:
            raise AIError(
                f"could not reach the AI provider at {self._base_url} "
                f"({self._attempts} attempts): {self._redact(str(exc.__cause__ or exc))}"
            ) from None
        except openai.APIStatusError as exc:
            retried = exc.status_code == 429 or exc.status_code >= 500
            tries = f" after {self._attempts} attempts" if retried else ""
            raise AIError(
                f"the AI provider answered {exc.status_code}{tries}: {self._reason(exc)}"
            ) from None
        except openai.OpenAIError as exc:
            raise AIError(f"the AI provider call failed: {self._redact(str(exc))}") from None

    def _reason(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        text = str(message) if message else (str(body) if body else exc.response.reason_phrase)
        return self._redact(text)[:MAX_REASON_CHARS]

    def _redact(self, text: str) -> str:
        # Real keys are long; a short placeholder ("ollama") is no secret, and replacing it
        # would garble the message.
        if len(self._api_key) < MIN_SECRET_CHARS:
            return text
        return text.replace(self._api_key, "***")


def shown_url(url: str) -> str:
    """The URL as a message may show it: no user, password or query (either may hold a key)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "AI_BASE_URL"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
