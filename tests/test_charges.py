"""Reserve, then settle (SPEC §8): a call that costs more than its hold is charged the
difference as far as the balance allows, under the account's row lock, never below 0 and never
twice; what the balance cannot cover is counted as a capped charge."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.charges import Charge, Hold, HoldState, RunNotRunning, reserve, settle
from app.credits.turns import AccountTurns
from app.db import unit_of_work
from app.models.automation import AutomationRun, RunStatus
from app.models.billing import CreditTransaction, Operation
from app.models.tenancy import Account
from app.runs.events import RunLog
from tests.builders import create_automation_run
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
_items = itertools.count(1)


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def over_hold(outcome: str) -> float:
    return metric(
        "automation_charges_over_hold_total", operation="content_generation", outcome=outcome
    )


def uncharged() -> float:
    return metric("automation_credits_uncharged_total", operation="content_generation")


async def new_run(
    session_factory: SessionFactory, tenant: Tenant, run_log: RunLog
) -> AutomationRun:
    return await create_automation_run(session_factory, tenant, run_log)


def charge_for(tenant: Tenant, run: AutomationRun) -> Charge:
    return Charge(
        tenant.account_id,
        tenant.site_id,
        run.id,
        Operation.CONTENT_GENERATION,
        f"task:{next(_items)}",
        run.fence,
    )


async def an_item(
    session_factory: SessionFactory, run_log: RunLog, credits: str | int
) -> tuple[Tenant, Charge]:
    """A tenant with `credits`, and the charge for one item of a run of its site."""
    tenant = await create_tenant(session_factory, credits=Decimal(credits))
    run = await new_run(session_factory, tenant, run_log)
    return tenant, charge_for(tenant, run)


async def hold(session_factory: SessionFactory, charge: Charge, amount: str) -> Hold:
    # On a Core connection, as an AI item holds and settles (app.stages.work).
    async with session_factory.kw["bind"].begin() as connection:
        return await reserve(connection, charge, Decimal(amount))


async def pay(session_factory: SessionFactory, charge: Charge, held: Hold, cost: str) -> Decimal:
    async with session_factory.kw["bind"].begin() as connection:
        return await settle(connection, charge, held, Decimal(cost))


async def balance_of(session_factory: SessionFactory, tenant: Tenant) -> Decimal:
    async with session_factory() as session:
        credits = await session.scalar(
            select(Account.credits).where(Account.id == tenant.account_id)
        )
    assert credits is not None
    return credits


async def rows_of(session_factory: SessionFactory, charge: Charge) -> list[tuple[str, Decimal]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(CreditTransaction.kind, CreditTransaction.amount)
            .where(CreditTransaction.idempotency_key.like(f"{charge.base}:%"))
            .order_by(CreditTransaction.id)
        )
    return [(kind.value, amount) for kind, amount in rows]


class TestACostAboveItsHold:
    async def test_is_charged_in_full_when_the_balance_allows(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        tenant, charge = await an_item(session_factory, run_log, 10)
        settled, capped = over_hold("settled"), over_hold("capped")

        held = await hold(session_factory, charge, "0.40")
        charged = await pay(session_factory, charge, held, "0.42")

        # Before: 0.40 charged of 0.42 ("charge capped at its hold").
        assert charged == Decimal("0.42")
        assert await balance_of(session_factory, tenant) == Decimal("9.58")
        assert await rows_of(session_factory, charge) == [
            ("reserve", Decimal("-0.40")),
            ("release", Decimal("0.40")),
            ("settle", Decimal("-0.42")),
        ]
        assert over_hold("settled") == settled + 1
        assert over_hold("capped") == capped

    async def test_does_not_wait_for_the_rows_other_items_are_writing_for_the_account(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        """Another item's transaction has written a row that references the account (its
        article, through the foreign key: a KEY SHARE lock until it commits). Settling above the
        hold locks the account for an update of its balance only, which that lock does not
        block; with FOR UPDATE it waited, and two such items waited for each other."""
        tenant, charge = await an_item(session_factory, run_log, 10)
        held = await hold(session_factory, charge, "0.40")
        async with unit_of_work(session_factory) as other:
            await other.execute(
                select(Account.id)
                .where(Account.id == tenant.account_id)
                .with_for_update(read=True, key_share=True)
            )
            async with asyncio.timeout(5):
                charged = await pay(session_factory, charge, held, "0.42")
        assert charged == Decimal("0.42")

    async def test_takes_only_what_the_balance_has_and_counts_the_cap(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        tenant, charge = await an_item(session_factory, run_log, "0.45")
        capped, missing = over_hold("capped"), uncharged()

        held = await hold(session_factory, charge, "0.40")
        charged = await pay(session_factory, charge, held, "1.00")

        assert charged == Decimal("0.45")
        assert await balance_of(session_factory, tenant) == Decimal(0)
        assert await rows_of(session_factory, charge) == [
            ("reserve", Decimal("-0.40")),
            ("release", Decimal("0.40")),
            ("settle", Decimal("-0.45")),
        ]
        assert over_hold("capped") == capped + 1
        assert uncharged() == missing + 0.55

    async def test_a_settled_item_is_never_held_or_charged_again(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        tenant, charge = await an_item(session_factory, run_log, 10)
        held = await hold(session_factory, charge, "0.40")
        await pay(session_factory, charge, held, "0.42")

        again = await hold(session_factory, charge, "0.40")

        assert again == Hold(HoldState.SPENT, Decimal(0))
        assert await balance_of(session_factory, tenant) == Decimal("9.58")


class TestAHoldReadsTheRun:
    """The hold is made only while the run runs under the charge's fence: the run's row, which
    the pause and cancel signals mirror, is read in the hold's own statement."""

    async def test_of_a_paused_run_holds_nothing(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(10))
        run = await create_automation_run(session_factory, tenant, run_log, status=RunStatus.PAUSED)
        charge = charge_for(tenant, run)
        with pytest.raises(RunNotRunning) as raised:
            await hold(session_factory, charge, "0.40")
        assert (raised.value.run_status, raised.value.fence) == ("paused", run.fence)
        assert await balance_of(session_factory, tenant) == Decimal(10)
        assert await rows_of(session_factory, charge) == []

    async def test_under_another_fence_holds_nothing(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        """Another worker took the run over (its lease had lapsed): this one's item holds
        nothing."""
        tenant, charge = await an_item(session_factory, run_log, 10)
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(AutomationRun)
                .where(AutomationRun.id == charge.run_pk)
                .values(fence=AutomationRun.fence + 1)
            )
        with pytest.raises(RunNotRunning) as raised:
            await hold(session_factory, charge, "0.40")
        assert (raised.value.run_status, raised.value.fence) == ("running", charge.fence + 1)
        assert await balance_of(session_factory, tenant) == Decimal(10)


