"""The run reads clients poll (the dashboard, monitoring scripts), in one round trip each.

The statements are built once: building a select with its comparisons costs more CPU than
PostgreSQL takes to answer it. The site's check (another account's site is a 404, as a missing
one) is in the same statement as the read.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models.automation import AutomationRun
from app.models.tenancy import Site
from app.runs.states import ACTIVE

_SITE_ACTIVE_RUN = (
    select(Site.id, AutomationRun)
    .outerjoin(
        AutomationRun,
        and_(AutomationRun.site_id == Site.id, AutomationRun.status.in_(sorted(ACTIVE))),
    )
    .where(Site.id == bindparam("site_id"), Site.account_id == bindparam("account_id"))
)


async def site_active_run(
    session: AsyncSession, account_id: int, site_id: int
) -> AutomationRun | None:
    """The account's site's active run, or None; NotFound when the site is not the account's."""
    found = (
        await session.execute(_SITE_ACTIVE_RUN, {"site_id": site_id, "account_id": account_id})
    ).first()
    if found is None:
        raise NotFound(f"site {site_id} not found")
    run: AutomationRun | None = found[1]
    return run
