"""Reserve, then settle (SPEC §8).

Before an AI call the item's maximum cost is held: `UPDATE accounts SET credits = credits - x
WHERE credits >= x`, atomic however many runs and workers charge the account at once, so the
balance never goes negative. After the call, in the same transaction that writes the item's
result, the hold is released and the real cost settled, also where it exceeds the hold, as far
as the balance allows (see `settle`); a failed call releases its whole hold.

Every movement is a ledger row whose idempotency key is `{item key}:reserve|release|settle`, the
item key naming the run, the operation and the item: a resumed item reuses its hold, and an item
whose hold was already released (done, or failed earlier in this run) is never charged again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import Executor
from app.errors import InsufficientCredits
from app.metrics import CHARGES_OVER_HOLD, CREDITS_UNCHARGED
from app.models.billing import CreditTransaction, Operation, TransactionKind
from app.models.tenancy import Account

log = structlog.get_logger(__name__)


class HoldState(Enum):
    HELD = "held"  # credits are held for the item: make the call
    SPENT = "spent"  # the item's hold was already released in this run: do not call again


@dataclass(frozen=True)
class Charge:
    """Who pays for one item's AI call, and under which key; `fence`, the run's fencing number
    its worker holds it under (a hold is made only while the run runs under it)."""

    account_id: int
    site_id: int
    run_pk: int
    operation: Operation
    item_key: str
    fence: int

    @property
    def base(self) -> str:
        return f"run:{self.run_pk}:{self.operation.value}:{self.item_key}"

    def key(self, kind: TransactionKind) -> str:
        return f"{self.base}:{kind.value}"


class RunNotRunning(Exception):
    """Nothing was held: the run is paused, cancelled or ended, or runs under another fence."""

    def __init__(self, run_status: str, fence: int) -> None:
        super().__init__(f"the run is {run_status} under fence {fence}")
        self.run_status = run_status
        self.fence = fence


@dataclass(frozen=True)
class Hold:
    state: HoldState
    amount: Decimal


# The hold, as one statement: the run's status and fence; the item's earlier rows; the debit,
# only while the run runs under the charge's fence, when there are no earlier rows and the
# balance covers the amount; the hold's row, only when the debit was made. The run's row is the
# truth the pause and cancel signals mirror: an item that waited for its slot learns of a stop
# here, in the round trip it makes anyway. Plain SQL, built once: every AI call runs it, and an
# expression would be built and keyed again each time.
_RESERVE = text(
    """
    WITH run AS (
        SELECT status, fence FROM automation_runs WHERE id = :run_pk
    ), prior AS (
        SELECT kind, amount FROM credit_transactions
        WHERE idempotency_key IN (:reserve_key, :release_key)
    ), debit AS (
        UPDATE accounts SET credits = credits - :amount, updated_at = now()
        WHERE id = :account_id AND credits >= :amount AND :amount > 0
          AND NOT EXISTS (SELECT FROM prior)
          AND EXISTS (SELECT FROM run WHERE status = 'running' AND fence = :fence)
        RETURNING credits
    ), held AS (
        INSERT INTO credit_transactions (account_id, site_id, run_pk, kind, operation, amount,
                                         balance_after, idempotency_key, description)
        SELECT :account_id, CAST(:site_id AS bigint), CAST(:run_pk AS bigint), 'reserve',
               CAST(:operation AS varchar), -CAST(:amount AS numeric), credits, :reserve_key,
               CAST(:description AS varchar)
        FROM debit
    )
    SELECT (SELECT credits FROM debit) AS balance,
           (SELECT amount FROM prior WHERE kind = 'reserve') AS reserved,
           EXISTS (SELECT FROM prior WHERE kind = 'release') AS released,
           (SELECT status FROM run) AS run_status,
           (SELECT fence FROM run) AS run_fence
    """
)


async def reserve(session: Executor, charge: Charge, amount: Decimal) -> Hold:
    """Hold `amount` credits for the call, or reuse the hold a previous attempt left: one
    statement, one round trip. Raises `RunNotRunning` (nothing held) once the run is no longer
    running under the charge's fence."""
    row = _row_values(charge, TransactionKind.RESERVE, -amount)
    params = {
        "reserve_key": row["idempotency_key"],
        "release_key": charge.key(TransactionKind.RELEASE),
        "amount": amount,
        "account_id": charge.account_id,
        "site_id": charge.site_id,
        "run_pk": charge.run_pk,
        "operation": row["operation"],
        "description": row["description"],
        "fence": charge.fence,
    }
    found = (await session.execute(_RESERVE, params)).one()
    if found.run_status != "running" or found.run_fence != charge.fence:
        raise RunNotRunning(found.run_status, found.run_fence)
    if found.released:
        return Hold(HoldState.SPENT, Decimal(0))
    if found.reserved is not None:
        return Hold(HoldState.HELD, -found.reserved)
    if amount <= 0:
        return Hold(HoldState.HELD, Decimal(0))
    if found.balance is None:
        current = await session.scalar(
            select(Account.credits).where(Account.id == charge.account_id)
        )
        raise InsufficientCredits(
            f"insufficient credits: {amount} needed for {charge.operation.value}, "
            f"{current} available",
            details={"required": float(amount), "balance": float(current or 0)},
        )
    return Hold(HoldState.HELD, amount)


