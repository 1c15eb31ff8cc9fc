"""A site's automation config: created on first read, changed field by field, rescheduled when its
schedule changes. Services flush; the caller's unit of work commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.models.automation import AutomationConfig
from app.models.tenancy import Site
from app.outbound.client import Policy, check_url
from app.runs.config_schemas import MIN_SECRET_LENGTH, ConfigUpdate
from app.runs.next_due import next_run_at

# The fields `next_run_at` depends on (besides the site's time zone).
SCHEDULE_FIELDS = frozenset({"enabled", "frequency", "scheduled_time", "weekly_day", "monthly_day"})


async def get_or_create_config(
    session: AsyncSession, site: Site, *, for_update: bool = False
) -> AutomationConfig:
    """The site's config, inserted with the defaults if it has none yet (`site_config`)."""
    return await site_config(session, site.id, site.account_id, for_update=for_update)


async def site_config(
    session: AsyncSession, site_id: int, account_id: int, *, for_update: bool = False
) -> AutomationConfig:
    """The config of the site `site_id` (of the account `account_id`), inserted with the
    defaults if it has none yet; for a caller that has the ids and not the site (a run's slice).

    Read first, so the common case writes nothing (an INSERT that conflicts still uses up a
    sequence number). Creation is INSERT ... ON CONFLICT DO NOTHING RETURNING the row, and the
    read again only where it returned none: two first reads racing both end with the one row
    instead of one failing on the unique site_id. A new config is disabled, so its
    `next_run_at` stays null. `for_update` locks the row for a read-modify-write (a row this
    transaction inserted is its own until it commits).
    """
    query = select(AutomationConfig).where(AutomationConfig.site_id == site_id)
    if for_update:
        query = query.with_for_update()
    query = query.execution_options(populate_existing=True)
    config = await session.scalar(query)
    if config is None:
        config = await session.scalar(
            insert(AutomationConfig)
            .values(account_id=account_id, site_id=site_id)
            .on_conflict_do_nothing(index_elements=[AutomationConfig.site_id])
            .returning(AutomationConfig)
        )
    if config is None:
        config = await session.scalar(query)
    assert config is not None, "the row was inserted or already there"
    return config


async def update_config(
    session: AsyncSession, site: Site, changes: ConfigUpdate, policy: Policy
) -> AutomationConfig:
    """Apply the fields sent; recompute `next_run_at` when the schedule really changed.

    Re-sending the same schedule keeps `next_run_at`, so saving the config dialog does not push
    back a run that is due (or overdue while a worker was down). A notification URL must pass
    the outbound check (`policy`) and have a secret, sent now or before: a notification nobody
    can verify is worse than none, and a generated secret could never be read back. Clearing the
    URL forgets the secret too.
    """
    values = changes.changes()
    url = values.get("notification_url")
    if url is not None:
        # Before the row is locked: the check resolves the host name.
        await check_url(url, policy, "notification_url")
    config = await get_or_create_config(session, site, for_update=True)
    if url is not None and not (values.get("notification_secret") or config.notification_secret):
        message = f"required with notification_url, at least {MIN_SECRET_LENGTH} characters"
        raise InvalidInput(
            f"notification_secret: {message}",
            details=[{"field": "notification_secret", "message": message}],
        )
    if "notification_url" in values and url is None:
        values.setdefault("notification_secret", None)
    rescheduled = any(
        getattr(config, field) != value
        for field, value in values.items()
        if field in SCHEDULE_FIELDS
    )
    for field, value in values.items():
        setattr(config, field, value)
    if rescheduled or (config.enabled and config.next_run_at is None):
        config.next_run_at = next_run_at(config, site.timezone, datetime.now(UTC))
    await session.flush()
    await session.refresh(config)
    return config


async def reschedule(session: AsyncSession, site: Site) -> None:
    """Recompute the site's `next_run_at` after a change of its time zone: the same wall-clock
    time is another instant now."""
    config = await session.scalar(
        select(AutomationConfig).where(AutomationConfig.site_id == site.id).with_for_update()
    )
    if config is not None and config.enabled:
        config.next_run_at = next_run_at(config, site.timezone, datetime.now(UTC))
        await session.flush()
