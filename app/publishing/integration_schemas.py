"""Shapes of the site's publisher (integration) and of a publication, for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel, SecretStr, Strict, field_validator

from app.models.publishing import IntegrationKind
from app.schemas import OutputModel, VariantModel, null_refused, storable
from app.writer.schemas import ContentSummaryOut

WEBHOOK_SECRET_MIN_CHARS = 16

_KEEPING_IT = (
    "Leave it out to keep the saved one (only while `kind` and `endpoint_url` stay the same)."
)
Secret = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=1000,
        description="Write-only: an application password (Users → Profile → Application "
        "Passwords). " + _KEEPING_IT,
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


def _storable_secret(value: SecretStr | None) -> SecretStr | None:
    # InputModel checks plain strings only.
    if value is not None:
        storable(value.get_secret_value())
    return value


Url = Annotated[str, Field(min_length=1, max_length=2000)]
IsActive = Annotated[
    bool,
    Strict(),
    Field(description="Off: the site's due content waits in the queue instead of going out."),
]


class NoneIntegration(VariantModel):
    """`none`: articles are marked published when due (the site reads them from the API)."""

    kind: Literal["none"]
    is_active: IsActive = True


class WordPressIntegration(VariantModel):
    """`wordpress`: the site's root (e.g. https://blog.example.com), a user and its
    application password (`secret`)."""

    model_config = ConfigDict(json_schema_extra=null_refused())

    kind: Literal["wordpress"]
    endpoint_url: Url
    username: Annotated[str, Field(min_length=1, max_length=200)]
    secret: Secret | None = None
    is_active: IsActive = True

    _secret_storable = field_validator("secret")(_storable_secret)


class WebhookIntegration(VariantModel):
    """`webhook`: the URL deliveries are POSTed to and the signing key (`secret`); deliveries
    carry `X-Automation-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`."""

    model_config = ConfigDict(json_schema_extra=null_refused())

    kind: Literal["webhook"]
    endpoint_url: Url
    # The length is checked by the validator, whose message speaks of characters (pydantic's
    # says "items" for a secret); the document states it as minLength.
    secret: (
        Annotated[
            SecretStr,
            Field(max_length=1000, json_schema_extra={"minLength": WEBHOOK_SECRET_MIN_CHARS}),
        ]
        | None
    ) = Field(None, description="The signing key; write-only. " + _KEEPING_IT)
    is_active: IsActive = True

    _secret_storable = field_validator("secret")(_storable_secret)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < WEBHOOK_SECRET_MIN_CHARS:
            raise ValueError(f"must have at least {WEBHOOK_SECRET_MIN_CHARS} characters")
        return value


class IntegrationUpdate(
    RootModel[
        Annotated[
            NoneIntegration | WordPressIntegration | WebhookIntegration,
            Field(discriminator="kind"),
        ]
    ]
):
    """The whole integration, one shape per `kind`: a field the kind does not take is refused.
    URLs must be https and reach a public address."""


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
