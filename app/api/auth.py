"""Login and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import EmailStr, Field

from app.api.deps import PrincipalDep, SessionDep
from app.api.errors import ERROR_RESPONSES
from app.api.schemas import CreditAmount, InputModel, OutputModel
from app.models.tenancy import User
from app.tenancy import service as tenancy

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=ERROR_RESPONSES)


class LoginIn(InputModel):
    """Credentials of a user."""

    email: EmailStr
    password: str = Field(min_length=1, max_length=1000)


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


class MeOut(OutputModel):
    """The calling user and its account."""

    user: UserOut
    account: AccountOut


@router.post(
    "/auth/login", response_model=LoginOut, summary="Exchange email and password for a key"
)
async def login(body: LoginIn, session: SessionDep) -> LoginOut:
    key, user = await tenancy.login(session, body.email, body.password)
    return LoginOut(api_key=key, account_id=user.account_id)


@router.get("/me", response_model=MeOut, summary="The calling user and its account")
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    user = await session.get(User, principal.user_id)
    account = await tenancy.get_account(session, principal.account_id)
    return MeOut(user=UserOut.model_validate(user), account=AccountOut.model_validate(account))
