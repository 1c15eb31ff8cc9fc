"""The site's publisher (integration): read it, replace it. Services flush; the caller's unit of
work commits.

The secret (application password or signing key) is write-only: it is stored, used by the
publisher, and never answered, logged or put in an error. A PUT may leave it out to keep the
saved one, but only while `kind` and `endpoint_url` stay the same: a password saved for one site
is never sent to a new address.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidInput
from app.models.publishing import IntegrationKind, PublishingIntegration
from app.models.tenancy import Site
from app.outbound.client import OutboundClient, Policy, check_url
from app.publishing.integration_schemas import (
    IntegrationCheckOut,
    IntegrationOut,
    IntegrationUpdate,
    NoneIntegration,
    WebhookIntegration,
    WordPressIntegration,
)
from app.publishing.publishers.base import Destination, PublishError, RetryPolicy, Transport
from app.publishing.publishers.registry import publisher_for

# A check is a person waiting for an answer: one quick try.
CHECK_TIMEOUT_SECONDS = 10.0


async def find_integration(
    session: AsyncSession, site_id: int, *, for_update: bool = False
) -> PublishingIntegration | None:
    query = select(PublishingIntegration).where(PublishingIntegration.site_id == site_id)
    if for_update:
        query = query.with_for_update()
    found: PublishingIntegration | None = await session.scalar(
        query.execution_options(populate_existing=True)
    )
    return found


def describe(site: Site, integration: PublishingIntegration | None) -> IntegrationOut:
    """What the API shows; a site never set up publishes with `none`."""
    if integration is None:
        return IntegrationOut(
            site_id=site.id,
            kind=IntegrationKind.NONE,
            endpoint_url=None,
            username=None,
            is_active=True,
            secret_set=False,
            updated_at=None,
        )
    return IntegrationOut(
        site_id=site.id,
        kind=integration.kind,
        endpoint_url=integration.endpoint_url,
        username=integration.username,
        is_active=integration.is_active,
        secret_set=bool(integration.secret),
        updated_at=integration.updated_at,
    )


async def replace_integration(
    session: AsyncSession, site: Site, body: IntegrationUpdate, policy: Policy
) -> PublishingIntegration:
    """Check the URL (SSRF guard) and that a secret is sent or kept, and save `body` (its
    shape per kind is the schema's)."""
    current = await _locked(session, site)
    given = body.root
    endpoint_url = username = secret = None
    if not isinstance(given, NoneIntegration):
        endpoint_url = _normalised_url(given)
        secret = given.secret.get_secret_value() if given.secret is not None else None
        if secret is None and current.kind == given.kind and current.endpoint_url == endpoint_url:
            secret = current.secret
        if secret is None:
            raise _invalid(
                "secret",
                f"is required for kind {given.kind} (again when the kind or endpoint_url changes)",
            )
        await check_url(endpoint_url, policy, "endpoint_url")
    if isinstance(given, WordPressIntegration):
        username = given.username
    current.kind = IntegrationKind(given.kind)
    current.endpoint_url = endpoint_url
    current.username = username
    current.secret = secret
    current.is_active = given.is_active
    await session.flush()
    await session.refresh(current)
    return current


async def check_integration(
    session: AsyncSession, site: Site, settings: Settings
) -> IntegrationCheckOut:
    """Try the saved integration's connection and credentials once (no retries)."""
    found = await find_integration(session, site.id)
    kind = found.kind if found else IntegrationKind.NONE
    destination = Destination(
        endpoint_url=(found.endpoint_url if found else None) or "",
        username=found.username if found else None,
        secret=found.secret if found else None,
    )
    timeout = min(settings.publish_timeout_seconds, CHECK_TIMEOUT_SECONDS)
    async with OutboundClient(settings, timeout=timeout) as client:
        publisher = publisher_for(kind.value, Transport(client, RetryPolicy(attempts=1)))
        try:
            message = await publisher.check(destination)
        except PublishError as exc:
            return IntegrationCheckOut(kind=kind, ok=False, message=exc.describe())
    return IntegrationCheckOut(kind=kind, ok=True, message=message)


async def _locked(session: AsyncSession, site: Site) -> PublishingIntegration:
    """The site's row, locked; inserted first if there is none (racing PUTs end with one)."""
    found = await find_integration(session, site.id, for_update=True)
    if found is None:
        await session.execute(
            insert(PublishingIntegration)
            .values(account_id=site.account_id, site_id=site.id)
            .on_conflict_do_nothing(index_elements=[PublishingIntegration.site_id])
        )
        found = await find_integration(session, site.id, for_update=True)
    assert found is not None, "the row was inserted or already there"
    return found


def _normalised_url(given: WordPressIntegration | WebhookIntegration) -> str:
    url = given.endpoint_url.strip()
    if isinstance(given, WordPressIntegration):
        # The site's root: the REST paths are appended to it.
        url = url.rstrip("/")
    return url


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field} {message}", details=[{"field": field, "message": message}])
