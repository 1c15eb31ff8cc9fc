"""Delivering a notification: one signed POST through the SSRF-guarded `OutboundClient`.

Network errors, timeouts, 429 and 5xx answers are retried with exponential backoff (a
`Retry-After` is honoured, within bounds) up to the attempts given; any other answer is final.
The body is signed again on each attempt (`app.outbound.signing`), under the same delivery id.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from app.outbound.client import OutboundClient, OutboundError, UnsafeUrl
from app.outbound.signing import signed_headers

# The longest pause between two attempts, whatever the backoff or a `Retry-After` asks.
MAX_BACKOFF_SECONDS = 30.0
BACKOFF = wait_exponential_jitter(initial=1, max=MAX_BACKOFF_SECONDS, jitter=1)


class RetryableAnswer(Exception):
    """A 429 or 5xx answer: worth another attempt, after `retry_after` seconds if it said so."""

    def __init__(self, status_code: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class _Backoff(wait_base):
    """The exponential backoff, or the receiver's `Retry-After` when it sent one."""

    def __init__(self, base: wait_base) -> None:
        self.base = base

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(failure, RetryableAnswer) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_BACKOFF_SECONDS)
        return min(float(self.base(retry_state)), MAX_BACKOFF_SECONDS)


@dataclass(frozen=True)
class Delivery:
    """How one notification went."""

    sent: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


async def send(
    client: OutboundClient,
    url: str,
    secret: str,
    body: bytes,
    delivery_id: str,
    *,
    attempts: int,
    backoff: wait_base = BACKOFF,
) -> Delivery:
    """POST the signed body, retrying what may pass on another attempt; never raises for the
    receiver's faults (they end in a `Delivery` that says what went wrong)."""
    made = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=_Backoff(backoff),
        retry=retry_if_exception_type((httpx.TransportError, RetryableAnswer)),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                made += 1
                # Signed again on each attempt: the timestamp must be fresh for the receiver.
                headers = signed_headers(secret, body, delivery_id)
                response = await client.request("POST", url, headers=headers, content=body)
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryableAnswer(response.status_code, _retry_after(response))
                if response.is_success:
                    return Delivery(True, made, response.status_code)
                return Delivery(False, made, response.status_code, f"HTTP {response.status_code}")
    except RetryableAnswer as exc:
        return Delivery(False, made, exc.status_code, str(exc))
    except UnsafeUrl as exc:
        return Delivery(False, made, None, exc.message)
    except OutboundError as exc:
        return Delivery(False, made, None, str(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Delivery(False, made, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    raise AssertionError("the loop returns or raises")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