async def settle(
    session: Executor,
    charge: Charge,
    hold: Hold,
    cost: Decimal,
    *,
    data: dict[str, Any] | None = None,
) -> Decimal:
    """Release the hold and charge the real cost; returns what was charged. `data` (the call's
    token usage) is kept on the settle row.

    A cost above the hold (a longer article than held for, more tokens than foreseen, a resumed
    item's hold taken at an older price) is charged in full when the balance allows: the
    difference is taken under the account's row lock, never below 0. What the balance cannot
    cover is left uncharged, counted and logged: the charge is capped."""
    if cost <= hold.amount:
        if hold.amount <= 0:
            return Decimal(0)
        await _settle_within_hold(session, charge, hold.amount, cost, data)
        return cost
    # FOR NO KEY UPDATE, as the UPDATE itself locks: every row an item writes for the account
    # (its article, its images) holds a KEY SHARE lock on it through its foreign key until the
    # item commits, and FOR UPDATE waits for those. Two items above their holds at once, each
    # with its article written, each waited for the other's: a deadlock.
    available = await session.scalar(
        select(Account.credits)
        .where(Account.id == charge.account_id)
        .with_for_update(key_share=True)
    )
    assert available is not None, "the paying account exists while its run does"
    charged = min(cost, available + hold.amount)
    balance = await _credit(session, charge.account_id, hold.amount - charged)
    if hold.amount > 0:
        await _add_row(
            session, charge, TransactionKind.RELEASE, hold.amount, available + hold.amount
        )
    over = {"held": str(hold.amount), "cost": str(cost)}
    await _add_row(
        session, charge, TransactionKind.SETTLE, -charged, balance, {**(data or {}), **over}
    )
    outcome = "settled" if charged == cost else "capped"
    CHARGES_OVER_HOLD.labels(charge.operation.value, outcome).inc()
    if charged < cost:
        CREDITS_UNCHARGED.labels(charge.operation.value).inc(float(cost - charged))
        log.warning(
            "charge capped at the balance",
            key=charge.base,
            cost=str(cost),
            hold=str(hold.amount),
            charged=str(charged),
        )
    return charged


# A settle within its hold, as one statement (every AI call runs it): the account credited with
# what the call did not cost, the release row, and the settle row when the call cost anything.
# A call that cost exactly its hold (an image, a set of prompts priced by the unit) leaves the
# balance as it is and only reads it (its rows show the balance as last committed): its
# transaction does not lock the account's row until it commits, which every other hold and
# settle of the account would wait for.
_SETTLE_WITHIN_HOLD = text(
    """
    WITH refund AS (
        UPDATE accounts SET credits = credits + :held - :cost, updated_at = now()
        WHERE id = :account_id AND CAST(:held AS numeric) <> CAST(:cost AS numeric)
        RETURNING credits
    ), credit AS (
        SELECT credits FROM refund
        UNION ALL
        SELECT credits FROM accounts
        WHERE id = :account_id AND CAST(:held AS numeric) = CAST(:cost AS numeric)
    ), moves (kind, amount, balance_after, idempotency_key, description, data) AS (
        SELECT 'release', CAST(:held AS numeric), credits + :cost, :release_key,
               :release_description, CAST(NULL AS jsonb)
        FROM credit
        UNION ALL
        SELECT 'settle', -CAST(:cost AS numeric), credits, :settle_key, :settle_description,
               CAST(:data AS jsonb)
        FROM credit WHERE :cost > 0
    )
    INSERT INTO credit_transactions (account_id, site_id, run_pk, kind, operation, amount,
                                     balance_after, idempotency_key, description, data)
    SELECT :account_id, CAST(:site_id AS bigint), CAST(:run_pk AS bigint), kind,
           CAST(:operation AS varchar), amount, balance_after, idempotency_key, description, data
    FROM moves
    """
)


