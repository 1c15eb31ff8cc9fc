"""Planner endpoints: keywords (JSON and CSV), clusters, ideas."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from app.api.deps import (
    PageDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    SiteDep,
    SiteIdQuery,
)
from app.api.errors import ERROR_RESPONSES, ErrorBody
from app.api.params import id_path, id_query
from app.errors import PayloadTooLarge
from app.models.planner import ClusterStatus, IdeaStatus, KeywordStatus
from app.planner import service
from app.planner.csv_import import read_csv
from app.planner.schemas import (
    ClusterOut,
    IdeaOut,
    ImportResult,
    KeywordOut,
    KeywordPatch,
    KeywordsIn,
)
from app.schemas import Page, Text, page_of
from app.tenancy import service as tenancy

router = APIRouter(prefix="/api/v1/planner", tags=["planner"], responses=ERROR_RESPONSES)

READ_CHUNK = 64 * 1024


@router.post("/keywords/", response_model=ImportResult, summary="Add keywords")
async def add_keywords(body: KeywordsIn, site: SiteDep, session: SessionDep) -> ImportResult:
    entries = [(i, k) for i, k in enumerate(body.keywords, start=1)]
    return await service.add_keywords(session, site, entries)


@router.post(
    "/keywords/import/",
    response_model=ImportResult,
    responses={413: {"model": ErrorBody, "description": "File over the size limit"}},
    summary="Import keywords from a CSV file",
    description="Multipart field `file`: UTF-8 CSV with a header row "
    "`keyword[,volume,difficulty,intent]` (other columns are ignored). Blank rows are skipped, "
    "duplicates counted, rows in error reported with their row number (the header is row 1). "
    "A file that is not UTF-8 CSV or has no `keyword` column imports nothing.",
)
async def import_keywords(
    file: Annotated[UploadFile, File(description="The CSV file.")],
    site: SiteDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ImportResult:
    limit = settings.max_upload_bytes
    data = bytearray()
    while chunk := await file.read(READ_CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise PayloadTooLarge(
                f"the file is larger than {limit // (1024 * 1024)} MB",
                details={"limit_bytes": limit},
            )
    # Parsing a large file takes seconds of CPU: in a thread, so other requests go on meanwhile.
    rows = await asyncio.to_thread(lambda: service.from_csv_rows(read_csv(bytes(data))))
    return await service.add_keywords(session, site, rows)


@router.get("/keywords/", response_model=Page[KeywordOut], summary="List a site's keywords")
async def list_keywords(
    request: Request,
    principal: PrincipalDep,
    page: PageDep,
    *,
    status: KeywordStatus | None = None,
    cluster_id: Annotated[int | None, id_query("Only this cluster's items.")] = None,
    disabled: bool | None = None,
    search: Annotated[
        Text | None, Query(max_length=200, description="Part of the keyword.")
    ] = None,
    # After the filters, as the OpenAPI document had it when the site came from a dependency.
    site_id: SiteIdQuery,
) -> Page[KeywordOut]:
    # The read session opened here, not by a dependency: one that yields costs FastAPI an exit
    # stack entry and a cancel scope, a tenth of this list's CPU.
    async with request.app.state.read_session_factory() as session:
        site = await tenancy.get_site(session, principal.account_id, site_id)
        rows, total = await service.list_keywords(
            session,
            site,
            limit=page.limit,
            offset=page.offset,
            status=status,
            cluster_id=cluster_id,
            disabled=disabled,
            search=search,
        )
    return page_of(KeywordOut, rows, total, page)


# `:int`: only digits match, so `PATCH /keywords/import/` meets the import route and is a 405
# (POST only) instead of this route refusing "import" as an id.
@router.patch("/keywords/{keyword_id:int}/", response_model=KeywordOut, summary="Disable a keyword")
async def update_keyword(
    keyword_id: Annotated[int, id_path("The keyword's id.")],
    body: KeywordPatch,
    principal: PrincipalDep,
    session: SessionDep,
) -> KeywordOut:
    keyword = await service.set_disabled(session, principal.account_id, keyword_id, body.disabled)
    return KeywordOut.model_validate(keyword)


@router.get("/clusters/", response_model=Page[ClusterOut], summary="List a site's clusters")
async def list_clusters(
    site: SiteDep, session: SessionDep, page: PageDep, status: ClusterStatus | None = None
) -> Page[ClusterOut]:
    rows, total = await service.list_clusters(
        session, site, limit=page.limit, offset=page.offset, status=status
    )
    return page_of(ClusterOut, rows, total, page)


@router.get("/ideas/", response_model=Page[IdeaOut], summary="List a site's content ideas")
async def list_ideas(
    site: SiteDep,
    session: SessionDep,
    page: PageDep,
    status: IdeaStatus | None = None,
    cluster_id: Annotated[int | None, id_query("Only this cluster's items.")] = None,
) -> Page[IdeaOut]:
    rows, total = await service.list_ideas(
        session, site, limit=page.limit, offset=page.offset, status=status, cluster_id=cluster_id
    )
    return page_of(IdeaOut, rows, total, page)
