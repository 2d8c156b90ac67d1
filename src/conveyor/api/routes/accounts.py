"""/api/v1/users and /api/v1/tokens: accounts after creation (admins only). Changing your own
password is ``POST /api/v1/auth/password``. Every change to a user ends that user's sessions;
a revoked token stops working at once in this process (within seconds in serving replicas)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from conveyor.api.errors import error_responses
from conveyor.api.security import admin
from conveyor.api.timestamps import UtcDatetime
from conveyor.auth import accounts
from conveyor.auth.roles import Role
from conveyor.auth.service import add_user, hash_password
from conveyor.serving.tokens import TokenCache

users_router = APIRouter(prefix="/users", tags=["accounts"], dependencies=[admin])
tokens_router = APIRouter(prefix="/tokens", tags=["accounts"], dependencies=[admin])
UserName = Annotated[str, PathParam(min_length=1, max_length=100, description="User name")]
TokenId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Token id")]
NOT_FOUND = error_responses(404)


class UserOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    must_change_password: bool
    created_at: UtcDatetime
    sessions: int = Field(description="browser sessions open now")


class UserList(BaseModel):
    users: list[UserOut]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.VIEWER
    password: str | None = Field(
        None, max_length=1000, description="omit to have one generated (shown once)"
    )


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        None, max_length=1000, description="omit to have one generated (shown once)"
    )
    must_change: bool = Field(True, description="the user must choose a new one at login")


class PasswordSet(BaseModel):
    user: UserOut
    password: str | None = Field(description="the generated password, shown only now")


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    state: str = Field(description="active, expired or revoked")
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    expires_at: UtcDatetime | None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.OPERATOR
    expires_in: str | None = Field(None, max_length=20, description="e.g. 30d, 12h, 2w")


class TokenCreated(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'; shown only now")
    info: TokenOut


def _sessions(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.installation.sessions


def _user_out(session: Session, name: str) -> UserOut:
    info = next((u for u in accounts.list_users(session) if u.name == name), None)
    if info is None:  # PATCH with an empty body never looked the user up
        raise accounts.AccountNotFoundError(f"no user named {name!r}; see GET /api/v1/users")
    return UserOut(**vars(info))


def _token_out(info: accounts.TokenInfo) -> TokenOut:
    fields = {k: v for k, v in vars(info).items() if k != "revoked"}
    return TokenOut(**fields, state=info.state)


# -- users ----------------------------------------------------------------------------------


@users_router.get("", response_model=UserList)
def list_users(request: Request) -> UserList:
    with _sessions(request)() as session:
        return UserList(users=[UserOut(**vars(u)) for u in accounts.list_users(session)])


@users_router.post("", response_model=PasswordSet, status_code=201)
def create_user(request: Request, body: NewUser) -> PasswordSet:
    """Add a user; without a password one is generated, to be changed at the first login."""
    password = body.password or accounts.generate_password()
    with _sessions(request).begin() as session:
        add_user(session, body.name, password, body.role, must_change_password=not body.password)
        user = _user_out(session, body.name.strip())
    return PasswordSet(user=user, password=None if body.password else password)


@users_router.patch("/{name}", response_model=UserOut, responses=NOT_FOUND)
def change_user(request: Request, name: UserName, body: UserChange) -> UserOut:
    """Change the role and/or disable or enable; ends the user's sessions. The last enabled
    admin cannot be disabled or demoted (422)."""
    with _sessions(request).begin() as session:
        if body.role is not None:
            accounts.set_role(session, name, body.role)
        if body.disabled is not None:
            accounts.set_disabled(session, name, body.disabled)
        return _user_out(session, name)


@users_router.post("/{name}/password", response_model=PasswordSet, responses=NOT_FOUND)
def reset_password(request: Request, name: UserName, body: PasswordReset) -> PasswordSet:
    """Set a user's password (generated when omitted); ends the user's sessions."""
    password = body.password or accounts.generate_password()
    password_hash = hash_password(password)  # slow: before the write transaction
    with _sessions(request).begin() as session:
        accounts.set_password(session, name, password_hash, body.must_change)
        user = _user_out(session, name)
    return PasswordSet(user=user, password=None if body.password else password)


@users_router.post("/{name}/logout", response_model=UserOut, responses=NOT_FOUND)
def end_sessions(request: Request, name: UserName) -> UserOut:
    """End all of a user's browser sessions (e.g. a lost laptop)."""
    with _sessions(request).begin() as session:
        accounts.end_user_sessions(session, accounts.get_user(session, name))
        return _user_out(session, name)


# -- tokens ---------------------------------------------------------------------------------


@tokens_router.get("", response_model=TokenList)
def list_tokens(request: Request, revoked: bool = False) -> TokenList:
    """Active and expired tokens; ``?revoked=true`` lists revoked ones too."""
    with _sessions(request)() as session:
        return TokenList(tokens=[_token_out(t) for t in accounts.list_tokens(session, revoked)])


@tokens_router.post("", response_model=TokenCreated, status_code=201)
def create(request: Request, body: NewToken) -> TokenCreated:
    """Create a token, optionally expiring after ``expires_in``; the token is shown once."""
    with _sessions(request).begin() as session:
        token, info = accounts.new_token(session, body.name, body.role, body.expires_in)
    return TokenCreated(token=token, info=_token_out(info))


@tokens_router.post("/{token_id}/revoke", response_model=TokenOut, responses=NOT_FOUND)
def revoke(request: Request, token_id: TokenId) -> TokenOut:
    """Revoke a token: refused from now on (serving replicas: within their cache's seconds)."""
    with _sessions(request).begin() as session:
        info = accounts.revoke_token(session, token_id)
    request.app.state.serving_tokens = TokenCache()  # forget verified tokens in this process
    return _token_out(info)