async def _settle_within_hold(
    session: Executor,
    charge: Charge,
    held: Decimal,
    cost: Decimal,
    data: dict[str, Any] | None,
) -> None:
    release = _row_values(charge, TransactionKind.RELEASE, held)
    settle = _row_values(charge, TransactionKind.SETTLE, -cost)
    params = {
        "held": held,
        "cost": cost,
        "account_id": charge.account_id,
        "site_id": charge.site_id,
        "run_pk": charge.run_pk,
        "operation": charge.operation.value,
        "release_key": release["idempotency_key"],
        "release_description": release["description"],
        "settle_key": settle["idempotency_key"],
        "settle_description": settle["description"],
        "data": None if data is None else json.dumps(data),
    }
    await session.execute(_SETTLE_WITHIN_HOLD, params)


async def release(session: Executor, charge: Charge, hold: Hold) -> None:
    """Give the whole hold back: the call failed."""
    if hold.amount <= 0:
        return
    balance = await _credit(session, charge.account_id, hold.amount)
    await _add_row(session, charge, TransactionKind.RELEASE, hold.amount, balance)


async def release_dangling(session: AsyncSession, run_pk: int) -> Decimal:
    """Release every hold of the run that was never settled or released (its worker died between
    the hold and the result, and the item was not picked up again). Returns the credits freed."""
    released = aliased(CreditTransaction)
    release_key = func.regexp_replace(CreditTransaction.idempotency_key, ":reserve$", ":release")
    holds = list(
        await session.scalars(
            select(CreditTransaction)
            .where(
                CreditTransaction.run_pk == run_pk,
                CreditTransaction.kind == TransactionKind.RESERVE,
                ~exists().where(released.idempotency_key == release_key),
            )
            .order_by(CreditTransaction.id)
        )
    )
    total = Decimal(0)
    for row in holds:
        amount = -row.amount
        balance = await _credit(session, row.account_id, amount)
        base = row.idempotency_key.removesuffix(":" + TransactionKind.RESERVE.value)
        session.add(
            CreditTransaction(
                account_id=row.account_id,
                site_id=row.site_id,
                run_pk=row.run_pk,
                kind=TransactionKind.RELEASE,
                operation=row.operation,
                amount=amount,
                balance_after=balance,
                idempotency_key=f"{base}:{TransactionKind.RELEASE.value}",
                description="Hold released: its call never finished",
            )
        )
        total += amount
    await session.flush()
    return total


async def _credit(session: Executor, account_id: int, amount: Decimal) -> Decimal:
    balance: Decimal | None = await session.scalar(
        update(Account)
        .where(Account.id == account_id)
        .values(credits=Account.credits + amount)
        .returning(Account.credits)
    )
    assert balance is not None, "the paying account exists while its run does"
    return balance


_DESCRIPTIONS = {
    TransactionKind.RESERVE: "Hold before the call",
    TransactionKind.RELEASE: "Hold released",
    TransactionKind.SETTLE: "Charged",
}


def _row_values(charge: Charge, kind: TransactionKind, amount: Decimal) -> dict[str, Any]:
    """A ledger row of the charge, but its balance and data."""
    return {
        "account_id": charge.account_id,
        "site_id": charge.site_id,
        "run_pk": charge.run_pk,
        "kind": kind,
        "operation": charge.operation.value,
        "amount": amount,
        "idempotency_key": charge.key(kind),
        "description": f"{_DESCRIPTIONS[kind]}: {charge.operation.value} {charge.item_key}",
    }


async def _add_row(
    session: Executor,
    charge: Charge,
    kind: TransactionKind,
    amount: Decimal,
    balance_after: Decimal,
    data: dict[str, Any] | None = None,
) -> None:
    row = {**_row_values(charge, kind, amount), "balance_after": balance_after, "data": data}
    await session.execute(insert(CreditTransaction).values(row))
