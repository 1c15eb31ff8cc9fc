"""A site's AI budget allocation (SPEC §8): how a run's credit cap is shared between the five AI
functions. A site uses the global percentages of the cost table, or its own that sum to 100."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.schemas import AIBudgetIn
from app.errors import InvalidInput
from app.models.billing import (
    DEFAULT_BUDGET_PERCENTAGES,
    CreditCostConfig,
    Operation,
    SiteAIBudgetAllocation,
)
from app.models.tenancy import Site

Percentages = dict[Operation, Decimal]


@dataclass(frozen=True)
class Allocation:
    """The percentages that apply to a site, and whether they are the global ones."""

    use_global_defaults: bool
    percentages: Percentages


def _column(operation: Operation) -> str:
    return f"{operation.value}_percentage"


async def global_percentages(session: AsyncSession) -> Percentages:
    """The cost table's `budget_percentage` per operation (the model's default where a row is
    missing)."""
    rows = await session.execute(
        select(CreditCostConfig.operation, CreditCostConfig.budget_percentage)
    )
    table = {Operation(operation): percentage for operation, percentage in rows}
    return {op: table.get(op, DEFAULT_BUDGET_PERCENTAGES[op]) for op in Operation}


async def get_allocation(session: AsyncSession, site_id: int) -> Allocation:
    row = await session.scalar(
        select(SiteAIBudgetAllocation)
        .where(SiteAIBudgetAllocation.site_id == site_id)
        .execution_options(populate_existing=True)
    )
    if row is None or row.use_global_defaults:
        return Allocation(True, await global_percentages(session))
    return Allocation(False, {op: getattr(row, _column(op)) for op in Operation})


async def allocation_percentages(session: AsyncSession, site_id: int) -> Percentages:
    """{operation: percent of the run's credit cap it may spend}, summing to 100."""
    return (await get_allocation(session, site_id)).percentages


def _validated(body: AIBudgetIn) -> Percentages | None:
    """The five percentages sent, checked as a whole; None when none were sent."""
    given = body.percentages()
    missing = [op.value for op, value in given.items() if value is None]
    if len(missing) == len(given) and body.use_global_defaults:
        return None
    if missing:
        raise InvalidInput(
            f"invalid input: {', '.join(missing)} required: a site's own allocation names all "
            "five percentages",
            details=[{"field": name, "message": "Field required"} for name in missing],
        )
    percentages = {op: value for op, value in given.items() if value is not None}
    total = sum(percentages.values(), Decimal(0))
    if total != 100:
        names = [op.value for op in Operation]
        raise InvalidInput(
            f"invalid input: {', '.join(names)} must sum to 100, not {total.normalize():f}",
            details=[{"field": name, "message": "the five must sum to 100"} for name in names],
        )
    return percentages


async def put_allocation(session: AsyncSession, site: Site, body: AIBudgetIn) -> Allocation:
    """Store the site's choice; percentages left out (only allowed with the global defaults)
    keep what the site had."""
    percentages = _validated(body)
    values: dict[str, object] = {"use_global_defaults": body.use_global_defaults}
    if percentages is not None:
        values.update({_column(op): value for op, value in percentages.items()})
    await session.execute(
        insert(SiteAIBudgetAllocation)
        .values(account_id=site.account_id, site_id=site.id, **values)
        .on_conflict_do_update(
            index_elements=[SiteAIBudgetAllocation.site_id],
            # An upsert's UPDATE does not run the column's onupdate.
            set_={**values, "updated_at": func.now()},
        )
    )
    return await get_allocation(session, site.id)
