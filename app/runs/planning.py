"""Making a run's progress plan (app.runs.plan): at the start, from the pending snapshot and the
estimate's projection; at each stage's end, again for the stages after it, from what is really
pending then (the issue's "re-estimate after stages 1 and 2"), in the runner's transaction that
moves the run to its next stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.estimate import SiteRates, project, site_rates
from app.models.automation import AutomationConfig, AutomationRun
from app.pipeline.catalog import STAGE_NUMBERS
from app.pipeline.pending import pending_counts
from app.pipeline.results import handled_in
from app.publishing.service import auto_approval_on
from app.runs.plan import Basis, ProgressPlan, StagePlan, figures, plan_of, result_of

# A re-plan is logged when a later stage's items or the credits left move by more than this.
MATERIAL = Decimal("0.10")
UNITS = {
    1: "keywords",
    2: "clusters",
    3: "ideas",
    4: "tasks",
    5: "articles",
    6: "images",
    7: "articles to approve",
}


def plan_run(
    config: AutomationConfig, pending: Mapping[int, int], rates: SiteRates, *, approving: bool
) -> ProgressPlan:
    """The plan of a run starting now with `pending` (its snapshot's counts) and `rates` (those
    its balance was checked with), with the clusters and ideas foreseen for it, which later
    runs' estimates learn from; `approving`: whether stage 7 approves the site's content."""
    basis, planned, foreseen = _projected(config, pending, rates, approving=approving)
    paces = history_paces(rates.history)
    return ProgressPlan(
        basis=basis,
        stages=tuple(
            StagePlan(items=items, credits=credits, seconds_per_item=paces.get(n))
            for n, (items, credits) in zip(STAGE_NUMBERS, planned, strict=True)
        ),
        between_stage_delay=config.between_stage_delay,
        foreseen=foreseen,
    )


@dataclass(frozen=True)
class Replanned:
    """A re-plan that moved the rest of the run materially: a line for the run's log."""

    message: str
    data: dict[str, Any]


async def replan_after_stage(
    session: AsyncSession, run_pk: int, ended: int, config: AutomationConfig
) -> Replanned | None:
    """Re-plan the run whose stage `ended` is over; its row must be locked by the caller's
    transaction (the runner's move to the next stage). Stages up to `ended` keep what they
    handled and spent; the later ones are projected from what is pending now. The percentage
    the run had is kept as the plan's floor."""
    run = await session.get_one(AutomationRun, run_pk, populate_existing=True)
    old = plan_of(run)
    floor = figures(run, old, datetime.now(UTC)).percentage
    pending = await pending_counts(session, run.site_id)
    for n in STAGE_NUMBERS:
        if n <= ended:
            pending[n] = 0
    rates = await site_rates(session, run.site_id, config)
    approving = await auto_approval_on(session, run.site_id)
    basis, projected, _ = _projected(config, pending, rates, approving=approving)
    stages = []
    for n, (items, credits) in zip(STAGE_NUMBERS, projected, strict=True):
        if n <= ended:
            result = result_of(run, n)
            items = handled_in(n, result)
            credits = Decimal(str(result.get("credits_used", 0)))
        stages.append(
            StagePlan(items=items, credits=credits, seconds_per_item=old.stage(n).seconds_per_item)
        )
    new = ProgressPlan(
        basis=basis,
        stages=tuple(stages),
        floor=floor,
        between_stage_delay=config.between_stage_delay,
        replanned_after=ended,
        foreseen=old.foreseen,
    )
    run.progress_plan = new.stored()
    await session.flush()
    return _material_change(old, new, ended)


def _projected(
    config: AutomationConfig, pending: Mapping[int, int], site: SiteRates, *, approving: bool
) -> tuple[Basis, list[tuple[int, Decimal]], dict[str, str | None]]:
    """(basis, [(items, credits)] per stage, the foresight) of the estimate's projection.
    Stage 7 has nothing to handle where auto-approval is off: it only counts what awaits
    review."""
    estimates = project(pending, config, site.rates)
    planned = [
        (0 if n == 7 and not approving else estimate.items, estimate.credits)
        for n, estimate in zip(STAGE_NUMBERS, estimates, strict=True)
    ]
    return ("history" if site.projection else "formula"), planned, site.foreseen


def history_paces(runs: Sequence[AutomationRun]) -> dict[int, float]:
    """{stage: seconds per item} over the site's latest completed runs (their stages' time over
    the items they handled, in all), for the stages they did."""
    paces = {}
    for n in STAGE_NUMBERS:
        pace = _pace_of([result_of(run, n) for run in runs], n)
        if pace is not None:
            paces[n] = pace
    return paces


def _pace_of(results: Sequence[dict[str, Any] | None], stage: int) -> float | None:
    seconds, items = 0.0, 0
    for result in results:
        if not result or result.get("skipped") or result.get("partial"):
            continue
        handled = handled_in(stage, result)
        if not handled or not result.get("started_at") or not result.get("completed_at"):
            continue
        span = datetime.fromisoformat(result["completed_at"]) - datetime.fromisoformat(
            result["started_at"]
        )
        seconds += max(span.total_seconds(), 0.0)
        items += handled
    return seconds / items if items else None


def _moved(old: Decimal, new: Decimal) -> bool:
    if old == new:
        return False
    return old == 0 or abs(new - old) / old > MATERIAL


def _material_change(old: ProgressPlan, new: ProgressPlan, ended: int) -> Replanned | None:
    later = [n for n in STAGE_NUMBERS if n > ended]
    changed = [
        n
        for n in later
        if _moved(Decimal(old.stage(n).items), Decimal(new.stage(n).items))
        and abs(new.stage(n).items - old.stage(n).items) > 1
    ]
    old_credits = sum((old.stage(n).credits for n in later), Decimal(0))
    new_credits = sum((new.stage(n).credits for n in later), Decimal(0))
    if not changed and not _moved(old_credits, new_credits):
        return None
    parts = [
        f"stage {n} {new.stage(n).items} {UNITS[n]} (planned {old.stage(n).items})" for n in changed
    ]
    credits = f"the rest of the run is projected at {new_credits} credits (was {old_credits})"
    return Replanned(
        message=f"Re-estimate after stage {ended}: " + "; ".join([*parts, credits]),
        data={
            "after_stage": ended,
            "items": {f"stage_{n}": new.stage(n).items for n in later},
            "planned_items": {f"stage_{n}": old.stage(n).items for n in later},
            "credits_remaining": str(new_credits),
            "previous_credits_remaining": str(old_credits),
        },
    )
