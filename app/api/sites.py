"""The account's sites."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import Field

from app.api.deps import PageDep, PrincipalDep, SessionDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import id_path
from app.runs import config as configs
from app.schemas import InputModel, OutputModel, Page, page_of
from app.tenancy import service as tenancy

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], responses=ERROR_RESPONSES)

Name = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[
    str,
    Field(
        max_length=2000,
        pattern=tenancy.SITE_URL_PATTERN,
        description="The site's address, `http` or `https`; empty for none.",
    ),
]
Timezone = Annotated[str, Field(max_length=64, description="IANA time zone, e.g. Europe/Berlin.")]


class SiteIn(InputModel):
    """A new site."""

    name: Name
    url: Url = ""
    timezone: Timezone = "UTC"


class SitePatch(InputModel):
    """Fields of a site to change."""

    name: Name | None = None
    url: Url | None = None
    timezone: Timezone | None = None


class SiteOut(OutputModel):
    """A site of the account."""

    id: int
    name: str
    url: str
    timezone: str
    created_at: datetime


SiteIdPath = Annotated[int, id_path("The site's id.")]


@router.get("/", response_model=Page[SiteOut], summary="The account's sites")
async def list_sites(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page[SiteOut]:
    sites, total = await tenancy.list_sites(
        session, principal.account_id, limit=page.limit, offset=page.offset
    )
    return page_of(SiteOut, sites, total, page)


@router.post(
    "/", response_model=SiteOut, status_code=status.HTTP_201_CREATED, summary="Create a site"
)
async def create_site(body: SiteIn, principal: PrincipalDep, session: SessionDep) -> SiteOut:
    site = await tenancy.create_site(
        session, principal.account_id, name=body.name, url=body.url, timezone=body.timezone
    )
    return SiteOut.model_validate(site)


@router.get("/{site_id}/", response_model=SiteOut, summary="One site")
async def get_site(site_id: SiteIdPath, principal: PrincipalDep, session: SessionDep) -> SiteOut:
    return SiteOut.model_validate(await tenancy.get_site(session, principal.account_id, site_id))


@router.patch("/{site_id}/", response_model=SiteOut, summary="Change a site")
async def update_site(
    site_id: SiteIdPath, body: SitePatch, principal: PrincipalDep, session: SessionDep
) -> SiteOut:
    site = await tenancy.get_site(session, principal.account_id, site_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "timezone" in changes:
        tenancy.validate_timezone(changes["timezone"])
    moved = changes.get("timezone", site.timezone) != site.timezone
    for field, value in changes.items():
        setattr(site, field, value)
    await session.flush()
    if moved:
        # The scheduled wall-clock time is another instant in the new zone.
        await configs.reschedule(session, site)
    await session.refresh(site)
    return SiteOut.model_validate(site)
