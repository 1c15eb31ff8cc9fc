"""The demo account that `automation serve --demo` (and so `make run`) opens the service with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Unauthorized
from app.models.tenancy import User
from app.tenancy.service import create_account, login

DEMO_EMAIL = "demo@example.com"
DEMO_ACCOUNT = "Demo account"
DEMO_SITE = "Demo site"
DEMO_CREDITS = Decimal(1000)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    api_key: str


async def demo_login(session: AsyncSession, password: str) -> DemoLogin:
    """Create the demo account on the first start; on later ones, log in to it. Either way the
    answer holds a fresh API key that works."""
    exists = await session.scalar(select(User.id).where(func.lower(User.email) == DEMO_EMAIL))
    if exists is None:
        created = await create_account(
            session,
            name=DEMO_ACCOUNT,
            email=DEMO_EMAIL,
            password=password,
            credits=DEMO_CREDITS,
            site_name=DEMO_SITE,
        )
        return DemoLogin(email=DEMO_EMAIL, password=password, api_key=created.api_key)
    try:
        key, _ = await login(session, DEMO_EMAIL, password)
    except Unauthorized:
        raise Conflict(
            f"{DEMO_EMAIL} exists with another password than DEMO_PASSWORD; "
            "set DEMO_PASSWORD to the one it was created with",
            code="demo_password_mismatch",
        ) from None
    return DemoLogin(email=DEMO_EMAIL, password=password, api_key=key)
