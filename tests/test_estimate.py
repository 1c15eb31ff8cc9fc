"""The credit estimate (SPEC §6, §8): the reference formula on the pending counts, what earlier
stages feed later ones in the same run, switches and limits, and averages of past runs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits import yields
from app.credits.estimate import check_balance, estimate
from app.credits.ledger import top_up
from app.db import unit_of_work
from app.errors import InsufficientCredits
from app.models.automation import AutomationConfig, AutomationRun, RunStatus
from app.models.billing import CreditCostConfig
from app.models.tenancy import Site
from app.runs.config import get_or_create_config
from app.runs.events import RunLog
from app.runs.plan import ProgressPlan, StagePlan
from tests import engine
from tests.builders import (
    create_automation_run,
    create_cluster,
    create_content,
    create_idea,
    create_image,
    create_keyword,
    create_task,
)
from tests.factories import Tenant, create_tenant

ESTIMATE = "/api/v1/automation/estimate/"
UPDATE = "/api/v1/automation/update_config/"

_runs = itertools.count(1)


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


# Two topics: the local clustering makes "Running Shoes" (5 keywords), "Sourdough Bread" (4) and
# "Sourdough Starter" (1) of them, which have 5, 4 and 3 ideas.
TWO_TOPICS = [
    "trail running shoes",
    "running shoes for women",
    "best running shoes",
    "running shoes for flat feet",
    "cheap running shoes",
    "sourdough bread recipe",
    "sourdough starter",
    "easy sourdough bread",
    "sourdough bread flour",
    "gluten free sourdough bread",
]
# Ten topics, one keyword each: ten clusters of 3 ideas.
TEN_TOPICS = [
    "yoga mat",
    "espresso machine",
    "solar panels",
    "dog training",
    "air fryer",
    "camping tent",
    "standing desk",
    "car insurance",
    "hiking boots",
    "baby stroller",
]


async def add_pending(
    session_factory: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    *,
    texts: list[str] | None = None,
    keywords: int = 0,
    clusters: int = 0,
    ideas: int = 0,
    tasks: int = 0,
    drafts: int = 0,
    images: int = 0,
    in_review: int = 0,
) -> None:
    """Rows pending at each stage: stage 1 keywords (`texts`, or `keywords` of one topic) ...
    stage 7 articles in review. A cluster pending for stage 2 has no keywords: 3 ideas."""
    for text in texts or []:
        await create_keyword(session_factory, tenant, keyword=text)
    for _ in range(keywords):
        await create_keyword(session_factory, tenant)
    for _ in range(clusters):
        await create_cluster(session_factory, tenant)
    if ideas:
        # A cluster that has ideas is no longer pending for stage 2.
        parent = await create_cluster(session_factory, tenant)
        for _ in range(ideas):
            await create_idea(session_factory, tenant, cluster_id=parent.id)
    for _ in range(tasks):
        await create_task(session_factory, tenant)
    for _ in range(drafts):
        await create_content(session_factory, tenant, status="draft")
    if images:
        # An approved article is pending nowhere, so only its images count.
        article = await create_content(session_factory, tenant, status="approved")
        for position in range(images):
            await create_image(session_factory, tenant, content_id=article.id, position=position)
    for _ in range(in_review):
        await create_content(session_factory, tenant, status="review")


async def get_estimate(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.get(
        ESTIMATE, params={"site_id": tenant.site_id}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def configure(client: httpx.AsyncClient, tenant: Tenant, **changes: Any) -> None:
    response = await client.put(
        UPDATE, params={"site_id": tenant.site_id}, json=changes, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


def ranges(body: dict[str, Any]) -> list[tuple[int, int, float, float]]:
    """(items_low, items_high, credits_low, credits_high) of stages 1..7."""
    per_stage = body["per_stage"]
    return [
        (
            per_stage[f"stage_{n}"]["items_low"],
            per_stage[f"stage_{n}"]["items_high"],
            per_stage[f"stage_{n}"]["credits_low"],
            per_stage[f"stage_{n}"]["credits_high"],
        )
        for n in range(1, 8)
    ]


def exact(items: int, credits: float, enabled: bool = True) -> dict[str, Any]:
    """A stage's part with no range: all of its items are pending now."""
    return {
        "enabled": enabled,
        "items": items,
        "credits": credits,
        "items_low": items,
        "items_high": items,
        "credits_low": credits,
        "credits_high": credits,
    }