class TestASettleWithinItsHold:
    async def test_of_exactly_the_hold_does_not_wait_for_the_accounts_row(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        """Another transaction has the account's row locked (another item's settle or hold, not
        yet committed). A call that cost exactly its hold leaves the balance as it is, so its
        settle does not wait for that lock: with one account for many sites, every settle
        waiting on the row was what kept the provider's line from filling."""
        tenant, charge = await an_item(session_factory, run_log, 10)
        held = await hold(session_factory, charge, "0.40")
        async with unit_of_work(session_factory) as other:
            await other.execute(
                update(Account)
                .where(Account.id == tenant.account_id)
                .values(credits=Account.credits + 1)
            )
            async with asyncio.timeout(5):
                charged = await pay(session_factory, charge, held, "0.40")
        assert charged == Decimal("0.40")
        assert await balance_of(session_factory, tenant) == Decimal("10.60")
        assert await rows_of(session_factory, charge) == [
            ("reserve", Decimal("-0.40")),
            ("release", Decimal("0.40")),
            ("settle", Decimal("-0.40")),
        ]

    async def test_below_the_hold_gives_the_difference_back(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        tenant, charge = await an_item(session_factory, run_log, 10)
        held = await hold(session_factory, charge, "0.40")
        assert await pay(session_factory, charge, held, "0.25") == Decimal("0.25")
        assert await balance_of(session_factory, tenant) == Decimal("9.75")
        async with session_factory() as session:
            after = list(
                await session.scalars(
                    select(CreditTransaction.balance_after)
                    .where(CreditTransaction.idempotency_key.like(f"{charge.base}:%"))
                    .order_by(CreditTransaction.id)
                )
            )
        assert after == [Decimal("9.60"), Decimal("10.00"), Decimal("9.75")]


class TestManyItemsSettlingAtOnceNearZero:
    async def test_the_balance_never_goes_negative_and_each_item_is_charged_once(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        # 1.00 credit: ten holds of 0.10 take it all, then each call costs 0.30.
        tenant = await create_tenant(session_factory, credits=Decimal("1.00"))
        run = await new_run(session_factory, tenant, run_log)
        charges = [charge_for(tenant, run) for _ in range(10)]
        holds = [await hold(session_factory, c, "0.10") for c in charges]
        assert await balance_of(session_factory, tenant) == Decimal(0)

        charged = await asyncio.gather(
            *(pay(session_factory, c, h, "0.30") for c, h in zip(charges, holds, strict=True))
        )

        # Each gets back its own hold only: 0.10 each, the whole balance and no more.
        assert sum(charged) == Decimal("1.00")
        assert all(c == Decimal("0.10") for c in charged)
        assert await balance_of(session_factory, tenant) == Decimal(0)
        for c in charges:
            kinds = [kind for kind, _ in await rows_of(session_factory, c)]
            assert kinds == ["reserve", "release", "settle"]

    async def test_spare_credits_go_to_the_first_comers_and_never_below_zero(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        # 1.50 credits: ten holds of 0.10 leave 0.50 spare for the differences of 0.20 each.
        tenant = await create_tenant(session_factory, credits=Decimal("1.50"))
        run = await new_run(session_factory, tenant, run_log)
        charges = [charge_for(tenant, run) for _ in range(10)]
        holds = [await hold(session_factory, c, "0.10") for c in charges]

        charged = await asyncio.gather(
            *(pay(session_factory, c, h, "0.30") for c, h in zip(charges, holds, strict=True))
        )

        assert sum(charged) == Decimal("1.50")
        assert sorted(charged) == sorted(
            [Decimal("0.30")] * 2 + [Decimal("0.20")] + [Decimal("0.10")] * 7
        )
        assert await balance_of(session_factory, tenant) == Decimal(0)
        async with session_factory() as session:
            lowest = await session.scalar(
                select(CreditTransaction.balance_after)
                .where(CreditTransaction.account_id == tenant.account_id)
                .order_by(CreditTransaction.balance_after)
                .limit(1)
            )
        assert lowest == Decimal(0)


class TestHoldsOfOneAccountTakeTurns:
    """A worker's holds of one account go to the database one at a time (`AccountTurns`): the
    items waiting in line for the provider each hold first, and together they would pile up on
    the account's row lock."""

    async def test_a_second_hold_of_the_account_waits_for_the_first(self) -> None:
        turns = AccountTurns()
        order: list[str] = []
        first_in, first_done = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with turns.turn(1):
                first_in.set()
                await first_done.wait()
                order.append("first")

        async def second() -> None:
            async with turns.turn(1):
                order.append("second")

        one = asyncio.create_task(first())
        await first_in.wait()
        two = asyncio.create_task(second())
        for _ in range(5):  # turns of the loop enough for the second to enter, were it free
            await asyncio.sleep(0)
        assert order == []
        first_done.set()
        await asyncio.gather(one, two)
        assert order == ["first", "second"]

    async def test_another_accounts_hold_does_not_wait(self) -> None:
        turns = AccountTurns()
        first_in, first_done = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with turns.turn(1):
                first_in.set()
                await first_done.wait()

        one = asyncio.create_task(first())
        await first_in.wait()
        async with asyncio.timeout(5):
            async with turns.turn(2):
                assert not one.done()
        first_done.set()
        await one
