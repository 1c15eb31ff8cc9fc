"""Billing: the balance, the ledger, each site's AI budget allocation (SPEC §6b, §8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import PageDep, PrincipalDep, SessionDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import id_path, id_query
from app.credits import budget
from app.credits import service as credits
from app.credits.budget import Allocation
from app.credits.schemas import AIBudgetIn, AIBudgetOut, BalanceOut, TransactionOut
from app.models.billing import TransactionKind
from app.schemas import Page, Text
from app.tenancy import service as tenancy

router = APIRouter(prefix="/api/v1/billing", tags=["billing"], responses=ERROR_RESPONSES)

SiteIdPath = Annotated[int, id_path("The site's id.")]


@router.get("/balance/", response_model=BalanceOut, summary="The account's credit balance")
async def get_balance(principal: PrincipalDep, session: SessionDep) -> BalanceOut:
    result = await credits.balance(session, principal.account_id)
    return BalanceOut(
        account_id=result.account_id, credits=result.credits, reserved=result.reserved
    )


@router.get(
    "/transactions/", response_model=Page[TransactionOut], summary="The credit ledger, newest first"
)
async def list_transactions(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    site_id: Annotated[int | None, id_query("Only this site's movements.")] = None,
    kind: TransactionKind | None = None,
    run_id: Annotated[
        Text | None,
        Query(max_length=64, description="Only this run's movements (its public id)."),
    ] = None,
) -> Page[TransactionOut]:
    if site_id is not None:
        await tenancy.get_site(session, principal.account_id, site_id)
    rows, total = await credits.list_transactions(
        session,
        principal.account_id,
        limit=page.limit,
        offset=page.offset,
        site_id=site_id,
        kind=kind,
        run_id=run_id,
    )
    items = [_transaction_out(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def _transaction_out(row: credits.LedgerRow) -> TransactionOut:
    t = row.transaction
    return TransactionOut(
        id=t.id,
        created_at=t.created_at,
        kind=t.kind,
        operation=t.operation,
        amount=t.amount,
        balance_after=t.balance_after,
        site_id=t.site_id,
        run_id=row.run_id,
        description=t.description,
    )


def _budget_out(site_id: int, allocation: Allocation) -> AIBudgetOut:
    return AIBudgetOut(
        site_id=site_id,
        use_global_defaults=allocation.use_global_defaults,
        **{op.value: value for op, value in allocation.percentages.items()},
    )


@router.get(
    "/sites/{site_id}/ai-budget/",
    response_model=AIBudgetOut,
    summary="A site's AI budget allocation",
)
async def get_ai_budget(
    site_id: SiteIdPath, principal: PrincipalDep, session: SessionDep
) -> AIBudgetOut:
    site = await tenancy.get_site(session, principal.account_id, site_id)
    return _budget_out(site.id, await budget.get_allocation(session, site.id))


@router.put(
    "/sites/{site_id}/ai-budget/",
    response_model=AIBudgetOut,
    summary="Set a site's AI budget allocation",
    description="`use_global_defaults: true` follows the cost table's percentages; false sets "
    "the site's own: clustering, idea_generation, content_generation, image_prompt_extraction "
    "and image_generation, each 0-100, summing to exactly 100.",
)
async def put_ai_budget(
    site_id: SiteIdPath, body: AIBudgetIn, principal: PrincipalDep, session: SessionDep
) -> AIBudgetOut:
    site = await tenancy.get_site(session, principal.account_id, site_id)
    return _budget_out(site.id, await budget.put_allocation(session, site, body))
