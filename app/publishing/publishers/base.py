"""What every publisher shares: the article it is given, where it sends it, what it answers, how it
fails, and the one way it talks to the outside (guarded requests, retried with backoff).

A publisher raises `PublishError` with a reason fit to show a user: a status code and a short
excerpt of the answer, never a credential (a peer that echoes the secret has it blanked out).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.config import Settings
from app.models.writer import ImageType
from app.outbound.client import OutboundClient, OutboundError, UnsafeUrl

T = TypeVar("T")

EXCERPT_CHARS = 200
REDACTED = "[redacted]"


class PublishError(Exception):
    """A publication failed. `retryable`: the peer may do better later (network, timeout, 429,
    5xx); anything else (401, 404, a refused URL, a bad answer) fails at once."""

    def __init__(
        self, reason: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 1

    def describe(self) -> str:
        if self.attempts > 1:
            return f"{self.reason} (after {self.attempts} attempts)"
        return self.reason


@dataclass(frozen=True)
class ArticleImage:
    image_id: int
    image_type: str
    position: int
    url: str  # as served by this service (`/media/...`)
    path: Path | None  # the stored file; None when the URL names none under the media folder
    media_type: str


@dataclass(frozen=True)
class Article:
    """A content row and its generated images, as a publisher needs them."""

    content_id: int
    site_id: int
    title: str
    html: str
    meta_title: str
    meta_description: str
    word_count: int
    scheduled_publish_at: datetime | None
    published_at: datetime  # when this publication was claimed
    images: tuple[ArticleImage, ...] = ()

    @property
    def featured(self) -> ArticleImage | None:
        return next((i for i in self.images if i.image_type == ImageType.FEATURED), None)

    @property
    def in_article(self) -> list[ArticleImage]:
        chosen = [i for i in self.images if i.image_type == ImageType.IN_ARTICLE]
        return sorted(chosen, key=lambda i: i.position)


@dataclass(frozen=True)
class Destination:
    """The site's integration. The secret is left out of `repr`, so it never reaches a log."""

    endpoint_url: str
    username: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Published:
    """Where the article now lives, where the peer says so."""

    external_id: str | None = None
    external_url: str | None = None


class Publisher(Protocol):
    kind: str

    async def publish(self, article: Article, destination: Destination) -> Published: ...

    async def check(self, destination: Destination) -> str:
        """Try the connection and the credentials; what went well, or a `PublishError`."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries of one request, waiting `initial * 2**n` seconds plus up to `initial` of
    jitter between them, at most `maximum`; a `Retry-After` is honoured up to `maximum` seconds."""

    attempts: int
    initial: float = 1.0
    maximum: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(attempts=settings.publish_max_attempts)


class Transport:
    """Requests to the user's peer: SSRF-guarded (`OutboundClient`), classified into
    `PublishError`s, and retried through tenacity."""

    def __init__(self, client: OutboundClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry
        self._backoff = wait_exponential_jitter(
            multiplier=retry.initial, max=retry.maximum, jitter=retry.initial
        )

    async def retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` until it succeeds, fails for good, or runs out of attempts."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, PublishError) and e.retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await operation()
                except PublishError as exc:
                    exc.attempts = attempt.retry_state.attempt_number
                    raise
        raise AssertionError("tenacity either returns or reraises")

    async def once(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        auth: tuple[str, str] | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """One request; a 2xx answer, or a `PublishError` saying what went wrong with `what`."""
        try:
            response = await self._client.request(
                method, url, headers=headers, content=content, auth=auth
            )
        except UnsafeUrl as exc:
            raise PublishError(f"{what}: {exc.message}") from None
        except OutboundError as exc:
            raise PublishError(f"{what} {exc}") from None
        except httpx.TimeoutException:
            raise PublishError(f"{what} did not answer in time", retryable=True) from None
        except httpx.TooManyRedirects:
            raise PublishError(f"{what} redirected too many times") from None
        except httpx.TransportError as exc:
            reason = f"could not reach {what}: {_first_line(exc)}"
            raise PublishError(reason, retryable=True) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # An answer httpx could not make sense of (a body that does not decode, a bad URL
            # in a redirect): another attempt would get the same.
            raise PublishError(f"{what} answered unreadably: {_first_line(exc)}") from None
        if response.is_success:
            return response
        status = response.status_code
        excerpt = _excerpt(response, secret or (auth[1] if auth else None))
        raise PublishError(
            f"{what} answered HTTP {status}" + (f": {excerpt}" if excerpt else ""),
            retryable=status == 429 or status >= 500,
            retry_after=_retry_after(response),
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """`once`, retried."""
        return await self.retrying(
            lambda: self.once(method, url, what=what, headers=headers, content=content, auth=auth)
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, PublishError) and error.retry_after is not None:
            return min(error.retry_after, self._retry.maximum)
        return float(self._backoff(state))


def _first_line(error: Exception) -> str:
    """The error's kind and the start of its message (httpx's carry no credentials)."""
    text = str(error).strip().splitlines()
    detail = text[0][:EXCERPT_CHARS] if text else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def _excerpt(response: httpx.Response, secret: str | None) -> str:
    """The start of the answer: WordPress's `{code, message}` where given, else its text."""
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("code")
        text = f"{code}: {body['message']}" if isinstance(code, str) else body["message"]
    if secret:
        text = text.replace(secret, REDACTED)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (the HTTP-date form is rare for APIs and taken as absent)."""
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)
