"""What a run of a site would cost (SPEC §8), and the balance check that guards `run_now`.

Each stage's input is what it has pending now plus what the stages before it will create in the
same run (keywords become clusters, clusters ideas, ideas tasks, tasks articles, articles images),
within the stage's per-run limit. A disabled stage costs nothing and feeds nothing on.

Without history the reference formula's assumptions hold: ~5 keywords per cluster, 5 ideas per
cluster, 2,500 words per article, and prices from the cost table (at the seeded prices: keywords/5,
clusters x 2, tasks x 5, image prompts x 0.5, images x 2). With 3 or more completed runs, the
site's own ratios and credits per item replace them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.costs import Prices, load_prices, price_of
from app.credits.schemas import Estimate, Projection, StageEstimate
from app.errors import InsufficientCredits
from app.models.automation import AutomationConfig, AutomationRun, RunStatus
from app.models.billing import Operation
from app.models.tenancy import Account, Site
from app.pipeline.catalog import STAGE_NUMBERS
from app.pipeline.pending import pending_counts

BUFFER = Decimal("1.2")
CENT = Decimal("0.01")
RATE = Decimal("0.0001")
KEYWORDS_PER_CLUSTER = 5
IDEAS_PER_CLUSTER = 5
WORDS_PER_ARTICLE = 2500
MIN_HISTORY_RUNS = 3
HISTORY_RUNS = 10

# The priced stages: their operation and the result keys of the items they processed.
STAGE_OPERATIONS = {
    1: Operation.CLUSTERING,
    2: Operation.IDEA_GENERATION,
    4: Operation.CONTENT_GENERATION,
    5: Operation.IMAGE_PROMPT_EXTRACTION,
    6: Operation.IMAGE_GENERATION,
}
PROCESSED_KEYS = {
    1: "keywords_processed",
    2: "clusters_processed",
    4: "tasks_processed",
    5: "content_processed",
    6: "images_processed",
}
STAGE_LIMITS = {
    1: "max_keywords_per_run",
    2: "max_clusters_per_run",
    3: "max_ideas_per_run",
    4: "max_tasks_per_run",
    5: "max_content_per_run",
    6: "max_images_per_run",
    7: "max_approvals_per_run",
}


@dataclass(frozen=True)
class Rates:
    """How many items a stage turns each input into, and what each input item costs."""

    clusters_per_keyword: Decimal
    ideas_per_cluster: Decimal
    credits_per_item: dict[int, Decimal]


def images_per_article(config: AutomationConfig) -> int:
    return 1 + config.max_in_article_images


def formula_rates(prices: Prices, config: AutomationConfig) -> Rates:
    """The reference formula at the cost table's current prices."""
    units_per_item = {1: 1, 2: 1, 4: WORDS_PER_ARTICLE, 5: images_per_article(config), 6: 1}
    credits: dict[int, Decimal] = {}
    for stage, operation in STAGE_OPERATIONS.items():
        price = price_of(prices, operation)
        credits[stage] = units_per_item[stage] * price.credits_per_unit / price.unit_size
    return Rates(
        clusters_per_keyword=Decimal(1) / KEYWORDS_PER_CLUSTER,
        ideas_per_cluster=Decimal(IDEAS_PER_CLUSTER),
        credits_per_item=credits,
    )


