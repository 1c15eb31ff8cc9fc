"""Reading an account's credits: the balance with what is held, and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.automation import AutomationRun
from app.models.billing import CreditTransaction, TransactionKind
from app.models.tenancy import Account

HOLD_KINDS = (TransactionKind.RESERVE, TransactionKind.RELEASE)


@dataclass(frozen=True)
class Balance:
    account_id: int
    credits: Decimal
    reserved: Decimal


@dataclass(frozen=True)
class LedgerRow:
    transaction: CreditTransaction
    run_id: str | None


async def balance(session: AsyncSession, account_id: int) -> Balance:
    """The spendable credits, and those held by reservations still open.

    A hold is a `reserve` row of -x; it is closed by one `release` row of +x (the real cost is
    a separate `settle` row), so what is still held is minus the sum of both kinds.
    """
    credits = await session.scalar(select(Account.credits).where(Account.id == account_id))
    held = await session.scalar(
        select(func.coalesce(func.sum(-CreditTransaction.amount), 0)).where(
            CreditTransaction.account_id == account_id, CreditTransaction.kind.in_(HOLD_KINDS)
        )
    )
    return Balance(
        account_id=account_id, credits=credits or Decimal(0), reserved=held or Decimal(0)
    )


async def list_transactions(
    session: AsyncSession,
    account_id: int,
    *,
    limit: int,
    offset: int,
    site_id: int | None = None,
    kind: TransactionKind | None = None,
    run_id: str | None = None,
) -> tuple[list[LedgerRow], int]:
    """The account's ledger, newest first, with each row's public run id."""
    query = (
        select(CreditTransaction, AutomationRun.run_id)
        .outerjoin(AutomationRun, AutomationRun.id == CreditTransaction.run_pk)
        .where(CreditTransaction.account_id == account_id)
    )
    if site_id is not None:
        query = query.where(CreditTransaction.site_id == site_id)
    if kind is not None:
        query = query.where(CreditTransaction.kind == kind)
    if run_id is not None:
        query = query.where(AutomationRun.run_id == run_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(CreditTransaction.id.desc()).limit(limit).offset(offset)
    )
    return [LedgerRow(row, public_id) for row, public_id in rows], total or 0
