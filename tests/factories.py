"""Test data factories: plain async functions with keyword overrides."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.tenancy import service as tenancy

_counter = itertools.count(1)


@dataclass(frozen=True)
class Tenant:
    """An account with one user, one site and an API key."""

    account_id: int
    user_id: int
    site_id: int
    api_key: str
    email: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def create_tenant(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    name: str | None = None,
    email: str | None = None,
    password: str = "correct horse battery staple",
    credits: Decimal = Decimal(100),
    site_name: str = "Main site",
    site_timezone: str = "UTC",
) -> Tenant:
    n = next(_counter)
    email = email or f"user{n}@example.com"
    async with unit_of_work(session_factory) as session:
        created = await tenancy.create_account(
            session,
            name=name or f"Account {n}",
            email=email,
            password=password,
            credits=credits,
            site_name=site_name,
            site_timezone=site_timezone,
        )
    assert created.site is not None
    return Tenant(
        account_id=created.account.id,
        user_id=created.user.id,
        site_id=created.site.id,
        api_key=created.api_key,
        email=email,
        password=password,
    )
