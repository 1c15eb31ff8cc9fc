"""What a run may do: per-run item limits, disabled stages, the credit budget and its split by
function (SPEC §5, §8). A limit stops a stage between items; what is left waits for the next run."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ai import registry
from app.ai.base import Answer
from app.ai.local import LocalProvider
from app.ai.schemas import ArticleOut, ContentBrief
from app.config import Settings
from app.db import unit_of_work
from app.models.billing import CreditTransaction, Operation, TransactionKind
from app.models.tenancy import Account
from app.models.writer import Content, ContentStatus, Image
from app.stages import work as item_work
from tests.engine import charged, configure, feed, load_run, start, work
from tests.factories import Tenant, create_tenant

RICH = Decimal(100000)


async def images_of(session_factory: async_sessionmaker[AsyncSession], tenant: Tenant) -> int:
    async with session_factory() as session:
        total = await session.scalar(
            select(func.count()).select_from(Image).where(Image.site_id == tenant.site_id)
        )
    return int(total or 0)


class TestPerRunLimits:
    async def test_each_stage_stops_at_its_limit_and_the_next_run_goes_on(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=RICH)
        await feed(client, tenant, 60)
        await configure(
            client,
            tenant,
            max_keywords_per_run=25,
            max_clusters_per_run=4,
            max_tasks_per_run=3,
            max_images_per_run=5,
        )

        first = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, first)
        assert run.status == "completed", run.error_message
        assert run.stage_1_result is not None
        assert run.stage_1_result["keywords_processed"] == 25
        assert run.stage_2_result is not None
        assert run.stage_2_result["clusters_processed"] == 4
        assert run.stage_4_result is not None
        assert run.stage_4_result["tasks_processed"] == 3
        assert run.stage_6_result is not None
        assert run.stage_6_result["images_processed"] == 5

        second = await start(client, tenant)
        await work(settings)

        again = await load_run(session_factory, second)
        assert again.stage_1_result is not None
        assert again.stage_1_result["keywords_processed"] == 25, "the next 25 keywords"
        assert again.stage_4_result is not None
        assert again.stage_4_result["tasks_processed"] == 3


class TestDisabledStages:
    async def test_a_disabled_stage_is_skipped_and_feeds_nothing_on(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=RICH)
        await feed(client, tenant, 20)
        await configure(client, tenant, stage_5_enabled=False)

        run_id = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed"
        assert run.stage_5_result is not None
        assert run.stage_5_result["skipped"] is True
        assert run.stage_5_result["content_processed"] == 0
        assert run.stage_6_result is not None
        assert run.stage_6_result["images_processed"] == 0
        assert await images_of(session_factory, tenant) == 0
        async with session_factory() as session:
            drafts = await session.scalar(
                select(func.count()).where(
                    Content.site_id == tenant.site_id, Content.status == ContentStatus.DRAFT
                )
            )
        assert run.stage_4_result is not None
        assert drafts == run.stage_4_result["content_created"]


class TestCreditBudget:
    @pytest.mark.parametrize("every_item_rechecks", [False, True])
    async def test_max_credits_per_run_stops_the_run_before_it_would_exceed_them(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        every_item_rechecks: bool,
    ) -> None:
        """Each stage stops when the next item's hold would go over its function's share, and
        the run ends there. The item held before that one is still called and charged: with
        every item re-reading the stop before its call (as one whose slot or permit was long in
        coming does), none stops for the limit that the next item's hold reached."""
        if every_item_rechecks:
            monkeypatch.setattr(item_work, "RECHECK_AFTER_SECONDS", 0.0)
        tenant = await create_tenant(session_factory, credits=RICH)
        await feed(client, tenant, 40)
        # Split by the default shares: clustering gets 15% of 30, less than 40 keywords cost.
        await configure(client, tenant, max_credits_per_run=30)

        run_id = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed"
        assert run.stopped_reason == "credit_budget_reached"
        assert 0 < run.total_credits_used <= 30
        for number in (1, 2, 4):  # each AI stage with work reached before its share ran out
            result = getattr(run, f"stage_{number}_result")
            assert result["credits_used"] > 0, (number, result)
        assert await charged(session_factory, run.id) == run.total_credits_used

    async def test_a_function_over_its_share_stops_its_stage_and_the_run_goes_on(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=RICH)
        await feed(client, tenant, 40)
        await configure(client, tenant, max_credits_per_run=1000)
        # 10% of 1,000 credits for articles: a handful at about 3 credits each.
        await allocate(client, tenant, content=1, images=39)

        run_id = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed"
        assert run.stopped_reason == "credit_budget_reached"
        content = run.stage_4_result
        assert content is not None
        assert content["stopped_reason"] == "credit_budget_reached"
        assert 0 < content["credits_used"] <= 10
        assert run.stage_3_result is not None
        assert content["content_created"] < run.stage_3_result["tasks_created"]
        assert run.stage_5_result is not None
        assert run.stage_5_result["content_processed"] == content["content_created"]


class LongArticles(LocalProvider):
    """The local provider, writing every article thirty times over: far longer than its hold."""

    def __init__(self) -> None:
        super().__init__(latency_ms=0)

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        answer = await super().generate_content(brief)
        longer = answer.output.model_copy(update={"html": answer.output.html * 30})
        return Answer(longer, answer.usage)


class TestArticlesLongerThanTheirHolds:
    async def test_the_run_counts_what_was_charged_when_the_balance_caps_it(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Articles cost more than their holds, and the balance runs out: a charge is capped at
        what the account had (SPEC §8: never below 0). The run's credits and the stage's
        `credits_used` count what the ledger charged, not the price of what was written."""
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: LongArticles())
        tenant = await create_tenant(session_factory, credits=RICH)
        await feed(client, tenant, 10)
        await configure(
            client, tenant, max_clusters_per_run=1, stage_4_batch_size=1, stage_5_enabled=False
        )
        run_id = await start(client, tenant)
        async with unit_of_work(session_factory) as session:  # less than the articles will cost
            await session.execute(
                update(Account).where(Account.id == tenant.account_id).values(credits=20)
            )

        await work(settings)

        run = await load_run(session_factory, run_id)
        async with session_factory() as session:
            balance = await session.scalar(
                select(Account.credits).where(Account.id == tenant.account_id)
            )
            articles = await session.scalar(
                select(func.sum(CreditTransaction.amount)).where(
                    CreditTransaction.run_pk == run.id,
                    CreditTransaction.kind == TransactionKind.SETTLE,
                    CreditTransaction.operation == Operation.CONTENT_GENERATION,
                )
            )
        assert balance == 0, "the last article's charge took what was left"
        assert run.stage_4_result is not None
        assert run.stage_4_result["content_created"] >= 1
        assert Decimal(str(run.stage_4_result["credits_used"])) == -(articles or 0) > 0
        assert run.total_credits_used == await charged(session_factory, run.id) == 20


async def allocate(
    client: httpx.AsyncClient, tenant: Tenant, *, content: int, images: int | None = None
) -> None:
    """A site allocation giving `content`% to articles (of 100 in all)."""
    images = images if images is not None else 0
    rest = 100 - content - images
    body = {
        "use_global_defaults": False,
        "clustering": rest // 3,
        "idea_generation": rest // 3,
        "content_generation": content,
        "image_prompt_extraction": rest - 2 * (rest // 3),
        "image_generation": images,
    }
    response = await client.put(
        f"/api/v1/billing/sites/{tenant.site_id}/ai-budget/", json=body, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
