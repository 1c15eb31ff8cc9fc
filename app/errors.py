"""The error hierarchy. One handler (app.api.errors) renders every one of them."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc


class AppError(Exception):
    """A failure the client can act on: a code, a message, an HTTP status, details."""

    status_code = 400
    code = "bad_request"
    # Seconds the client should wait before trying again: sent as `Retry-After` when set.
    retry_after: int | None = None

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class InvalidInput(AppError):
    code = "invalid_input"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after


class InvalidTransition(AppError):
    code = "invalid_transition"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, details: Any = None, retry_after: int | None = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after


class InsufficientCredits(AppError):
    code = "insufficient_credits"


class AlreadyRunning(AppError):
    code = "already_running"


# What a request or a job meets while PostgreSQL or Redis is down or restarting: worth trying
# again shortly, not a bug. (asyncpg raises plain OSErrors when it cannot connect at all.)
BACKEND_DOWN: tuple[type[Exception], ...] = (
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
