"""Shapes of the site's publisher (integration) and of a publication, for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, SecretStr, field_validator

from app.api.schemas import InputModel, OutputModel
from app.models.publishing import IntegrationKind
from app.writer.schemas import ContentSummaryOut

WEBHOOK_SECRET_MIN_CHARS = 16

Secret = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=1000,
        description="Write-only. `wordpress`: an application password (Users → Profile → "
        f"Application Passwords); `webhook`: the signing key, at least "
        f"{WEBHOOK_SECRET_MIN_CHARS} characters. Leave it out to keep the saved one (only "
        "while `kind` and `endpoint_url` stay the same).",
    ),
]


class IntegrationOut(OutputModel):
    """The site's publisher. The secret is never shown; `secret_set` says whether one is saved."""

    site_id: int
    kind: IntegrationKind
    endpoint_url: str | None = Field(
        description="`wordpress`: the site's root; `webhook`: the URL deliveries are POSTed to."
    )
    username: str | None = Field(description="`wordpress`: the user the password belongs to.")
    is_active: bool = Field(
        description="Off: the site's due content waits in the queue instead of going out."
    )
    secret_set: bool
    updated_at: datetime | None


class IntegrationUpdate(InputModel):
    """The whole integration: fields a kind does not use must be left out.

    `none`: articles are marked published when due (the site reads them from the API).
    `wordpress`: `endpoint_url` (the site's root, e.g. https://blog.example.com), `username` and
    `secret` (an application password). `webhook`: `endpoint_url` and `secret` (the signing key;
    deliveries carry `X-Automation-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`).
    URLs must be https and reach a public address.
    """

    kind: IntegrationKind
    endpoint_url: str | None = Field(None, min_length=1, max_length=2000)
    username: str | None = Field(None, min_length=1, max_length=200)
    secret: Secret | None = None
    is_active: bool = True

    @field_validator("secret")
    @classmethod
    def _secret_has_no_nul(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "\x00" in value.get_secret_value():
            raise ValueError("must not contain NUL characters")
        return value


class IntegrationCheckOut(OutputModel):
    """What a connection check found: `ok`, and what worked or why it failed."""

    kind: IntegrationKind
    ok: bool
    message: str = Field(
        description="e.g. `signed in to WordPress as Editor`, or the failure: the status code "
        "and a short excerpt of the answer."
    )


class PublicationOut(ContentSummaryOut):
    """An article's publication: where it stands, tries so far, and the last failure's reason."""

    publish_attempts: int