def stages(body: dict[str, Any]) -> list[tuple[int, float]]:
    """(items, credits) of stages 1..7."""
    return [
        (body["per_stage"][f"stage_{n}"]["items"], body["per_stage"][f"stage_{n}"]["credits"])
        for n in range(1, 8)
    ]


class TestTheFormulaOnPendingCounts:
    async def test_each_stage_costs_the_calibrated_price_of_its_items(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        # Nothing flows on: each stage's pending items alone, one stage enabled at a time.
        # An article is priced at 1,250 words (2.50 credits), not the reference's 2,500.
        await add_pending(session_factory, tenant, keywords=7, clusters=3, tasks=2, drafts=4)
        await configure(client, tenant, max_in_article_images=3)
        expected = {1: 1.40, 2: 6.0, 4: 5.0, 5: 8.0}
        for stage, credits in expected.items():
            await configure(
                client, tenant, **{f"stage_{n}_enabled": n == stage for n in range(1, 8)}
            )
            body = await get_estimate(client, tenant)
            assert body["per_stage"][f"stage_{stage}"]["credits"] == credits
            assert body["estimated_credits"] == credits

    async def test_an_article_with_four_images_costs_2_and_8_credits(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, drafts=1)
        await configure(client, tenant, max_in_article_images=3)
        body = await get_estimate(client, tenant)
        assert body["per_stage"]["stage_5"] == exact(1, 2.0)
        assert body["per_stage"]["stage_6"] == exact(4, 8.0)
        assert body["per_stage"]["stage_7"]["items"] == 1
        assert body["estimated_credits"] == 10.0

    async def test_a_site_with_nothing_pending_needs_nothing(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        body = await get_estimate(client, tenant)
        assert body == {
            "estimated_credits": 0.0,
            "required_with_buffer": 0.0,
            "current_balance": 100.0,
            "sufficient": True,
            "basis": "formula",
            "capped_by_max_credits_per_run": False,
            "per_stage": {f"stage_{n}": exact(0, 0.0) for n in range(1, 8)},
            "projection": None,
            "estimated_credits_low": 0.0,
            "estimated_credits_high": 0.0,
        }


class TestProjectionThroughTheStages:
    async def test_earlier_stages_feed_later_ones_in_the_same_run(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(
            session_factory,
            tenant,
            texts=TWO_TOPICS,
            clusters=2,
            ideas=3,
            tasks=4,
            drafts=5,
            images=6,
            in_review=7,
        )
        body = await get_estimate(client, tenant)
        # 10 keywords -> 3 clusters (+2) -> 5 + 4 + 3 ideas (+3 + 3, +3) -> 21 tasks (+4)
        # -> 25 articles (+5) -> 90 images (3 each, +6) -> 32 articles in review (+7).
        assert stages(body) == [
            (10, 2.0),
            (5, 10.0),
            (21, 0.0),
            (25, 62.5),
            (30, 45.0),
            (96, 192.0),
            (39, 0.0),
        ]
        assert body["estimated_credits"] == 311.5
        assert body["required_with_buffer"] == 373.8
        assert body["current_balance"] == 100.0
        assert body["sufficient"] is False

    async def test_a_disabled_stage_costs_nothing_and_feeds_nothing(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(
            session_factory,
            tenant,
            texts=TWO_TOPICS,
            clusters=2,
            ideas=3,
            tasks=4,
            drafts=5,
            images=6,
            in_review=7,
        )
        await configure(client, tenant, stage_2_enabled=False)
        body = await get_estimate(client, tenant)
        assert body["per_stage"]["stage_2"] == exact(0, 0.0, enabled=False)
        assert stages(body) == [
            (10, 2.0),
            (0, 0.0),
            (3, 0.0),
            (7, 17.5),
            (12, 18.0),
            (42, 84.0),
            (21, 0.0),
        ]
        assert body["estimated_credits"] == 121.5

    async def test_per_run_limits_cap_each_stage_and_what_it_feeds_on(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(
            session_factory,
            tenant,
            texts=TWO_TOPICS,
            clusters=2,
            ideas=3,
            tasks=4,
            drafts=5,
            images=6,
            in_review=7,
        )
        await configure(client, tenant, max_keywords_per_run=5, max_tasks_per_run=10)
        body = await get_estimate(client, tenant)
        # The first 5 keywords (by id) are the running shoes: 1 cluster of 5 ideas.
        assert stages(body) == [
            (5, 1.0),
            (3, 6.0),
            (14, 0.0),
            (10, 25.0),
            (15, 22.5),
            (51, 102.0),
            (24, 0.0),
        ]
        assert body["estimated_credits"] == 156.5

    async def test_the_credit_cap_of_a_run_caps_the_estimate_and_its_range(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, tasks=20)
        await configure(client, tenant, max_credits_per_run=30)
        body = await get_estimate(client, tenant)
        assert body["per_stage"]["stage_4"]["credits"] == 50.0
        assert body["estimated_credits"] == 30.0
        assert body["estimated_credits_low"] == 30.0
        assert body["estimated_credits_high"] == 30.0
        assert body["capped_by_max_credits_per_run"] is True
        assert body["required_with_buffer"] == 36.0
        assert body["sufficient"] is True


class TestStageOneIsForeseenFromTheKeywords:
    async def test_ten_topics_make_ten_clusters_and_two_topics_three(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        ten = await create_tenant(session_factory)
        await add_pending(session_factory, ten, texts=TEN_TOPICS)
        two = await create_tenant(session_factory)
        await add_pending(session_factory, two, texts=TWO_TOPICS)

        ten_body = await get_estimate(client, ten)
        two_body = await get_estimate(client, two)

        # The reference formula would say 2 clusters and 10 ideas for both.
        assert stages(ten_body)[1:3] == [(10, 20.0), (30, 0.0)]
        assert stages(two_body)[1:3] == [(3, 6.0), (12, 0.0)]

    async def test_keywords_are_clustered_in_the_batches_stage_1_makes(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TWO_TOPICS)
        await configure(client, tenant, stage_1_batch_size=1)
        body = await get_estimate(client, tenant)
        # One keyword a call: every keyword is a cluster of its own, of 3 ideas.
        assert stages(body)[1:3] == [(10, 20.0), (30, 0.0)]

    async def test_a_cluster_name_the_site_has_is_reused_not_created(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TWO_TOPICS)
        parent = await create_cluster(session_factory, tenant, name="running shoes")
        await create_idea(session_factory, tenant, cluster_id=parent.id)
        body = await get_estimate(client, tenant)
        # Sourdough Bread and Sourdough Starter only: 4 + 3 ideas, and the existing idea.
        assert stages(body)[1:3] == [(2, 4.0), (8, 0.0)]

    async def test_past_the_keywords_analysed_their_yield_carries_over(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TEN_TOPICS)
        monkeypatch.setattr(yields, "MAX_ANALYSED", 4)
        body = await get_estimate(client, tenant)
        # 4 keywords analysed, 4 clusters of 3 ideas: 10 clusters and 30 ideas for the 10.
        assert stages(body)[:3] == [(10, 2.0), (10, 20.0), (30, 0.0)]


class TestTheRange:
    async def test_without_history_the_yields_and_article_length_range_10_percent(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(
            session_factory,
            tenant,
            texts=TWO_TOPICS,
            clusters=2,
            ideas=3,
            tasks=4,
            drafts=5,
            images=6,
            in_review=7,
        )
        body = await get_estimate(client, tenant)
        # Clusters per keyword 0.3 +-10 %: 3 or 4 clusters of 10 keywords; ideas per cluster
        # 3.6 +-10 %: 17 or 24 of 5 clusters; an article 2.50 +-10 %; the rows pending now are
        # certain.
        assert ranges(body) == [
            (10, 10, 2.0, 2.0),
            (5, 6, 10.0, 12.0),
            (20, 27, 0.0, 0.0),
            (24, 31, 54.0, 85.25),
            (29, 36, 43.5, 54.0),
            (93, 114, 186.0, 228.0),
            (38, 45, 0.0, 0.0),
        ]
        assert body["estimated_credits_low"] == 295.5
        assert body["estimated_credits"] == 311.5
        assert body["estimated_credits_high"] == 381.25


class TestPricesComeFromTheCostTable:
    async def test_an_edited_price_changes_the_estimate(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, images=5)
        # The cost table is shared seed data: the change is rolled back, never committed.
        async with session_factory() as session:
            await session.execute(
                update(CreditCostConfig)
                .where(CreditCostConfig.operation == "image_generation")
                .values(credits_per_unit=Decimal(3))
            )
            site = await session.get_one(Site, tenant.site_id)
            config = await get_or_create_config(session, site)
            result = await estimate(session, site, config)
            await session.rollback()
        assert result.per_stage["stage_6"].credits == Decimal("15.00")

    async def test_an_operation_priced_by_tokens_costs_the_tokens_its_call_takes(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, tasks=2)
        async with session_factory() as session:
            await session.execute(
                update(CreditCostConfig)
                .where(CreditCostConfig.operation == "content_generation")
                .values(pricing="per_token", credits_per_1k_tokens=Decimal(1))
            )
            site = await session.get_one(Site, tenant.site_id)
            config = await get_or_create_config(session, site)
            result = await estimate(session, site, config)
            await session.rollback()
        # 230 tokens of instructions and brief and 1,250 of article: 1.48 credits a task, not
        # the 2.50 of the unit price the row still has; +-30 % (a tokenizer's count).
        stage_4 = result.per_stage["stage_4"]
        assert stage_4.credits == Decimal("2.96")
        assert (stage_4.credits_low, stage_4.credits_high) == (Decimal("2.08"), Decimal("3.85"))


async def add_completed_run(
    session_factory: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    run_log: RunLog,
    *,
    status: RunStatus = RunStatus.COMPLETED,
    **results: Any,
) -> None:
    """A run taken to `status` through the run door, then given its stage results and an end
    time (the nth run ended n hours ago)."""
    n = next(_runs)
    run = await create_automation_run(session_factory, tenant, run_log, status=status)
    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(AutomationRun)
            .where(AutomationRun.id == run.id)
            .values(completed_at=datetime.now(UTC) - timedelta(hours=n), **results)
        )


async def add_history(
    session_factory: async_sessionmaker[AsyncSession], tenant: Tenant, run_log: RunLog, runs: int
) -> None:
    """Runs that made 1 cluster per 10 keywords, 3 ideas per cluster, and paid 0.2 a keyword,
    2 a cluster, 4 an article, 1.5 per article's prompts and 2 an image."""
    sizes = [(10, 1), (30, 3), (0, 0), (20, 2)]
    for keywords, clusters in sizes[:runs]:
        ideas = clusters * 3
        await add_completed_run(
            session_factory,
            tenant,
            run_log,
            stage_1_result={
                "keywords_processed": keywords,
                "clusters_created": clusters,
                "credits_used": keywords / 5,
            },
            stage_2_result={
                "clusters_processed": clusters,
                "ideas_created": ideas,
                "credits_used": clusters * 2,
            },
            stage_4_result={"tasks_processed": ideas, "credits_used": ideas * 4},
            stage_5_result={"content_processed": ideas, "credits_used": str(ideas * 1.5)},
            stage_6_result={"images_processed": ideas * 3, "credits_used": ideas * 6},
        )


def _plan_foreseeing(**foreseen: str) -> dict[str, Any]:
    """A completed run's plan that recorded the foresight `foreseen` at its start."""
    stages = tuple(StagePlan(items=0) for _ in range(7))
    return ProgressPlan(basis="formula", stages=stages, foreseen=foreseen).stored()


class TestProjectionFromPastRuns:
    async def test_three_completed_runs_replace_the_formulas_assumptions(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        run_log: RunLog,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TEN_TOPICS)
        await add_history(session_factory, tenant, run_log, runs=3)

        body = await get_estimate(client, tenant)

        assert body["basis"] == "history"
        assert body["projection"] == {
            "completed_runs": 3,
            "clusters_per_keyword": 0.1,
            "ideas_per_cluster": 3.0,
            "credits_per_item": {
                "stage_1": 0.2,
                "stage_2": 2.0,
                "stage_4": 4.0,
                "stage_5": 1.5,
                "stage_6": 2.0,
            },
        }
        # The history's credits per item; the clusters foreseen from the keywords themselves
        # (ten topics: 10 clusters, not the history's 1 per 10 keywords), 3 ideas each.
        assert stages(body) == [
            (10, 2.0),
            (10, 20.0),
            (30, 0.0),
            (30, 120.0),
            (30, 45.0),
            (90, 180.0),
            (30, 0.0),
        ]
        assert body["estimated_credits"] == 367.0

    async def test_history_corrects_the_foresight_by_what_the_runs_made_of_their_own(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        run_log: RunLog,
    ) -> None:
        """The foresight is the local provider's clustering: a site whose provider made half
        the clusters foreseen for its runs, and 4 ideas where 3 were foreseen, gets half and
        4/3 of the new foresight."""
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TEN_TOPICS)
        for keywords in (10, 30, 20):
            clusters = keywords // 2
            await add_completed_run(
                session_factory,
                tenant,
                run_log,
                progress_plan=_plan_foreseeing(clusters_per_keyword="1", ideas_per_cluster="3"),
                stage_1_result={"keywords_processed": keywords, "clusters_created": clusters},
                stage_2_result={"clusters_processed": clusters, "ideas_created": clusters * 4},
            )

        body = await get_estimate(client, tenant)

        assert body["basis"] == "history"
        # Ten topics are foreseen as 10 clusters of one keyword, 3 ideas each: the history
        # learned 0.5 and 4/3 of that.
        items = [items for items, _ in stages(body)]
        assert items[:3] == [10, 5, 20]

    async def test_runs_that_recorded_no_foresight_leave_it_as_it_is(self) -> None:
        """Runs from before plans kept a foresight teach nothing (`test_three_completed_runs_...`
        relies on it); a foresight of 0 clusters is no measure either."""
        counts = {
            "keywords_processed": Decimal(10),
            "clusters_created": Decimal(5),
            "clusters_processed": Decimal(5),
            "ideas_created": Decimal(20),
        }

        assert yields.learned([(None, counts), ({"foreseen": None}, counts)]) == yields.Learned(
            None, None
        )
        assert yields.learned(
            [({"clusters_per_keyword": "0", "ideas_per_cluster": "x"}, counts)]
        ) == (yields.Learned(None, None))
        assert yields.learned(
            [({"clusters_per_keyword": "0.25", "ideas_per_cluster": "5"}, counts)]
        ) == yields.Learned(Decimal(2), Decimal("0.8"))

    async def test_two_runs_are_not_enough_history(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        run_log: RunLog,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, texts=TEN_TOPICS)
        await add_history(session_factory, tenant, run_log, runs=2)
        await add_completed_run(session_factory, tenant, run_log, status=RunStatus.CANCELLED)
        await add_completed_run(session_factory, tenant, run_log, status=RunStatus.FAILED)

        body = await get_estimate(client, tenant)

        assert body["basis"] == "formula"
        assert body["projection"] is None
        # The formula: 10 clusters, 30 ideas, tasks and articles, 90 images.
        assert body["estimated_credits"] == 2.0 + 20.0 + 75.0 + 45.0 + 180.0

    async def test_with_history_the_range_spans_the_runs_lowest_and_highest_ratios(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        run_log: RunLog,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await add_pending(session_factory, tenant, tasks=10)
        # Articles of 1,000, 1,500 and 2,000 words: 2, 3 and 4 credits a task, 3 on average.
        for per_task in (2, 3, 4):
            await add_completed_run(
                session_factory,
                tenant,
                run_log,
                stage_4_result={"tasks_processed": 10, "credits_used": 10 * per_task},
            )
        body = await get_estimate(client, tenant)
        assert body["basis"] == "history"
        stage_4 = body["per_stage"]["stage_4"]
        assert (stage_4["credits_low"], stage_4["credits"], stage_4["credits_high"]) == (
            20.0,
            30.0,
            40.0,
        )


async def clustering_only(session: AsyncSession, site: Site) -> AutomationConfig:
    """The site's config with every stage but clustering off: 50 keywords cost 10 credits."""
    config = await get_or_create_config(session, site)
    for stage in range(2, 8):
        setattr(config, f"stage_{stage}_enabled", False)
    await session.flush()
    return config


class TestTheBalanceCheck:
    async def test_a_balance_under_the_buffered_estimate_is_refused_with_the_estimate(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(10))
        await add_pending(session_factory, tenant, keywords=50)
        async with unit_of_work(session_factory) as session:
            site = await session.get_one(Site, tenant.site_id)
            config = await clustering_only(session, site)
            with pytest.raises(InsufficientCredits) as refused:
                await check_balance(session, site, config)
        error = refused.value
        assert error.status_code == 400
        assert error.code == "insufficient_credits"
        assert "12.00" in error.message
        assert "10.00" in error.message
        assert error.details["estimated_credits"] == 10.0
        assert error.details["required_with_buffer"] == 12.0
        assert error.details["current_balance"] == 10.0

    async def test_a_balance_of_exactly_the_buffered_estimate_is_enough(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(10))
        await add_pending(session_factory, tenant, keywords=50)
        async with unit_of_work(session_factory) as session:
            await top_up(
                session, account_id=tenant.account_id, amount=Decimal(2), idempotency_key="t:1"
            )
            site = await session.get_one(Site, tenant.site_id)
            result = await check_balance(session, site, await clustering_only(session, site))
        assert result.sufficient is True
        assert result.required_with_buffer == Decimal("12.00")
        assert result.current_balance == Decimal("12.00")


class TestTheEstimateOfAFirstRunMatchesTheRun:
    async def test_40_keywords_each_stage_processes_what_was_estimated(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await engine.feed(client, tenant, 40)
        await engine.configure(client, tenant, stage_4_batch_size=4, stage_6_batch_size=8)
        body = await get_estimate(client, tenant)

        run_id = await engine.start(client, tenant)
        await engine.work(settings)
        run = await engine.load_run(session_factory, run_id)

        assert run.stopped_reason == "completed", run.error_message
        keys = (
            "keywords_processed",
            "clusters_processed",
            "ideas_processed",
            "tasks_processed",
            "content_processed",
            "images_processed",
            "ready_for_review",
        )
        actual = [getattr(run, f"stage_{n}_result")[key] for n, key in enumerate(keys, start=1)]
        # The reference formula said 8 clusters and 40 articles for 40 keywords.
        assert [items for items, _ in stages(body)] == actual
        spent = float(run.total_credits_used)
        assert abs(body["estimated_credits"] - spent) <= 0.05 * spent
        assert body["estimated_credits_low"] <= spent <= body["estimated_credits_high"]
