"""The site's publisher (integration, secrets write-only) and retrying a failed publication
(SPEC §6b, §9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter

from app.api.deps import PrincipalDep, QueueDep, SessionDep, SettingsDep, SiteDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import id_path
from app.outbound.client import Policy
from app.publishing import integration as integrations
from app.publishing.integration_schemas import (
    IntegrationCheckOut,
    IntegrationOut,
    IntegrationUpdate,
    PublicationOut,
)
from app.publishing.publish import publish_soon, retry_publication

router = APIRouter(prefix="/api/v1/publishing", tags=["publishing"], responses=ERROR_RESPONSES)

ContentIdPath = Annotated[int, id_path("The article's id.")]


@router.get("/integration/", response_model=IntegrationOut, summary="A site's publisher")
async def get_integration(site: SiteDep, session: SessionDep) -> IntegrationOut:
    """`kind` none until one is saved. The secret is never shown: `secret_set` tells whether
    one is saved."""
    return integrations.describe(site, await integrations.find_integration(session, site.id))


@router.put(
    "/integration/",
    response_model=IntegrationOut,
    summary="Set a site's publisher",
    description="Replaces the integration. `wordpress` needs endpoint_url (the site's root), "
    "username and secret (an application password); `webhook` needs endpoint_url and secret "
    "(the signing key, 16+ characters); `none` takes neither. The secret may be left out to keep "
    "the saved one while kind and endpoint_url stay the same. A URL that is not https or does not "
    "reach a public address is a 400 `invalid_url`; a missing or extra field a 400 naming it.",
)
async def put_integration(
    body: IntegrationUpdate, site: SiteDep, session: SessionDep, settings: SettingsDep
) -> IntegrationOut:
    saved = await integrations.replace_integration(session, site, body, Policy.of(settings))
    return integrations.describe(site, saved)


@router.post(
    "/integration/test/",
    response_model=IntegrationCheckOut,
    summary="Check a site's publisher",
    description="Tries the saved integration once: `wordpress` signs in (`GET "
    '/wp-json/wp/v2/users/me`), `webhook` gets a signed `{"event": "ping"}` with a '
    "delivery id of its own. Answers `ok` and what worked or why not (status code and a short "
    "excerpt of the answer); nothing is published.",
)
async def check_integration(
    site: SiteDep, session: SessionDep, settings: SettingsDep
) -> IntegrationCheckOut:
    return await integrations.check_integration(session, site, settings)


@router.post(
    "/content/{content_id}/retry/",
    response_model=PublicationOut,
    summary="Retry a failed publication",
    description="Puts a `failed` article back in the queue, due now, and queues a publish "
    "pass that sends it again at once (the cron's pass every minute takes it otherwise). Any "
    "other article is a 400 `invalid_transition`.",
)
async def retry_content(
    content_id: ContentIdPath, principal: PrincipalDep, session: SessionDep, queue: QueueDep
) -> PublicationOut:
    content = await retry_publication(session, principal.account_id, content_id, datetime.now(UTC))
    publish_soon(session, queue)
    return PublicationOut.model_validate(content)
