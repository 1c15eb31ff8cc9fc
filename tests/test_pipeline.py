"""A whole run through the seven stages with the local provider, on a real worker."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.billing import CreditTransaction, TransactionKind
from app.models.tenancy import Account
from app.models.writer import Content, ContentStatus, Image, ImageStatus
from tests.engine import charged, configure, feed, load_run, start, work
from tests.factories import create_tenant


class TestFullRun:
    async def test_200_keywords_end_approved_with_every_stage_result_and_exact_credits(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 200)
        await configure(
            client, tenant, stage_4_batch_size=4, stage_5_batch_size=4, stage_6_batch_size=8
        )

        run_id = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        assert run.stopped_reason == "completed"
        results = [getattr(run, f"stage_{n}_result") for n in range(1, 8)]
        assert all(r is not None and not r["partial"] for r in results), results
        assert results[0]["keywords_processed"] == 200
        assert results[0]["clusters_created"] >= 5
        assert results[1]["ideas_created"] >= 3 * results[1]["clusters_processed"]
        assert results[2]["tasks_created"] == results[1]["ideas_created"]
        assert results[3]["content_created"] == results[2]["tasks_created"]
        assert results[4]["prompts_created"] == 3 * results[3]["content_created"]
        assert results[5]["images_generated"] == results[4]["prompts_created"]
        assert results[6]["ready_for_review"] == results[3]["content_created"]
        # Auto-approval is on by default: stage 7 approves and schedules every article.
        assert results[6]["approved_count"] == results[3]["content_created"]
        assert sum(r.get("errors", 0) for r in results) == 0

        assert await charged(session_factory, run.id) == run.total_credits_used > 0
        async with session_factory() as session:
            balance = await session.scalar(
                select(Account.credits).where(Account.id == tenant.account_id)
            )
            held = await session.scalar(
                select(func.sum(CreditTransaction.amount)).where(
                    CreditTransaction.run_pk == run.id,
                    CreditTransaction.kind.in_([TransactionKind.RESERVE, TransactionKind.RELEASE]),
                )
            )
            approved = await session.scalar(
                select(func.count()).where(
                    Content.site_id == tenant.site_id, Content.status == ContentStatus.APPROVED
                )
            )
            urls = list(
                await session.scalars(
                    select(Image.url).where(
                        Image.site_id == tenant.site_id, Image.status == ImageStatus.GENERATED
                    )
                )
            )
        assert held == 0, "every hold was released"
        assert balance == Decimal(100000) - run.total_credits_used
        assert approved == results[3]["content_created"]
        assert all(url and url.startswith("/media/") for url in urls)
        url = str(urls[0])
        stored = Path(settings.media_path, url.removeprefix("/media/"))
        assert stored.is_file()  # noqa: ASYNC240 - one stat in a test
        served = await client.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert served.content.startswith(b"\x89PNG")

        metrics = (await client.get("/metrics")).text
        assert 'automation_run_transitions_total{status="completed"}' in metrics
        assert 'automation_credits_charged_total{operation="content_generation"}' in metrics
        assert 'automation_stage_duration_seconds_count{stage="6"}' in metrics
        assert 'automation_ai_call_duration_seconds_count{operation="image_generation"}' in metrics
