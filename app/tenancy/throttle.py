"""Login attempts counted per email and per client address in PostgreSQL: past a limit, logins
wait until the window ends (429 with `Retry-After`).

An attempt is counted before its password is checked, in a transaction of its own committed at
once: parallel attempts cannot all pass a check made before any of them has failed, and a failed
login's request, which rolls back, cannot take its count back with it. A success takes its own
attempt back and clears the email's count. In PostgreSQL rather than Redis because login needs
the database anyway: the throttle adds no second backend that can be down, and its counts
survive a Redis outage or restart.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.errors import TooManyRequests
from app.models.tenancy import LoginFailures, LoginScope

EMAIL_MAX_FAILURES = 10
# Several people behind one NAT share an address: room for their mistakes, not for a list of
# accounts tried one password each.
ADDRESS_MAX_FAILURES = 50
WINDOW_SECONDS = 15 * 60
# Expired windows removed by each counted attempt: more than it can create (two), so the table
# holds little beyond the live windows, with no job to clean it.
SWEEP_BATCH = 10

_WINDOW = timedelta(seconds=WINDOW_SECONDS)


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    address: str


def login_attempt(email: str, client_host: str | None) -> LoginAttempt:
    """What an attempt counts against.

    `client_host` is the peer as the server gives it: behind a reverse proxy, uvicorn takes it
    from `X-Forwarded-For` only when the proxy is in `FORWARDED_ALLOW_IPS`, so a client cannot
    choose its own. An IPv6 client has at least a /64 to pick addresses from: that is its address.
    """
    try:
        ip = ipaddress.ip_address(client_host or "")
    except ValueError:
        address = (client_host or "unknown")[:64]
    else:
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped
            address = str(mapped or ipaddress.IPv6Network((ip, 64), strict=False))
        else:
            address = str(ip)
    return LoginAttempt(email=email.strip().lower(), address=address)


async def count_attempt(factory: async_sessionmaker[AsyncSession], attempt: LoginAttempt) -> None:
    """Count the attempt against its address and its email, committed at once; or, when either
    is past its limit, refuse it (TooManyRequests) and count nothing."""
    # Address before email, here and in note_login_succeeded: one lock order, no deadlock.
    limits = (
        (LoginScope.ADDRESS, attempt.address, ADDRESS_MAX_FAILURES, "from this address"),
        (LoginScope.EMAIL, attempt.email, EMAIL_MAX_FAILURES, "for this email"),
    )
    async with unit_of_work(factory) as session:
        for scope, subject, limit, which in limits:
            failures, seconds_left = await _count(session, scope, subject, limit)
            if failures > limit:
                raise TooManyRequests(
                    f"too many failed logins {which}; try again later",
                    retry_after=max(seconds_left, 1),
                )
        await _sweep(session)


async def note_login_succeeded(session: AsyncSession, attempt: LoginAttempt) -> None:
    """Take the attempt back from its address, and clear its email's count."""
    await session.execute(
        update(LoginFailures)
        .where(LoginFailures.scope == LoginScope.ADDRESS, LoginFailures.subject == attempt.address)
        .values(failures=func.greatest(LoginFailures.failures - 1, 0))
    )
    await session.execute(
        delete(LoginFailures).where(
            LoginFailures.scope == LoginScope.EMAIL, LoginFailures.subject == attempt.email
        )
    )


async def _count(session: AsyncSession, scope: str, subject: str, limit: int) -> tuple[int, int]:
    """One more attempt in the subject's window (a new window where it has ended): the count and
    the seconds left. The attempt that reaches the limit starts the block's full window."""
    expired = LoginFailures.window_ends_at <= func.now()
    reaches_limit = LoginFailures.failures + 1 == limit
    stmt = (
        insert(LoginFailures)
        .values(scope=scope, subject=subject, failures=1, window_ends_at=func.now() + _WINDOW)
        .on_conflict_do_update(
            index_elements=[LoginFailures.scope, LoginFailures.subject],
            set_={
                "failures": case((expired, 1), else_=LoginFailures.failures + 1),
                "window_ends_at": case(
                    (expired | reaches_limit, func.now() + _WINDOW),
                    else_=LoginFailures.window_ends_at,
                ),
            },
        )
        .returning(
            LoginFailures.failures,
            func.ceil(func.extract("epoch", LoginFailures.window_ends_at - func.now())),
        )
    )
    failures, seconds_left = (await session.execute(stmt)).one()
    return int(failures), int(seconds_left)


async def _sweep(session: AsyncSession) -> None:
    """Delete a few ended windows; ones another transaction holds are left for the next sweep
    (SKIP LOCKED never waits, so it cannot deadlock with the counts)."""
    ended = (
        select(LoginFailures.scope, LoginFailures.subject)
        .where(LoginFailures.window_ends_at <= func.now())
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(LoginFailures).where(tuple_(LoginFailures.scope, LoginFailures.subject).in_(ended))
    )
