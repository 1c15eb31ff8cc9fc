"""Automation config and the credit estimate of a run (SPEC §6)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep, SettingsDep, SiteDep
from app.api.errors import ERROR_RESPONSES
from app.credits import estimate as estimates
from app.credits.schemas import Estimate
from app.outbound.client import Policy
from app.runs import config as configs
from app.runs.config_schemas import ConfigOut, ConfigUpdate

router = APIRouter(prefix="/api/v1/automation", tags=["automation"], responses=ERROR_RESPONSES)


@router.get("/config/", response_model=ConfigOut, summary="A site's automation config")
async def get_config(site: SiteDep, session: SessionDep) -> ConfigOut:
    """Created with the defaults on first read."""
    return ConfigOut.model_validate(await configs.get_or_create_config(session, site))


@router.put(
    "/update_config/",
    response_model=ConfigOut,
    summary="Change a site's automation config",
    description="Partial update: fields left out keep their values. A change to the schedule "
    "(enabled, frequency, scheduled_time, weekly_day, monthly_day) recomputes `next_run_at` in "
    "the site's time zone. A bad value or an unknown field is a 400 naming it, and changes "
    "nothing. `notification_url` must be https and reach a public address (400 `invalid_url`), "
    "and needs a `notification_secret` (16-200 characters; write-only, the answer only says "
    "`notification_secret_set`); null or an empty string clears both. As the reference took "
    "it: the body `config/` answers can be sent back as it is (its read-only fields are "
    "ignored), numbers may come as text of digits, `scheduled_time` as `HH:MM` or `HH:MM:00`.",
)
async def update_config(
    body: ConfigUpdate, site: SiteDep, session: SessionDep, settings: SettingsDep
) -> ConfigOut:
    config = await configs.update_config(session, site, body, Policy.of(settings))
    return ConfigOut.model_validate(config)


@router.get(
    "/estimate/",
    response_model=Estimate,
    summary="Credits a run would need now",
    description="What a run started now would cost with the site's config, stage by stage, and "
    "whether the balance covers it with the 20% buffer `run_now` requires.",
)
async def get_estimate(site: SiteDep, session: SessionDep) -> Estimate:
    config = await configs.get_or_create_config(session, site)
    return await estimates.estimate(session, site, config)
