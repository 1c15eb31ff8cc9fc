"""The publish job: due content goes out through its site's publisher (SPEC §9, §9b).

Each pass first back-fills the sites' queues (`schedule_approved`), then works in small batches:

1. claim: due rows (`scheduled` with `scheduled_publish_at <= now`, or `publishing` with a claim
   older than `STALE_CLAIM`, whose worker died) are selected `FOR UPDATE SKIP LOCKED`, set to
   `publishing` with the claim time and one more attempt, and committed before any request, so
   two workers (or two overlapping ticks) never publish one article at once;
2. publish, a few articles concurrently, each within `ITEM_TIMEOUT_SECONDS`; one article's
   failure, whatever it is, is that article's and never stops the others;
3. record, in a new transaction fenced by the claim time (a worker that lost its claim to a
   reclaim cannot overwrite the result): published with where it lives, or failed with the
   reason, which the queue endpoint shows until `retry_publication` schedules it again.

An article whose claim went stale `MAX_ATTEMPTS` times (its worker keeps dying on it) is failed
rather than claimed forever. A site whose integration is switched off keeps its content
scheduled until it is on again; a stale claim of such a site goes back to `scheduled`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.effects import after_commit
from app.errors import InvalidTransition, NotFound, is_backend_down
from app.media import media_file
from app.metrics import PUBLICATIONS
from app.models.publishing import IntegrationKind, PublishingIntegration, PublishingSettings
from app.models.tenancy import Site
from app.models.writer import Content, ContentStatus, Image, ImageStatus, SiteStatus
from app.outbound.client import OutboundClient
from app.publishing.publishers.base import (
    Article,
    ArticleImage,
    Destination,
    Published,
    PublishError,
    RetryPolicy,
    Transport,
)
from app.publishing.publishers.registry import publisher_for
from app.publishing.service import schedule_approved
from app.queue import JobQueue
from app.writer import states

log = structlog.get_logger(__name__)

# Articles published at once by one pass, and claimed per batch.
CONCURRENCY = 4
# One article's requests, retries and backoff included; a hung site fails the article, not the pass.
ITEM_TIMEOUT_SECONDS = 150
# A pass claims no new batch after this long, so it ends well within its job timeout.
CLAIM_BUDGET_SECONDS = 60
JOB_TIMEOUT_SECONDS = CLAIM_BUDGET_SECONDS + ITEM_TIMEOUT_SECONDS + 30
# A claim this old belongs to a worker that died: arq had long cancelled a live one.
STALE_CLAIM = timedelta(seconds=3 * JOB_TIMEOUT_SECONDS)
# Claims of one publication (a retry by hand starts again from none).
MAX_ATTEMPTS = 3
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


@dataclass(frozen=True)
class Claim:
    content_id: int
    claimed_at: datetime


@dataclass(frozen=True)
class PassReport:
    scheduled: int
    published: int
    failed: int


async def publish_due(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    retry: RetryPolicy | None = None,
    claim_budget: float = CLAIM_BUDGET_SECONDS,
) -> PassReport:
    """One pass of the publish cron; returns what it did."""
    scheduled = await backfill_queues(session_factory, datetime.now(UTC))
    transport_retry = retry or RetryPolicy.of(settings)
    deadline = time.monotonic() + claim_budget
    published = failed = 0
    async with OutboundClient(settings) as client:
        transport = Transport(client, transport_retry)
        while time.monotonic() < deadline:
            claims = await claim_due(session_factory, datetime.now(UTC), limit=CONCURRENCY)
            if not claims:
                break
            # Not a TaskGroup: a fault in one article must not cancel the others mid-request
            # (a delivered article whose result is not recorded would go out twice).
            outcomes = await asyncio.gather(
                *(_publish_one(session_factory, settings, transport, claim) for claim in claims),
                return_exceptions=True,
            )
            published += outcomes.count(True)
            failed += outcomes.count(False)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    # The database went away: the pass ends, the claims go stale and are
                    # taken again later.
                    raise outcome
    if published or failed:
        log.info("publish pass", published=published, failed=failed)
    return PassReport(scheduled=scheduled, published=published, failed=failed)


async def backfill_queues(session_factory: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Give approved content of every auto-publishing site the slots that have come free."""
    waiting = (
        select(Content.id)
        .where(
            Content.site_id == Site.id,
            Content.status == ContentStatus.APPROVED,
            Content.site_status == SiteStatus.NOT_PUBLISHED,
        )
        .exists()
    )
    async with session_factory() as session:
        sites = list(
            await session.scalars(
                select(Site)
                .join(PublishingSettings, PublishingSettings.site_id == Site.id)
                .where(PublishingSettings.auto_publish_enabled.is_(True), waiting)
                .order_by(Site.id)
            )
        )
    count = 0
    for site in sites:
        async with unit_of_work(session_factory) as session:
            done = await schedule_approved(session, site, now)
        count += len(done.content_ids) if done else 0
    return count


async def claim_due(
    session_factory: async_sessionmaker[AsyncSession], now: datetime, *, limit: int
) -> list[Claim]:
    """Claim up to `limit` due articles and commit the claim."""
    switched_off = (
        select(PublishingIntegration.id)
        .where(
            PublishingIntegration.site_id == Content.site_id,
            PublishingIntegration.is_active.is_(False),
        )
        .exists()
    )
    due = or_(
        and_(
            Content.site_status == SiteStatus.SCHEDULED,
            Content.scheduled_publish_at <= now,
        ),
        and_(
            Content.site_status == SiteStatus.PUBLISHING,
            or_(
                Content.publish_claimed_at.is_(None),
                Content.publish_claimed_at < now - STALE_CLAIM,
            ),
        ),
    )
    async with unit_of_work(session_factory) as session:
        await _settle_stale_claims(session, now, switched_off)
        ids = await states.claim(
            session,
            due,
            ~switched_off,
            now=now,
            limit=limit,
            order_by=(Content.scheduled_publish_at, Content.id),
        )
    return [Claim(content_id, now) for content_id in ids]


