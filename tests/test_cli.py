"""The console script `automation`, run as a user runs it: a subprocess on the test database."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.billing import CreditTransaction
from app.models.tenancy import Account
from tests.console import Ran, bearer, environment_without_settings, run_automation
from tests.factories import create_tenant

Automation = Callable[..., Awaitable[Ran]]


@pytest.fixture
def cli_env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return environment_without_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DATA_DIR=str(tmp_path / "data"),
    )


@pytest.fixture
def automation(cli_env: dict[str, str], tmp_path: Path) -> Automation:
    """`await automation("create-account", ...)` runs the console script on the test database."""

    async def run(*args: str) -> Ran:
        return await run_automation(*args, env=cli_env, cwd=tmp_path)

    return run


async def count_accounts(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Account)) or 0


class TestCreateAccount:
    async def test_json_prints_only_the_ids_and_a_key_that_works(
        self, automation: Automation, client: httpx.AsyncClient
    ) -> None:
        ran = await automation(
            "create-account",
            "--name",
            "Acme",
            "--email",
            "owner@acme.example.com",
            "--password",
            "a long password",
            "--credits",
            "250",
            "--site-name",
            "Acme blog",
            "--site-url",
            "https://acme.test",
            "--site-timezone",
            "Europe/Berlin",
            "--json",
        )

        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.count("\n") == 1
        created = json.loads(ran.stdout)
        assert set(created) == {"account_id", "user_id", "site_id", "api_key"}
        me = await client.get("/api/v1/me", headers=bearer(created["api_key"]))
        assert me.status_code == 200
        assert me.json()["user"] == {"id": created["user_id"], "email": "owner@acme.example.com"}
        assert me.json()["account"]["id"] == created["account_id"]
        assert Decimal(str(me.json()["account"]["credits"])) == 250
        sites = await client.get("/api/v1/sites/", headers=bearer(created["api_key"]))
        [site] = sites.json()["items"]
        assert (site["id"], site["name"], site["url"], site["timezone"]) == (
            created["site_id"],
            "Acme blog",
            "https://acme.test",
            "Europe/Berlin",
        )

    async def test_without_a_site_name_there_is_no_site(
        self, automation: Automation, client: httpx.AsyncClient
    ) -> None:
        ran = await automation(
            "create-account",
            "--name",
            "Solo",
            "--email",
            "solo@example.com",
            "--password",
            "long enough",
        )

        assert ran.returncode == 0, ran.stderr
        key = ran.stdout.split("API key: ")[1].strip()
        sites = await client.get("/api/v1/sites/", headers=bearer(key))
        assert sites.json()["total"] == 0

    async def test_taken_email_exits_1_with_a_message_and_creates_nothing(
        self, automation: Automation, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        await create_tenant(session_factory, email="taken@example.com")

        ran = await automation(
            "create-account",
            "--name",
            "Again",
            "--email",
            "Taken@Example.com",
            "--password",
            "long enough",
            "--site-name",
            "Another",
            "--json",
        )

        assert ran.returncode == 1
        assert ran.stdout == ""
        assert "taken@example.com already exists" in ran.stderr
        assert await count_accounts(session_factory) == 1

    async def test_unknown_time_zone_exits_1_and_creates_nothing(
        self, automation: Automation, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        ran = await automation(
            "create-account",
            "--name",
            "Mars",
            "--email",
            "mars@example.com",
            "--password",
            "long enough",
            "--site-name",
            "Base",
            "--site-timezone",
            "Mars/Olympus",
        )

        assert ran.returncode == 1
        assert "unknown time zone 'Mars/Olympus'" in ran.stderr
        assert await count_accounts(session_factory) == 0

    @pytest.mark.parametrize(
        ("email", "password", "message"),
        [
            ("not-an-email", "long enough", "email: 'not-an-email' is not an email address"),
            ("short@example.com", "short", "password: use at least 8 characters"),
        ],
    )
    async def test_bad_email_or_short_password_exits_1_and_creates_nothing(
        self,
        automation: Automation,
        session_factory: async_sessionmaker[AsyncSession],
        email: str,
        password: str,
        message: str,
    ) -> None:
        ran = await automation(
            "create-account", "--name", "N", "--email", email, "--password", password
        )

        assert ran.returncode == 1
        assert message in ran.stderr
        assert await count_accounts(session_factory) == 0


async def ledger(
    session_factory: async_sessionmaker[AsyncSession], account_id: int
) -> list[CreditTransaction]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(CreditTransaction)
            .where(CreditTransaction.account_id == account_id)
            .order_by(CreditTransaction.id)
        )
        return list(rows)


async def balance(session_factory: async_sessionmaker[AsyncSession], account_id: int) -> Decimal:
    async with session_factory() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        return account.credits


class TestAddCredits:
    async def test_top_up_writes_a_ledger_row_and_prints_the_new_balance(
        self, automation: Automation, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100))

        ran = await automation(
            "add-credits", "--account-id", str(tenant.account_id), "--amount", "50.5"
        )

        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "150.50\n"
        assert await balance(session_factory, tenant.account_id) == Decimal("150.50")
        top_up = (await ledger(session_factory, tenant.account_id))[-1]
        assert (top_up.kind, top_up.amount, top_up.balance_after) == (
            "topup",
            Decimal("50.50"),
            Decimal("150.50"),
        )

    async def test_repeated_idempotency_key_adds_once(
        self, automation: Automation, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(0))
        args = ("add-credits", "--account-id", str(tenant.account_id), "--amount", "10")

        first = await automation(*args, "--idempotency-key", "invoice-42")
        second = await automation(*args, "--idempotency-key", "invoice-42")

        assert (first.stdout, second.stdout) == ("10.00\n", "10.00\n")
        assert len(await ledger(session_factory, tenant.account_id)) == 1

    async def test_unknown_account_exits_1_with_a_message(self, automation: Automation) -> None:
        ran = await automation("add-credits", "--account-id", "999999", "--amount", "10")

        assert ran.returncode == 1
        assert "account 999999 not found" in ran.stderr

    async def test_amount_that_is_not_a_number_is_refused(self, automation: Automation) -> None:
        ran = await automation("add-credits", "--account-id", "1", "--amount", "lots")

        assert ran.returncode == 2
        assert "not a number: 'lots'" in ran.stderr


class TestProductionProcessesNeedTheirServers:
    @pytest.mark.parametrize("command", ["api", "worker"])
    async def test_refuses_to_start_without_database_and_redis(
        self, command: str, tmp_path: Path
    ) -> None:
        ran = await run_automation(command, env=environment_without_settings(), cwd=tmp_path)

        assert ran.returncode == 1
        assert "set DATABASE_URL and REDIS_URL" in ran.stderr
