"""Accounts, users, sites and API keys. Services flush; the caller's unit of work commits."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.ledger import top_up
from app.db import fetch_page
from app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.models.tenancy import Account, ApiKey, Site, User
from app.tenancy import security
from app.tenancy.security import (
    generate_api_key,
    hash_password,
    key_matches,
    key_prefix,
)

MIN_PASSWORD_LENGTH = 8
_EMAIL = TypeAdapter(EmailStr)

# Verified against when the email is unknown, so that both failures take the same time.
_DUMMY_HASH = hash_password("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's user and account."""

    user_id: int
    account_id: int
    api_key_id: int


@dataclass(frozen=True)
class NewAccount:
    account: Account
    user: User
    site: Site | None
    api_key: str


def _valid_email(email: str) -> str:
    try:
        return str(_EMAIL.validate_python(email.strip())).lower()
    except ValidationError:
        raise InvalidInput(
            f"email: {email!r} is not an email address", details={"field": "email"}
        ) from None


# A site's address: http(s) with a host, or nothing. Other schemes (`javascript:`, `file:`)
# would be a link that runs or reads something wherever a client shows it.
SITE_URL_PATTERN = r"^$|^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@]+([/?#]\S*)?$"


def validate_site_url(url: str) -> str:
    if not re.fullmatch(SITE_URL_PATTERN, url):
        raise InvalidInput(
            f"url: {url[:100]!r} is not an http or https address", details={"field": "url"}
        )
    return url


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"timezone: unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'",
            details={"field": "timezone"},
        ) from None
    return name


async def issue_api_key(session: AsyncSession, user: User, name: str) -> tuple[str, ApiKey]:
    """A new key for the user: the key itself (shown once, never stored) and its row."""
    new = generate_api_key()
    row = ApiKey(
        user_id=user.id,
        account_id=user.account_id,
        name=name,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return new.key, row


async def get_user(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("invalid API key")
    return user


async def list_api_keys(
    session: AsyncSession, principal: Principal, *, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    stmt = select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: int) -> None:
    """Revoke one of the caller's keys (revoking a revoked key changes nothing)."""
    row = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == principal.user_id)
    )
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = func.now()
        await session.flush()


async def create_account(
    session: AsyncSession,
    *,
    name: str,
    email: str,
    password: str,
    credits: Decimal = Decimal(0),
    site_name: str | None = None,
    site_url: str = "",
    site_timezone: str = "UTC",
) -> NewAccount:
    email = _valid_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password: use at least {MIN_PASSWORD_LENGTH} characters",
            details={"field": "password"},
        )
    if await session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict(f"a user with email {email} already exists", code="email_taken")
    account = Account(name=name)
    session.add(account)
    await session.flush()
    password_hash = await asyncio.to_thread(hash_password, password)
    user = User(account_id=account.id, email=email, password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a user with email {email} already exists", code="email_taken") from None
    site = None
    if site_name:
        site = await create_site(
            session, account.id, name=site_name, url=site_url, timezone=site_timezone
        )
    if credits > 0:
        await top_up(
            session,
            account_id=account.id,
            amount=credits,
            idempotency_key=f"signup:{account.id}",
            description="Initial credits",
        )
    key, _ = await issue_api_key(session, user, "default")
    await session.refresh(account)
    return NewAccount(account=account, user=user, site=site, api_key=key)


async def login(session: AsyncSession, email: str, password: str) -> tuple[str, User]:
    """A new key for the user with this email and password. The caller holds a place in line
    (`security.password_checks.admission()`) for the password check."""
    user = await session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    # argon2 takes tens of milliseconds: off the event loop (the C code releases the GIL).
    # An unknown email is checked against a dummy hash so both failures take as long.
    stored = user.password_hash if user is not None else _DUMMY_HASH
    valid = await security.password_checks.verify(stored, password)
    if user is None or not valid or not user.is_active:
        raise Unauthorized("wrong email or password")
    key, _ = await issue_api_key(session, user, "login")
    return key, user


async def authenticate(session: AsyncSession, key: str) -> Principal:
    prefix = key_prefix(key)
    row = None
    if prefix is not None:
        row = await session.scalar(
            select(ApiKey)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None), User.is_active)
        )
    if row is None or not key_matches(key, row.secret_hash):
        raise Unauthorized("invalid API key")
    return Principal(user_id=row.user_id, account_id=row.account_id, api_key_id=row.id)


async def get_account(session: AsyncSession, account_id: int) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


async def create_site(
    session: AsyncSession, account_id: int, *, name: str, url: str = "", timezone: str = "UTC"
) -> Site:
    site = Site(
        account_id=account_id,
        name=name,
        url=validate_site_url(url),
        timezone=validate_timezone(timezone),
    )
    session.add(site)
    await session.flush()
    return site


# Built once: building the select and its comparisons took as long as running it, on every
# request that names a site.
_ACCOUNTS_SITE = select(Site).where(
    Site.id == bindparam("site_id"), Site.account_id == bindparam("account_id")
)


async def get_site(session: AsyncSession, account_id: int, site_id: int) -> Site:
    """The account's site; another account's site is as missing as one that never existed."""
    site = await session.scalar(_ACCOUNTS_SITE, {"site_id": site_id, "account_id": account_id})
    if site is None:
        raise NotFound(f"site {site_id} not found")
    return site


async def list_sites(
    session: AsyncSession, account_id: int, *, limit: int, offset: int
) -> tuple[list[Site], int]:
    stmt = select(Site).where(Site.account_id == account_id).order_by(Site.id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


def topup_key() -> str:
    return f"topup:{uuid.uuid4()}"
