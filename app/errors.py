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


class NothingToDo(AppError):
    code = "nothing_to_do"


class ConnectionLost(Exception):
    """A database connection found broken by the server's going away, where the driver reports
    a state error of its own (`app.db.poll_row`)."""


# What a request or a job meets while PostgreSQL or Redis is down or restarting: worth trying
# again shortly, not a bug. asyncpg raises plain OSErrors when it cannot connect at all, and
# PostgreSQL says itself when it cannot serve now: a connection lost or refused (class 08), the
# server shutting down or starting up, every connection slot taken.
_OUTAGES: tuple[type[Exception], ...] = (
    OSError,
    ConnectionLost,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    # Every pooled connection busy past the pool's timeout: the database cannot serve now.
    sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def is_backend_down(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL or Redis is unreachable. SQLAlchemy reports most of these
    as a plain `DBAPIError`: one whose connection it invalidated, or one caused by the driver's
    error for an outage (a server shutting down refuses new sessions so)."""
    if isinstance(exc, _OUTAGES):
        return True
    if isinstance(exc, redis.exceptions.WatchError):
        # redis-py reports a connection lost under a WATCH as a WatchError raised while the
        # ConnectionError is handled (arq's start_jobs meets it when Redis restarts).
        return exc.__context__ is not None and is_backend_down(exc.__context__)
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    cause: BaseException | None = exc.orig
    while cause is not None:
        if isinstance(cause, _OUTAGES):
            return True
        cause = cause.__cause__
    return False