async def _settle_stale_claims(session: AsyncSession, now: datetime, switched_off: Any) -> None:
    """Stale claims that must not simply be taken again: out of attempts (failed, with why), or
    of a site whose integration is now off (back to `scheduled`, keeping their slot)."""
    stale = and_(
        Content.site_status == SiteStatus.PUBLISHING,
        or_(
            Content.publish_claimed_at.is_(None),
            Content.publish_claimed_at < now - STALE_CLAIM,
        ),
    )
    await states.record_failed(
        session,
        stale,
        Content.publish_attempts >= MAX_ATTEMPTS,
        reason=(
            f"the publication was interrupted {MAX_ATTEMPTS} times before it finished (the "
            "worker publishing it stopped); retry it once the cause is fixed"
        ),
    )
    await states.release_claim(session, stale, switched_off)


async def _publish_one(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    transport: Transport,
    claim: Claim,
) -> bool:
    """Publish one claimed article and record the outcome; True when published."""
    kind = IntegrationKind.NONE.value
    try:
        async with asyncio.timeout(ITEM_TIMEOUT_SECONDS):
            article, kind, destination = await _load(session_factory, settings, claim)
            published = await publisher_for(kind, transport).publish(article, destination)
    except PublishError as exc:
        reason = exc.describe()
    except TimeoutError:
        reason = f"gave up after {ITEM_TIMEOUT_SECONDS} s without finishing"
    except Exception as exc:
        if is_backend_down(exc):
            raise
        # A bug met by one article (a peer's answer nobody foresaw): that article fails with a
        # pointer to the traceback, and the other articles go on.
        log.exception("publication crashed", content_id=claim.content_id, kind=kind)
        reason = "an internal error stopped the publication (logged by the service); retry it"
    else:
        await _record(session_factory, claim, published)
        PUBLICATIONS.labels(kind=kind, outcome="published").inc()
        log.info(
            "content published",
            content_id=claim.content_id,
            kind=kind,
            external_id=published.external_id,
        )
        return True
    await _record(session_factory, claim, reason)
    PUBLICATIONS.labels(kind=kind, outcome="failed").inc()
    log.warning("publication failed", content_id=claim.content_id, kind=kind, reason=reason)
    return False


async def _load(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, claim: Claim
) -> tuple[Article, str, Destination]:
    async with session_factory() as session:
        content = await session.get_one(Content, claim.content_id)
        integration = await session.scalar(
            select(PublishingIntegration).where(PublishingIntegration.site_id == content.site_id)
        )
        images = await session.scalars(
            select(Image)
            .where(Image.content_id == content.id, Image.status == ImageStatus.GENERATED)
            .order_by(Image.image_type, Image.position)
        )
        article = Article(
            content_id=content.id,
            site_id=content.site_id,
            title=content.title,
            html=content.html,
            meta_title=content.meta_title,
            meta_description=content.meta_description,
            word_count=content.word_count,
            scheduled_publish_at=content.scheduled_publish_at,
            published_at=claim.claimed_at,
            images=tuple(_article_image(settings, image) for image in images),
        )
    if integration is None:
        return article, IntegrationKind.NONE.value, Destination(endpoint_url="")
    destination = Destination(
        endpoint_url=integration.endpoint_url or "",
        username=integration.username,
        secret=integration.secret,
    )
    return article, integration.kind, destination


def _article_image(settings: Settings, image: Image) -> ArticleImage:
    url = image.url or ""
    path = media_file(settings, url)
    suffix = path.suffix if path is not None else ""
    return ArticleImage(
        image_id=image.id,
        image_type=image.image_type,
        position=image.position,
        url=settings.absolute(url),
        path=path,
        media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
    )


async def _record(
    session_factory: async_sessionmaker[AsyncSession], claim: Claim, outcome: Published | str
) -> None:
    """Record what became of a claimed article (where it lives, or why it failed), fenced by
    the claim: a worker that lost its claim to a reclaim writes nothing."""
    fence = (Content.id == claim.content_id, Content.publish_claimed_at == claim.claimed_at)
    async with unit_of_work(session_factory) as session:
        if isinstance(outcome, Published):
            kept = await states.record_published(
                session,
                *fence,
                published_at=datetime.now(UTC),
                external_id=outcome.external_id,
                external_url=outcome.external_url,
            )
        else:
            kept = await states.record_failed(session, *fence, reason=outcome)
    if not kept:
        log.warning("publication outcome dropped: claim lost", content_id=claim.content_id)


def publish_soon(session: AsyncSession, queue: JobQueue) -> None:
    """Queue a publish pass once the transaction that made an article due has committed. If
    that fails, the article is committed anyway and the cron's next pass takes it."""
    after_commit(session, queue.enqueue_publish, name="queue publish pass")


async def retry_publication(
    session: AsyncSession, account_id: int, content_id: int, now: datetime
) -> Content:
    """Put a failed publication back in the queue, due now (the next pass takes it)."""
    mine = (Content.id == content_id, Content.account_id == account_id)
    moved = await states.requeue(session, *mine, at=now)
    content = await session.scalar(
        select(Content).where(*mine).execution_options(populate_existing=True)
    )
    if content is None:
        raise NotFound(f"content {content_id} not found")
    if not moved:
        raise InvalidTransition(
            f"content {content_id} is {content.site_status}: only a failed publication is retried",
            details={"site_status": content.site_status},
        )
    return content
