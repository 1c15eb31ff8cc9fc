"""Signed deliveries (webhook publisher and run notifications), the way Stripe and GitHub sign:
the receiver recomputes HMAC-SHA256 over `"{timestamp}.{body}"` with the shared secret, compares
in constant time, and refuses a timestamp older than a few minutes (replay)."""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Automation-Timestamp"
SIGNATURE_HEADER = "X-Automation-Signature"
DELIVERY_HEADER = "X-Automation-Delivery"
SCHEME = "sha256"
# A receiver should refuse deliveries signed longer ago than this.
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(
    secret: str, body: bytes, delivery_id: str, now: float | None = None
) -> dict[str, str]:
    """The headers of one delivery. `delivery_id` is the same on every retry of it, so a
    receiver can drop a delivery it has already processed."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does (the tests' receivers use it; the README shows it)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))
