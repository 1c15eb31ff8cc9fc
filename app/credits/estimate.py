"""What a run of a site would cost (SPEC §8), and the balance check that guards `run_now`.

Each stage's input is what it has pending now plus what the stages before it will create in the
same run (keywords become clusters, clusters ideas, ideas tasks, tasks articles, articles images),
within the stage's per-run limit. A disabled stage costs nothing and feeds nothing on.

The reference formula is keywords/5 + clusters x 2 + tasks x 5 + image prompts x 0.5 + images x
2, assuming ~5 keywords per cluster, 5 ideas per cluster and 2,500 words per article. The
pipeline makes far more work than that from the same keywords (a run of 40 keywords made 23
clusters and 73 articles where the formula assumed 8 and 40, and spent 49 % more than
estimated), so where it measured otherwise the estimate deviates:

- clusters per keyword: foreseen by clustering the pending keywords as stage 1 will
  (`yields.py`): the keywords, not a constant, decide how many topics there are;
- ideas per cluster: 3 to 7 by each foreseen cluster's size, as both providers are asked
  (`yields.py`); 3 where there is nothing to measure by (most clusters hold one or two keywords);
- words per article: 1,250, not 2,500. The ideas ask for 800 to 2,000 words by angle, a cluster's
  first idea (the complete guide) 1,600 and the others ~1,090 on average, so an article averages
  1,210-1,260 words; the local writer lands within 2.5 % of its target (measured over 1,000
  articles). At 1 credit per 500 words that is 2.50 credits an article, not 5;
- images per article: 1 + `max_in_article_images` (3 by default, where the reference assumes 4).

Prices are the cost table's. With 3 or more completed runs, the site's own ratios and credits per
item replace the defaults; the clusters and ideas foreseen from the pending rows still take
precedence over the history's averages for stages 1 and 2, as they measure this run's input,
but corrected by what the history learned: each run's plan records its foresight, and the
ratio of what the runs made to what was foreseen of the same keywords and clusters scales the
new foresight (the foresight is the local provider's clustering; a hosted model clusters its
own way).

Each figure comes with a range: with history, from the lowest to the highest per-run ratio of
the runs; without, a band of `FORMULA_BAND` around the yields and the article length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.costs import Prices, load_prices, price_of
from app.credits.schemas import Estimate, Projection, StageEstimate
from app.credits.yields import Learned, Yields, decimal_of, foresee, learned
from app.errors import InsufficientCredits
from app.models.automation import AutomationConfig, AutomationRun, RunStatus
from app.models.billing import Operation, Pricing
from app.models.tenancy import Account, Site
from app.pipeline.catalog import STAGE_NUMBERS
from app.pipeline.pending import pending_counts

BUFFER = Decimal("1.2")
CENT = Decimal("0.01")
RATE = Decimal("0.0001")
MILLI = Decimal("0.001")
# The yields where the pending rows give nothing to measure by, which is where they multiply
# nothing pending (no keyword, no cluster) unless the history measured them: the bench's
# 100-keyword sets in batches of 20 make 0.73 clusters a keyword, and most clusters hold one or
# two keywords, hence 3 ideas.
CLUSTERS_PER_KEYWORD = Decimal("0.7")
IDEAS_PER_CLUSTER = 3
WORDS_PER_ARTICLE = 1250
# Tokens a call takes where an operation is priced by tokens, as (fixed, per unit): stage 1 per
# keyword of its batch, stages 4 and 5 per word of the article (written, or read for its
# prompts); measured with the OpenAI-compatible test server, which counts a token a word
# (bench/estimate.py --provider openai --per-token 1). A hosted model's tokenizer counts about
# 1.3 tokens an English word, so its text calls cost up to ~30 % more: the range's band for
# token-priced calls is `TOKEN_BAND`, and the site's history measures the real figure.
TOKENS_PER_CALL = {1: (100, 16), 2: (480, 0), 4: (230, 1), 5: (140, 1), 6: (317, 0)}
TOKEN_BAND = Decimal("0.3")
# The range around the foreseen yields and the article length (each, so a figure two stages
# down ranges wider): the local provider comes within 3 % a stage (bench/estimate.py); a
# hosted model varies more, which the site's history then measures.
FORMULA_BAND = Decimal("0.1")
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
    """How many items a stage turns each input into, and what each input item costs; `low` and
    `high` are the same at the ends of the range (None: no range known)."""

    clusters_per_keyword: Decimal
    ideas_per_cluster: Decimal
    credits_per_item: dict[int, Decimal]
    low: Rates | None = None
    high: Rates | None = None


def images_per_article(config: AutomationConfig) -> int:
    return 1 + config.max_in_article_images


def _tokens_per_call(stage: int, config: AutomationConfig) -> tuple[int, int]:
    """(tokens a call of the stage takes, items it processes): see `TOKENS_PER_CALL`."""
    fixed, per_unit = TOKENS_PER_CALL[stage]
    match stage:
        case 1:
            size = config.stage_1_batch_size
            return fixed + per_unit * size, size
        case 4 | 5:
            return fixed + per_unit * WORDS_PER_ARTICLE, 1
    return fixed, 1


def formula_rates(prices: Prices, config: AutomationConfig) -> Rates:
    """The calibrated formula at the cost table's current prices, with its band. An operation
    priced by tokens costs the tokens its call typically takes (at least its minimum a call)."""
    units_per_item = {1: 1, 2: 1, 4: WORDS_PER_ARTICLE, 5: images_per_article(config), 6: 1}
    credits: dict[int, Decimal] = {}
    for stage, operation in STAGE_OPERATIONS.items():
        price = price_of(prices, operation)
        if price.pricing == Pricing.PER_TOKEN:
            tokens, items = _tokens_per_call(stage, config)
            per_call = max(tokens * price.credits_per_1k_tokens / 1000, price.min_credits_per_call)
            credits[stage] = per_call / items
        else:
            credits[stage] = units_per_item[stage] * price.credits_per_unit / price.unit_size
    rates = Rates(
        clusters_per_keyword=CLUSTERS_PER_KEYWORD,
        ideas_per_cluster=Decimal(IDEAS_PER_CLUSTER),
        credits_per_item=credits,
    )
    return _banded(rates, token_priced=_token_priced(prices))


def _token_priced(prices: Prices) -> set[int]:
    return {
        stage
        for stage, operation in STAGE_OPERATIONS.items()
        if price_of(prices, operation).pricing == Pricing.PER_TOKEN
    }


def _banded(rates: Rates, *, token_priced: set[int]) -> Rates:
    """`rates` with a range of +-`FORMULA_BAND` on the yields and on an article's length
    (stage 4), and +-`TOKEN_BAND` on every call priced by tokens."""

    def band(stage: int) -> Decimal:
        if stage in token_priced:
            return TOKEN_BAND
        return FORMULA_BAND if stage == 4 else Decimal(0)

    def scaled(sign: int) -> Rates:
        return Rates(
            clusters_per_keyword=rates.clusters_per_keyword * (1 + sign * FORMULA_BAND),
            ideas_per_cluster=rates.ideas_per_cluster * (1 + sign * FORMULA_BAND),
            credits_per_item={
                stage: credits * (1 + sign * band(stage))
                for stage, credits in rates.credits_per_item.items()
            },
        )

    return replace(rates, low=scaled(-1), high=scaled(1))


def _number(result: Mapping[str, Any] | None, key: str) -> Decimal:
    """A figure of a stage result; a stage that did not run, or an odd value, counts as 0."""
    number = decimal_of((result or {}).get(key))
    return number if number is not None and number >= 0 else Decimal(0)


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


def _averages(runs: Sequence[AutomationRun], fallback: Rates) -> Rates:
    """The runs' ratios (a ratio of sums, so big runs weigh more); the fallback's where the runs
    processed nothing to measure by."""
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


def history_rates(runs: Sequence[AutomationRun], fallback: Rates) -> Rates:
    """The runs' average ratios, ranging from the lowest to the highest of any one run."""
    average = _averages(runs, fallback)
    per_run = [_averages([run], average) for run in runs]

    def end(pick: Callable[[Iterable[Decimal]], Decimal]) -> Rates:
        def bound(value: Callable[[Rates], Decimal]) -> Decimal:
            measured = [value(r) for r in per_run]
            return pick([*measured, value(average)])

        return Rates(
            clusters_per_keyword=bound(lambda r: r.clusters_per_keyword),
            ideas_per_cluster=bound(lambda r: r.ideas_per_cluster),
            credits_per_item={
                stage: bound(lambda r, s=stage: r.credits_per_item[s])  # type: ignore[misc]
                for stage in average.credits_per_item
            },
        )

    return replace(average, low=end(min), high=end(max))


