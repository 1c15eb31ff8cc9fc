"""The site's publisher (integration): read it, replace it. Services flush; the caller's unit of
work commits.

The secret (application password or signing key) is write-only: it is stored, used by the
publisher, and never answered, logged or put in an error. A PUT may leave it out to keep the
saved one, but only while `kind` and `endpoint_url` stay the same: a password saved for one site
is never sent to a new address.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidInput
from app.models.publishing import IntegrationKind, PublishingIntegration
from app.models.tenancy import Site
from app.outbound import OutboundClient, Policy, check_url
from app.publishing.integration_schemas import (
    WEBHOOK_SECRET_MIN_CHARS,
    IntegrationCheckOut,
    IntegrationOut,
    IntegrationUpdate,
)
from app.publishing.publishers.base import Destination, PublishError, RetryPolicy, Transport
from app.publishing.publishers.registry import publisher_for

# A check is a person waiting for an answer: one quick try.
CHECK_TIMEOUT_SECONDS = 10.0
# The fields each kind needs (besides `kind`, `is_active`); any other is refused.
NEEDS: dict[IntegrationKind, frozenset[str]] = {
    IntegrationKind.NONE: frozenset(),
    IntegrationKind.WORDPRESS: frozenset({"endpoint_url", "username", "secret"}),
    IntegrationKind.WEBHOOK: frozenset({"endpoint_url", "secret"}),
}


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
        kind=IntegrationKind(integration.kind),
        endpoint_url=integration.endpoint_url,
        username=integration.username,
        is_active=integration.is_active,
        secret_set=bool(integration.secret),
        updated_at=integration.updated_at,
    )


async def replace_integration(
    session: AsyncSession, site: Site, body: IntegrationUpdate, policy: Policy
) -> PublishingIntegration:
    """Validate `body` against its kind, check the URL (SSRF guard), and save it."""
    current = await _locked(session, site)
    endpoint_url = _normalised_url(body)
    secret = body.secret.get_secret_value() if body.secret is not None else None
    keeps_secret = (
        secret is None
        and current.secret is not None
        and current.kind == body.kind.value
        and current.endpoint_url == endpoint_url
    )
    if keeps_secret:
        secret = current.secret
    _check_fields(body, {"endpoint_url": endpoint_url, "username": body.username, "secret": secret})
    if body.kind is IntegrationKind.WEBHOOK and secret and len(secret) < WEBHOOK_SECRET_MIN_CHARS:
        raise _invalid("secret", f"must have at least {WEBHOOK_SECRET_MIN_CHARS} characters")
    if endpoint_url is not None:
        await check_url(endpoint_url, policy, "endpoint_url")
    current.kind = body.kind.value
    current.endpoint_url = endpoint_url
    current.username = body.username
    current.secret = secret
    current.is_active = body.is_active
    await session.flush()
    await session.refresh(current)
    return current


async def check_integration(
    session: AsyncSession, site: Site, settings: Settings
) -> IntegrationCheckOut:
    """Try the saved integration's connection and credentials once (no retries)."""
    found = await find_integration(session, site.id)
    kind = IntegrationKind(found.kind) if found else IntegrationKind.NONE
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


def _normalised_url(body: IntegrationUpdate) -> str | None:
    url = body.endpoint_url.strip() if body.endpoint_url is not None else None
    if url and body.kind is IntegrationKind.WORDPRESS:
        # The site's root: the REST paths are appended to it.
        url = url.rstrip("/")
    return url or None


def _check_fields(body: IntegrationUpdate, values: dict[str, Any]) -> None:
    needed = NEEDS[body.kind]
    problems = []
    for name, value in values.items():
        given = name in body.model_fields_set and getattr(body, name) is not None
        if name in needed and value is None:
            message = "is required for kind " + body.kind.value
            if name == "secret":
                message += " (again when the kind or endpoint_url changes)"
            problems.append({"field": name, "message": message})
        elif name not in needed and given:
            problems.append({"field": name, "message": f"is not used by kind {body.kind.value}"})
    if problems:
        fields = ", ".join(p["field"] for p in problems)
        raise InvalidInput(f"invalid integration: {fields}", details=problems)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field} {message}", details=[{"field": field, "message": message}])
