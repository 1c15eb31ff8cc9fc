"""Rules the database itself keeps, whatever code writes to it, on real PostgreSQL: rows inserted
raw, except runs and articles, whose statuses only their doors write."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import Base, unit_of_work
from app.errors import AlreadyRunning
from app.models.automation import AutomationRun, RunStatus, TriggerType
from app.models.billing import SiteAIBudgetAllocation
from app.models.planner import Cluster, ContentIdea, Keyword
from app.models.tenancy import Account, ApiKey, Site, User
from app.models.writer import Content, Image, Task
from app.runs.events import RunLog
from app.runs.states import create_run
from tests.builders import (
    create_automation_run,
    create_cluster,
    create_content,
    create_image,
    create_keyword,
    create_pipeline_rows,
    create_site,
    insert,
)
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


async def _count(
    session_factory: SessionFactory, model: type[Base], *where: ColumnElement[bool]
) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


class TestKeywordIsUniquePerSiteIgnoringCase:
    async def test_the_same_keyword_in_another_case_on_the_same_site_is_refused(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await create_keyword(session_factory, tenant, keyword="Best Running Shoes")
        with pytest.raises(IntegrityError, match="uq_keywords_site_id_keyword_lower"):
            await create_keyword(session_factory, tenant, keyword="best running SHOES")
        assert await _count(session_factory, Keyword) == 1

    async def test_the_same_keyword_on_another_site_is_fine(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        other_site = await create_site(session_factory, tenant)
        other_tenant = await create_tenant(session_factory)
        await create_keyword(session_factory, tenant, keyword="Best Running Shoes")
        await create_keyword(
            session_factory, tenant, site_id=other_site.id, keyword="best running shoes"
        )
        await create_keyword(session_factory, other_tenant, keyword="Best Running Shoes")
        assert await _count(session_factory, Keyword) == 3

    @pytest.mark.parametrize("keyword", [" padded", "padded ", ""])
    async def test_an_untrimmed_or_empty_keyword_is_refused(
        self, session_factory: SessionFactory, tenant: Tenant, keyword: str
    ) -> None:
        with pytest.raises(IntegrityError, match="ck_keywords_keyword_trimmed"):
            await create_keyword(session_factory, tenant, keyword=keyword)


class TestAtMostOneActiveRunPerSite:
    """Runs start through the run door (`create_run`), whose insert names the partial unique
    index as its arbiter and does nothing when the index holds a run of the site: the refusal
    itself is the index's, which the concurrent starts show (no read before the insert could
    stop all but one of them)."""

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (RunStatus.RUNNING, RunStatus.RUNNING),
            (RunStatus.RUNNING, RunStatus.PAUSED),
            (RunStatus.PAUSED, RunStatus.RUNNING),
            (RunStatus.PAUSED, RunStatus.PAUSED),
        ],
    )
    async def test_a_second_active_run_for_the_site_is_refused(
        self,
        session_factory: SessionFactory,
        tenant: Tenant,
        run_log: RunLog,
        first: RunStatus,
        second: RunStatus,
    ) -> None:
        await create_automation_run(session_factory, tenant, run_log, status=first)
        with pytest.raises(AlreadyRunning) as refused:
            await create_automation_run(session_factory, tenant, run_log, status=second)
        assert refused.value.details == {"site_id": tenant.site_id}
        assert await _count(session_factory, AutomationRun) == 1

    @pytest.mark.parametrize(
        "finished", [RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED]
    )
    async def test_finished_runs_do_not_block_a_new_running_one(
        self,
        session_factory: SessionFactory,
        tenant: Tenant,
        run_log: RunLog,
        finished: RunStatus,
    ) -> None:
        await create_automation_run(session_factory, tenant, run_log, status=finished)
        await create_automation_run(session_factory, tenant, run_log, status=finished)
        await create_automation_run(session_factory, tenant, run_log)
        assert await _count(session_factory, AutomationRun) == 3

    async def test_two_sites_each_have_their_own_running_run(
        self, session_factory: SessionFactory, tenant: Tenant, run_log: RunLog
    ) -> None:
        other_site = await create_site(session_factory, tenant)
        await create_automation_run(session_factory, tenant, run_log)
        await create_automation_run(session_factory, tenant, run_log, site_id=other_site.id)
        assert await _count(session_factory, AutomationRun) == 2

    async def test_of_many_concurrent_starts_exactly_one_wins(
        self, session_factory: SessionFactory, tenant: Tenant, run_log: RunLog
    ) -> None:
        contenders = 8
        all_in_a_transaction = asyncio.Barrier(contenders)

        async def start_run() -> bool:
            async with session_factory() as session:
                await session.execute(select(1))  # holds a connection and an open transaction
                await all_in_a_transaction.wait()
                try:
                    await create_run(
                        session,
                        run_log,
                        account_id=tenant.account_id,
                        site_id=tenant.site_id,
                        trigger_type=TriggerType.MANUAL,
                        initial_snapshot={},
                    )
                    await session.commit()
                except AlreadyRunning:
                    await session.rollback()
                    return False
                return True

        outcomes = await asyncio.gather(*(start_run() for _ in range(contenders)))

        assert outcomes.count(True) == 1
        assert await _count(session_factory, AutomationRun, AutomationRun.status == "running") == 1


class TestCreditsNeverGoNegative:
    async def test_taking_more_than_the_balance_is_refused_and_the_balance_stays(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        with pytest.raises(IntegrityError, match="ck_accounts_credits_not_negative"):
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(Account)
                    .where(Account.id == tenant.account_id)
                    .values(credits=Account.credits - Decimal("100.01"))
                )
        async with session_factory() as session:
            account = await session.get(Account, tenant.account_id)
        assert account is not None
        assert account.credits == Decimal("100.00")

    async def test_spending_the_whole_balance_is_fine(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(Account)
                .where(Account.id == tenant.account_id)
                .values(credits=Account.credits - Decimal("100.00"))
            )
        async with session_factory() as session:
            account = await session.get(Account, tenant.account_id)
        assert account is not None
        assert account.credits == Decimal("0.00")


class TestDeletesCascadeOrLetGo:
    async def test_deleting_an_account_deletes_everything_it_owns_and_nothing_else(
        self, session_factory: SessionFactory, tenant: Tenant, run_log: RunLog
    ) -> None:
        bystander = await create_tenant(session_factory)
        for owner in (tenant, bystander):
            await create_pipeline_rows(session_factory, owner)
            await create_automation_run(session_factory, owner, run_log)

        async with unit_of_work(session_factory) as session:
            await session.execute(delete(Account).where(Account.id == tenant.account_id))

        for model in (
            Site,
            User,
            ApiKey,
            Keyword,
            Cluster,
            ContentIdea,
            Task,
            Content,
            Image,
            AutomationRun,
        ):
            assert await _count(session_factory, model, model.account_id == tenant.account_id) == 0
            assert (
                await _count(session_factory, model, model.account_id == bystander.account_id) > 0
            ), model.__name__

    async def test_deleting_a_cluster_unmaps_its_keywords_but_keeps_them(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        cluster = await create_cluster(session_factory, tenant)
        keyword = await create_keyword(session_factory, tenant, cluster_id=cluster.id)

        async with unit_of_work(session_factory) as session:
            await session.execute(delete(Cluster).where(Cluster.id == cluster.id))

        async with session_factory() as session:
            kept = await session.get(Keyword, keyword.id)
        assert kept is not None
        assert kept.cluster_id is None

    async def test_deleting_content_deletes_its_images(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(session_factory, tenant)
        other = await create_content(session_factory, tenant)
        for target in (content, other):
            await create_image(
                session_factory, tenant, content_id=target.id, image_type="featured", position=0
            )
            await create_image(session_factory, tenant, content_id=target.id, position=1)

        async with unit_of_work(session_factory) as session:
            await session.execute(delete(Content).where(Content.id == content.id))

        assert await _count(session_factory, Image, Image.content_id == content.id) == 0
        assert await _count(session_factory, Image, Image.content_id == other.id) == 2


class TestBudgetPercentagesSumTo100:
    async def test_the_default_split_is_accepted(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        allocation = await insert(
            session_factory,
            SiteAIBudgetAllocation(account_id=tenant.account_id, site_id=tenant.site_id),
        )
        assert [
            allocation.clustering_percentage,
            allocation.idea_generation_percentage,
            allocation.content_generation_percentage,
            allocation.image_prompt_extraction_percentage,
            allocation.image_generation_percentage,
        ] == [Decimal(15), Decimal(10), Decimal(40), Decimal(5), Decimal(30)]

    @pytest.mark.parametrize("clustering", [Decimal(20), Decimal(10), Decimal("15.01")], ids=str)
    async def test_a_split_that_does_not_sum_to_100_is_refused(
        self, session_factory: SessionFactory, tenant: Tenant, clustering: Decimal
    ) -> None:
        with pytest.raises(IntegrityError, match="ck_site_ai_budget_allocations_sums_to_100"):
            await insert(
                session_factory,
                SiteAIBudgetAllocation(
                    account_id=tenant.account_id,
                    site_id=tenant.site_id,
                    clustering_percentage=clustering,
                ),
            )

    async def test_changing_one_share_without_another_is_refused(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await insert(
            session_factory,
            SiteAIBudgetAllocation(account_id=tenant.account_id, site_id=tenant.site_id),
        )
        with pytest.raises(IntegrityError, match="ck_site_ai_budget_allocations_sums_to_100"):
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(SiteAIBudgetAllocation)
                    .where(SiteAIBudgetAllocation.site_id == tenant.site_id)
                    .values(image_generation_percentage=Decimal(20))
                )