def with_yields(rates: Rates, yields: Yields, correction: Learned | None = None) -> Rates:
    """`rates` with the clusters and ideas foreseen from the pending rows, where there are any,
    times what the site's history learned of its provider's yields against the foresight, and
    the formula's band around them."""
    learned = correction or Learned(clusters_per_keyword=None, ideas_per_cluster=None)
    cpk = _times(yields.clusters_per_keyword, learned.clusters_per_keyword)
    ipc = _times(yields.ideas_per_cluster, learned.ideas_per_cluster)
    if cpk is not None:
        cpk = min(cpk, Decimal(1))  # a keyword is in one cluster: never more clusters than them
    if cpk is None and ipc is None:
        return rates

    def set_yields(r: Rates, factor: Decimal) -> Rates:
        return replace(
            r,
            clusters_per_keyword=r.clusters_per_keyword if cpk is None else cpk * factor,
            ideas_per_cluster=r.ideas_per_cluster if ipc is None else ipc * factor,
        )

    return replace(
        set_yields(rates, Decimal(1)),
        low=set_yields(rates.low, 1 - FORMULA_BAND) if rates.low else None,
        high=set_yields(rates.high, 1 + FORMULA_BAND) if rates.high else None,
    )


def _times(value: Decimal | None, factor: Decimal | None) -> Decimal | None:
    return value if value is None or factor is None else value * factor


