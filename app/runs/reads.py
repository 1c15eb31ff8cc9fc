"""The run reads clients poll (the dashboard, monitoring scripts), in one round trip each.

The statements are built once: building a select with its comparisons costs more CPU than
PostgreSQL takes to answer it. The site's check (another account's site is a 404, as a missing
one) is in the same statement as the read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, bindparam, case, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.errors import NotFound
from app.models.automation import AutomationRun
from app.models.tenancy import Site
from app.runs.schemas import RunOut
from app.runs.states import ACTIVE

# Core, not the ORM: the columns `RunOut` shows, as a row (loading an ORM object took more CPU
# than the rest of the request).
_RUN_COLUMNS = [AutomationRun.__table__.c[name] for name in RunOut.model_fields]
_SITE_ACTIVE_RUN = (
    select(Site.id.label("found_site_id"), *_RUN_COLUMNS)
    .select_from(Site)
    .outerjoin(
        AutomationRun,
        and_(AutomationRun.site_id == Site.id, AutomationRun.status.in_(sorted(ACTIVE))),
    )
    .where(Site.id == bindparam("site_id"), Site.account_id == bindparam("account_id"))
)


async def site_active_run(
    connection: AsyncConnection, account_id: int, site_id: int
) -> Row[Any] | None:
    """The account's site's active run (the columns of `RunOut`), or None; NotFound when the
    site is not the account's."""
    params = {"site_id": site_id, "account_id": account_id}
    found = (await connection.execute(_SITE_ACTIVE_RUN, params)).first()
    if found is None:
        raise NotFound(f"site {site_id} not found")
    return found if found.run_id is not None else None


# The active run if there is one, else the latest (started last).
_SITE_RUN_TO_SHOW = (
    select(Site.id, AutomationRun)
    .select_from(Site)
    .outerjoin(AutomationRun, AutomationRun.site_id == Site.id)
    .where(Site.id == bindparam("site_id"), Site.account_id == bindparam("account_id"))
    .order_by(
        case((AutomationRun.status.in_(sorted(ACTIVE)), 0), else_=1),
        AutomationRun.started_at.desc(),
        AutomationRun.id.desc(),
    )
    .limit(1)
)


async def site_run_to_show(
    session: AsyncSession, account_id: int, site_id: int
) -> AutomationRun | None:
    """The account's site's active run, else its latest, else None; NotFound when the site is
    not the account's."""
    params = {"site_id": site_id, "account_id": account_id}
    found = (await session.execute(_SITE_RUN_TO_SHOW, params)).first()
    if found is None:
        raise NotFound(f"site {site_id} not found")
    run: AutomationRun | None = found[1]
    return run
