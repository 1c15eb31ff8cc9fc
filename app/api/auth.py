"""Login, the caller's identity, and the caller's API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import KeyCacheDep, PageDep, PrincipalDep, SessionDep, SettingsDep
from app.api.errors import ERROR_RESPONSES, ErrorBody
from app.api.params import id_path
from app.effects import after_commit
from app.schemas import CreditAmount, InputModel, OutputModel, Page
from app.tenancy import security, throttle
from app.tenancy import service as tenancy
from app.tenancy.key_cache import KeyCache

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=ERROR_RESPONSES)


class LoginIn(InputModel):
    """Credentials of a user. Any text is taken as the email: one that is no user's (malformed
    ones included) is a wrong login, 401, like a wrong password."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1000)

    @field_validator("email")
    @classmethod
    def _normalised(cls, value: str) -> str:
        # As accounts store it, so that the login and its throttling see one email.
        return value.strip().lower()


class LoginOut(OutputModel):
    """A new API key for the user, and the user's account."""

    api_key: str = Field(description="Send as `Authorization: Bearer <api_key>`.")
    account_id: int


class AccountOut(OutputModel):
    """An account and its credit balance."""

    id: int
    name: str
    credits: CreditAmount


class UserOut(OutputModel):
    """A user."""

    id: int
    email: str


class AIProviderOut(OutputModel):
    """The AI provider the service's workers call (`AI_PROVIDER`)."""

    name: str = Field(description="`local` (built in, no network) or `openai`.")
    text_model: str | None = Field(description="The chat model; null for `local`.")
    image_model: str | None = Field(description="The image model; null for `local`.")


class MeOut(OutputModel):
    """The calling user, its account, and the AI provider the service uses."""

    user: UserOut
    account: AccountOut
    ai_provider: AIProviderOut


class ApiKeyIn(InputModel):
    """A new API key."""

    name: str = Field(min_length=1, max_length=200, description="What the key is for.")


class ApiKeyOut(OutputModel):
    """One of the user's API keys. Only its prefix is kept; the key itself is shown once."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Updated about once a minute.")
    revoked_at: datetime | None
    current: bool = Field(False, description="The key of this request.")


class NewApiKeyOut(ApiKeyOut):
    """A new API key: `api_key` is shown this once."""

    api_key: str


KeyIdPath = Annotated[int, id_path("The API key's id.")]


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        429: {"model": ErrorBody, "description": "Too many failed logins for the email or address"},
        503: {"model": ErrorBody, "description": "Too many logins at once; retry shortly"},
    },
    summary="Exchange email and password for a key",
)
async def login(body: LoginIn, request: Request, session: SessionDep) -> LoginOut:
    attempt = throttle.login_attempt(body.email, request.client.host if request.client else None)
    # In line before counting: a login refused for a full line is not an attempt.
    async with security.password_checks.admission():
        await throttle.count_attempt(request.app.state.session_factory, attempt)
        key, user = await tenancy.login(session, body.email, body.password)
    await throttle.note_login_succeeded(session, attempt)
    return LoginOut(api_key=key, account_id=user.account_id)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke the key of this request",
)
async def logout(principal: PrincipalDep, session: SessionDep, cache: KeyCacheDep) -> None:
    await tenancy.revoke_api_key(session, principal, principal.api_key_id)
    _forget_once_committed(session, cache, principal.api_key_id)


@router.get("/me", response_model=MeOut, summary="The calling user and its account")
async def me(principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> MeOut:
    user = await tenancy.get_user(session, principal)
    account = await tenancy.get_account(session, principal.account_id)
    remote = settings.ai_provider != "local"
    provider = AIProviderOut(
        name=settings.ai_provider,
        text_model=settings.ai_text_model if remote else None,
        image_model=settings.ai_image_model if remote else None,
    )
    return MeOut(
        user=UserOut.model_validate(user),
        account=AccountOut.model_validate(account),
        ai_provider=provider,
    )


@router.get("/auth/keys/", response_model=Page[ApiKeyOut], summary="The caller's API keys")
async def list_keys(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page[ApiKeyOut]:
    rows, total = await tenancy.list_api_keys(
        session, principal, limit=page.limit, offset=page.offset
    )
    items = [
        ApiKeyOut.model_validate(r).model_copy(update={"current": r.id == principal.api_key_id})
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/auth/keys/",
    response_model=NewApiKeyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (shown once)",
)
async def create_key(body: ApiKeyIn, principal: PrincipalDep, session: SessionDep) -> NewApiKeyOut:
    user = await tenancy.get_user(session, principal)
    key, row = await tenancy.issue_api_key(session, user, body.name)
    return NewApiKeyOut(**ApiKeyOut.model_validate(row).model_dump(), api_key=key)


@router.delete(
    "/auth/keys/{key_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke an API key",
)
async def revoke_key(
    key_id: KeyIdPath, principal: PrincipalDep, session: SessionDep, cache: KeyCacheDep
) -> None:
    await tenancy.revoke_api_key(session, principal, key_id)
    _forget_once_committed(session, cache, key_id)


def _forget_once_committed(session: AsyncSession, cache: KeyCache, key_id: int) -> None:
    """This process refuses the revoked key from the commit on; the others within
    `VERIFIED_SECONDS` (`app.tenancy.key_cache`). Not before the commit: a request verifying
    the key meanwhile would remember it as valid."""

    async def forget() -> None:
        cache.forget_key_id(key_id)

    after_commit(session, forget, name="forget revoked key")
