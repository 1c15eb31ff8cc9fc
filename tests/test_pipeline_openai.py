"""Whole runs with AI_PROVIDER=openai against a real OpenAI-compatible server on 127.0.0.1, on
a real worker: the run completes and charges by the tokens reported; a rejected key fails it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.automation import RunEvent
from app.models.billing import CreditCostConfig, CreditTransaction, Operation, Pricing
from app.models.tenancy import Account
from app.models.writer import Content, Image, ImageStatus, Task
from tests.engine import charged, configure, feed, load_run, start, work
from tests.factories import create_tenant
from tests.servers.openai_compatible import OpenAICompatibleServer, Reply

CREDITS = Decimal(100000)
REJECTED = "Incorrect API key provided. You can find your API key at the provider."


@pytest.fixture
async def server() -> AsyncIterator[OpenAICompatibleServer]:
    async with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def openai_settings(settings: Settings, server: OpenAICompatibleServer) -> Settings:
    return settings.model_copy(
        update={
            "ai_provider": "openai",
            "ai_base_url": server.base_url,
            "ai_api_key": SecretStr("test-key"),
            "ai_max_retries": 1,
            "ai_timeout_seconds": 10,
        }
    )


@pytest.fixture
async def content_priced_by_tokens(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[CreditCostConfig]:
    """Articles cost 2 credits per 1k tokens, at least 0.5 a call, and nothing by words (so the
    hold comes from the token ceiling alone). The cost table is seed data the worker must see,
    so the change is committed, and undone after the test."""
    async with session_factory() as session:
        row = await session.scalar(
            select(CreditCostConfig).where(
                CreditCostConfig.operation == Operation.CONTENT_GENERATION
            )
        )
        assert row is not None
        before = {
            "pricing": row.pricing,
            "credits_per_1k_tokens": row.credits_per_1k_tokens,
            "min_credits_per_call": row.min_credits_per_call,
            "credits_per_unit": row.credits_per_unit,
        }
        row.pricing = Pricing.PER_TOKEN
        row.credits_per_unit = Decimal(0)
        row.credits_per_1k_tokens = Decimal(2)
        row.min_credits_per_call = Decimal("0.5")
        await session.commit()
        try:
            yield row
        finally:
            await session.execute(
                update(CreditCostConfig).where(CreditCostConfig.id == row.id).values(**before)
            )
            await session.commit()


async def ledger(
    session_factory: async_sessionmaker[AsyncSession], run_pk: int, kind: str
) -> list[CreditTransaction]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(CreditTransaction)
                .where(CreditTransaction.run_pk == run_pk, CreditTransaction.kind == kind)
                .order_by(CreditTransaction.id)
            )
        )


async def events(
    session_factory: async_sessionmaker[AsyncSession], run_pk: int, kind: str
) -> list[RunEvent]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(RunEvent)
                .where(RunEvent.run_pk == run_pk, RunEvent.kind == kind)
                .order_by(RunEvent.id)
            )
        )


async def count(session_factory: async_sessionmaker[AsyncSession], *where: Any) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).where(*where)) or 0)


class TestRunOnAnOpenAICompatibleProvider:
    async def test_the_run_completes_and_every_charge_keeps_the_tokens_it_paid_for(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        openai_settings: Settings,
        server: OpenAICompatibleServer,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=CREDITS)
        await feed(client, tenant, 24)
        await configure(
            client,
            tenant,
            stage_1_batch_size=12,
            stage_4_batch_size=8,
            stage_5_batch_size=8,
            stage_6_batch_size=16,
            ai_concurrency=8,
            max_clusters_per_run=4,
        )

        run_id = await start(client, tenant)
        await work(openai_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        results = [getattr(run, f"stage_{n}_result") or {} for n in range(1, 8)]
        assert sum(r.get("errors", 0) for r in results) == 0, results
        assert results[0]["keywords_processed"] == 24
        articles = results[3]["content_created"]
        assert articles == results[2]["tasks_created"] > 0
        assert results[5]["images_generated"] == 3 * articles
        assert await count(session_factory, Content.site_id == tenant.site_id) == articles
        generated = await count(
            session_factory,
            Image.site_id == tenant.site_id,
            Image.status == ImageStatus.GENERATED,
        )
        assert generated == 3 * articles

        chats = [r for r in server.requests if r.path == "/v1/chat/completions"]
        calls = 2 + results[1]["clusters_processed"] + 2 * articles
        assert len(chats) == calls, "one request a call: none repaired, none retried"
        assert server.paths().count("/v1/images/generations") == 3 * articles

        settles = await ledger(session_factory, run.id, "settle")
        assert len(settles) == calls + 3 * articles
        for row in settles:
            assert row.data is not None, row.idempotency_key
            usage = row.data["usage"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        done = await events(session_factory, run.id, "item_done")
        # Stages 3 and 7 (approving, on by default) are local: no tokens.
        ai_done = [event for event in done if event.stage not in (3, 7)]
        assert all(event.data and event.data["usage"]["total_tokens"] > 0 for event in ai_done)
        assert await charged(session_factory, run.id) == run.total_credits_used > 0

        metrics = (await client.get("/metrics")).text
        assert (
            'automation_ai_tokens_total{kind="completion",operation="content_generation"}'
            in metrics
        )

    async def test_token_priced_articles_are_charged_by_the_tokens_reported(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        openai_settings: Settings,
        content_priced_by_tokens: CreditCostConfig,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=CREDITS)
        await feed(client, tenant, 10)
        await configure(
            client, tenant, stage_4_batch_size=4, stage_5_enabled=False, stage_6_enabled=False
        )

        run_id = await start(client, tenant)
        await work(openai_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        articles = [
            row
            for row in await ledger(session_factory, run.id, "settle")
            if row.operation == Operation.CONTENT_GENERATION
        ]
        holds = {
            row.idempotency_key.removesuffix(":reserve"): -row.amount
            for row in await ledger(session_factory, run.id, "reserve")
        }
        assert len(articles) == (run.stage_4_result or {})["content_created"] > 0
        for row in articles:
            assert row.data is not None
            tokens = Decimal(row.data["usage"]["total_tokens"])
            by_tokens = (tokens * 2 / 1000).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
            expected = max(by_tokens, Decimal("0.5"))
            assert -row.amount == expected
            assert expected < holds[row.idempotency_key.removesuffix(":settle")], "not capped"


class TestRejectedKey:
    async def test_the_run_fails_once_with_the_reason_frees_its_credits_and_the_site(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        openai_settings: Settings,
        server: OpenAICompatibleServer,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=CREDITS)
        await feed(client, tenant, 20)
        # First the planning stages, with a good key: tasks wait for their articles.
        stages_4_to_7 = {f"stage_{n}_enabled": False for n in range(4, 8)}
        await configure(client, tenant, **stages_4_to_7)
        await start(client, tenant)
        await work(openai_settings)
        async with session_factory() as session:
            balance_before = await session.scalar(
                select(Account.credits).where(Account.id == tenant.account_id)
            )

        # Then the key is revoked while four articles are being asked for at once.
        server.always = Reply.error(401, REJECTED, code="invalid_api_key")
        await configure(
            client,
            tenant,
            **{name: True for name in stages_4_to_7},
            stage_4_batch_size=4,
            ai_concurrency=4,
        )
        asked_before = len(server.requests)
        run_id = await start(client, tenant)
        await work(openai_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "failed"
        assert run.stopped_reason == "failed"
        assert run.current_stage == 4
        assert run.error_message == f"the AI provider rejected the API key (401): {REJECTED}"
        assert "test-key" not in run.error_message
        assert len(await events(session_factory, run.id, "run_failed")) == 1
        assert 1 <= len(server.requests) - asked_before <= 4, "a rejected key is not retried"
        # The run failed, not its items: every task still waits for its article.
        assert await events(session_factory, run.id, "item_failed") == []
        assert run.stage_4_result is not None
        assert run.stage_4_result["errors"] == 0
        async with session_factory() as session:
            statuses = set(
                await session.scalars(select(Task.status).where(Task.site_id == tenant.site_id))
            )
        assert statuses == {"queued"}
        assert await ledger(session_factory, run.id, "settle") == []
        holds = [
            row
            for kind in ("reserve", "release")
            for row in await ledger(session_factory, run.id, kind)
        ]
        held = sum((row.amount for row in holds), Decimal(0))
        assert held == 0, "every hold was released"
        async with session_factory() as session:
            balance = await session.scalar(
                select(Account.credits).where(Account.id == tenant.account_id)
            )
        assert balance == balance_before

        again = await client.post(
            f"/api/v1/automation/run_now/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert again.status_code == 200, again.text


class TestSitesSharingTheProviderCap:
    async def test_runs_of_several_sites_together_never_exceed_the_cap(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        openai_settings: Settings,
        server: OpenAICompatibleServer,
    ) -> None:
        """Three runs that each want four calls in flight, one worker, a cap of two: the server
        never sees more than two at once, and every run completes."""
        server.latency = 0.02
        capped = openai_settings.model_copy(update={"ai_max_concurrency": 2})
        run_ids = []
        for _ in range(3):
            tenant = await create_tenant(session_factory, credits=CREDITS)
            await feed(client, tenant, 2)
            await configure(
                client,
                tenant,
                ai_concurrency=4,
                **{f"stage_{n}_batch_size": 4 for n in (2, 4, 5, 6)},
            )
            run_ids.append(await start(client, tenant))

        await work(capped)

        for run_id in run_ids:
            run = await load_run(session_factory, run_id)
            assert run.status == "completed", run.error_message
        assert server.max_in_flight == 2
