"""The credit ledger: every change of an account's balance is a row, written with the change."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.models.billing import CreditTransaction, TransactionKind
from app.models.tenancy import Account

CENT = Decimal("0.01")


def to_credits(value: Decimal | int | float | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


async def top_up(
    session: AsyncSession,
    *,
    account_id: int,
    amount: Decimal,
    idempotency_key: str,
    description: str = "Top-up",
) -> CreditTransaction:
    """Add credits. Repeating a call with the same key returns the first row and adds nothing."""
    amount = to_credits(amount)
    if amount <= 0:
        raise InvalidInput("amount must be greater than 0", details={"field": "amount"})
    # The account row lock serialises movements of one account, so the key check is race-free.
    account = await session.scalar(
        select(Account).where(Account.id == account_id).with_for_update()
    )
    if account is None:
        raise NotFound(f"account {account_id} not found")
    existing = await session.scalar(
        select(CreditTransaction).where(CreditTransaction.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    account.credits = account.credits + amount
    row = CreditTransaction(
        account_id=account_id,
        kind=TransactionKind.TOPUP,
        amount=amount,
        balance_after=account.credits,
        idempotency_key=idempotency_key,
        description=description,
    )
    session.add(row)
    await session.flush()
    return row