def learned_from(runs: Sequence[AutomationRun]) -> Learned:
    """What the runs' recorded foresights and real counts teach (`yields.learned`)."""
    return learned(
        (
            (run.progress_plan or {}).get("foreseen"),
            {
                "keywords_processed": _number(run.stage_1_result, "keywords_processed"),
                "clusters_created": _number(run.stage_1_result, "clusters_created"),
                "clusters_processed": _number(run.stage_2_result, "clusters_processed"),
                "ideas_created": _number(run.stage_2_result, "ideas_created"),
            },
        )
        for run in runs
    )


def _ceil(value: Decimal) -> int:
    # To a thousandth first: 23 clusters of 40 keywords is 0.575 a keyword, whose product with
    # 40 must stay 23 and not become 24 by the last digit of a division.
    return int(value.quantize(MILLI).to_integral_value(rounding=ROUND_CEILING))


def project(
    pending: Mapping[int, int], config: AutomationConfig, rates: Rates
) -> list[StageEstimate]:
    """Each stage's items and credits, stage 1 to 7, feeding each stage's output to the next;
    with the low and high ends of the range where `rates` has them."""
    central = _flow(pending, config, rates)
    low = _flow(pending, config, rates.low) if rates.low else central
    high = _flow(pending, config, rates.high) if rates.high else central
    return [
        StageEstimate(
            enabled=enabled,
            items=items,
            credits=credits,
            items_low=min(items, low[i][1]),
            items_high=max(items, high[i][1]),
            credits_low=min(credits, low[i][2]),
            credits_high=max(credits, high[i][2]),
        )
        for i, (enabled, items, credits) in enumerate(central)
    ]