def _number(result: Mapping[str, Any] | None, key: str) -> Decimal:
    """A figure of a stage result; a stage that did not run, or an odd value, counts as 0."""
    value = (result or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return Decimal(0)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return number if number.is_finite() and number >= 0 else Decimal(0)


def _ratio(runs: Sequence[AutomationRun], stage: int, key: str, per: str) -> Decimal | None:
    """sum(key) / sum(per) over the runs' stage results, None when nothing was processed."""
    results = [getattr(run, f"stage_{stage}_result") for run in runs]
    denominator = sum((_number(r, per) for r in results), Decimal(0))
    if denominator == 0:
        return None
    numerator = sum((_number(r, key) for r in results), Decimal(0))
    return (numerator / denominator).quantize(RATE)


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def history_rates(runs: Sequence[AutomationRun], fallback: Rates) -> Rates:
    """The runs' real ratios (a ratio of sums, so big runs weigh more); the formula's where the
    runs processed nothing to measure by."""
    credits = {
        stage: _or(_ratio(runs, stage, "credits_used", PROCESSED_KEYS[stage]), default)
        for stage, default in fallback.credits_per_item.items()
    }
    return Rates(
        clusters_per_keyword=_or(
            _ratio(runs, 1, "clusters_created", "keywords_processed"),
            fallback.clusters_per_keyword,
        ),
        ideas_per_cluster=_or(
            _ratio(runs, 2, "ideas_created", "clusters_processed"), fallback.ideas_per_cluster
        ),
        credits_per_item=credits,
    )


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def project(
    pending: Mapping[int, int], config: AutomationConfig, rates: Rates
) -> list[StageEstimate]:
    """Each stage's items and credits, stage 1 to 7, feeding each stage's output to the next."""
    per_article = images_per_article(config)
    stages: list[StageEstimate] = []
    fed = 0
    for stage in STAGE_NUMBERS:
        if not getattr(config, f"stage_{stage}_enabled"):
            stages.append(StageEstimate(enabled=False, items=0, credits=Decimal(0)))
            fed = 0
            continue
        items = pending[stage] + fed
        limit: int = getattr(config, STAGE_LIMITS[stage])
        if limit > 0:
            items = min(items, limit)
        cost = items * rates.credits_per_item.get(stage, Decimal(0))
        stages.append(
            StageEstimate(enabled=True, items=items, credits=cost.quantize(CENT, ROUND_CEILING))
        )
        match stage:
            case 1:
                fed = _ceil(items * rates.clusters_per_keyword)
            case 2:
                fed = _ceil(items * rates.ideas_per_cluster)
            case 5:
                fed = items * per_article
            case 6:
                # An article goes to review once all its images are done.
                fed = items // per_article
            case _:
                fed = items
    return stages


async def completed_runs(session: AsyncSession, site_id: int) -> list[AutomationRun]:
    """The site's latest completed runs, newest first."""
    rows = await session.scalars(
        select(AutomationRun)
        .where(AutomationRun.site_id == site_id, AutomationRun.status == RunStatus.COMPLETED)
        .order_by(AutomationRun.completed_at.desc().nulls_last(), AutomationRun.id.desc())
        .limit(HISTORY_RUNS)
    )
    return list(rows)


def _projection(runs: Sequence[AutomationRun], rates: Rates) -> Projection:
    return Projection(
        completed_runs=len(runs),
        clusters_per_keyword=rates.clusters_per_keyword,
        ideas_per_cluster=rates.ideas_per_cluster,
        credits_per_item={
            f"stage_{s}": c.quantize(RATE) for s, c in sorted(rates.credits_per_item.items())
        },
    )


async def site_rates(
    session: AsyncSession, site_id: int, config: AutomationConfig
) -> tuple[Rates, Projection | None]:
    """The rates a run of the site is projected with: its history's once it has enough
    completed runs (with the projection that says so), else the formula's."""
    rates = formula_rates(await load_prices(session), config)
    runs = await completed_runs(session, site_id)
    if len(runs) < MIN_HISTORY_RUNS:
        return rates, None
    rates = history_rates(runs, rates)
    return rates, _projection(runs, rates)


async def estimate(session: AsyncSession, site: Site, config: AutomationConfig) -> Estimate:
    """The estimate of a run of `site` with `config`, started now."""
    rates, projection = await site_rates(session, site.id, config)
    stages = project(await pending_counts(session, site.id), config, rates)
    total = sum((s.credits for s in stages), Decimal(0))
    cap = config.max_credits_per_run
    capped = cap > 0 and total > cap
    estimated = cap if capped else total
    required = (estimated * BUFFER).quantize(CENT, rounding=ROUND_CEILING)
    balance = await session.scalar(select(Account.credits).where(Account.id == site.account_id))
    assert balance is not None, "a site's account exists"
    return Estimate(
        estimated_credits=estimated,
        required_with_buffer=required,
        current_balance=balance,
        sufficient=balance >= required,
        basis="history" if projection else "formula",
        capped_by_max_credits_per_run=capped,
        per_stage={f"stage_{n}": s for n, s in zip(STAGE_NUMBERS, stages, strict=True)},
        projection=projection,
    )


async def check_balance(session: AsyncSession, site: Site, config: AutomationConfig) -> Estimate:
    """The estimate, if the balance covers it with the 20% buffer; else `InsufficientCredits`
    with the estimate as details."""
    result = await estimate(session, site, config)
    if not result.sufficient:
        raise InsufficientCredits(
            f"insufficient credits: a run needs {result.required_with_buffer} "
            f"({result.estimated_credits} estimated x {BUFFER}) and the balance is "
            f"{result.current_balance}",
            details=result.model_dump(mode="json"),
        )
    return result