def _flow(
    pending: Mapping[int, int], config: AutomationConfig, rates: Rates
) -> list[tuple[bool, int, Decimal]]:
    """(enabled, items, credits) of stages 1 to 7 at `rates`."""
    per_article = images_per_article(config)
    stages: list[tuple[bool, int, Decimal]] = []
    fed = 0
    for stage in STAGE_NUMBERS:
        if not getattr(config, f"stage_{stage}_enabled"):
            stages.append((False, 0, Decimal(0)))
            fed = 0
            continue
        items = pending[stage] + fed
        limit: int = getattr(config, STAGE_LIMITS[stage])
        if limit > 0:
            items = min(items, limit)
        cost = items * rates.credits_per_item.get(stage, Decimal(0))
        stages.append((True, items, cost.quantize(CENT, ROUND_CEILING)))
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


@dataclass(frozen=True)
class SiteRates:
    """The rates a run of the site is projected with, the history's projection where it has
    enough runs, the clusters and ideas foreseen from its pending rows (as a run's plan records
    them), and the site's latest completed runs, read for them (a run's plan takes their paces
    too)."""

    rates: Rates
    projection: Projection | None
    foreseen: dict[str, str | None]
    history: Sequence[AutomationRun]


async def site_rates(session: AsyncSession, site_id: int, config: AutomationConfig) -> SiteRates:
    """The rates a run of the site is projected with: its history's once it has enough
    completed runs (with the projection that says so), else the calibrated formula's; in both,
    the clusters and ideas foreseen from the site's pending rows where it has any, corrected by
    how the site's runs yielded against their own foresight."""
    prices = await load_prices(session)
    rates = formula_rates(prices, config)
    runs = await completed_runs(session, site_id)
    projection = None
    correction = None
    if len(runs) >= MIN_HISTORY_RUNS:
        rates = history_rates(runs, rates)
        projection = _projection(runs, rates)
        correction = learned_from(runs)
    yields = await foresee(session, site_id, config)
    return SiteRates(with_yields(rates, yields, correction), projection, yields.foreseen(), runs)


async def estimate(
    session: AsyncSession,
    site: Site,
    config: AutomationConfig,
    *,
    pending: Mapping[int, int] | None = None,
    planned: SiteRates | None = None,
) -> Estimate:
    """The estimate of a run of `site` with `config`, started now; `pending` and `planned` where
    the caller has them already (`run_now` plans the run with the same)."""
    if pending is None:
        pending = await pending_counts(session, site.id)
    if planned is None:
        planned = await site_rates(session, site.id, config)
    rates, projection = planned.rates, planned.projection
    stages = project(pending, config, rates)
    total = sum((s.credits for s in stages), Decimal(0))
    cap = config.max_credits_per_run
    capped = cap > 0 and total > cap

    def capped_at(credits: Decimal) -> Decimal:
        return min(credits, cap) if cap > 0 else credits

    estimated = capped_at(total)
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
        estimated_credits_low=capped_at(sum((s.credits_low for s in stages), Decimal(0))),
        estimated_credits_high=capped_at(sum((s.credits_high for s in stages), Decimal(0))),
    )


async def check_balance(
    session: AsyncSession,
    site: Site,
    config: AutomationConfig,
    *,
    pending: Mapping[int, int] | None = None,
    planned: SiteRates | None = None,
) -> Estimate:
    """The estimate, if the balance covers it with the 20% buffer; else `InsufficientCredits`
    with the estimate as details."""
    result = await estimate(session, site, config, pending=pending, planned=planned)
    if not result.sufficient:
        raise InsufficientCredits(
            f"insufficient credits: a run needs {result.required_with_buffer} "
            f"({result.estimated_credits} estimated x {BUFFER}) and the balance is "
            f"{result.current_balance}",
            details=result.model_dump(mode="json"),
        )
    return result
