"""Managing accounts after creation: users (list, password, disable, enable, role) and API
tokens (list, revoke, expiry). Each change that affects a user ends that user's browser
sessions, so it takes effect at once; at least one enabled admin always remains."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from conveyor.auth.roles import Role, parse_role
from conveyor.auth.service import (
    AccountError,
    check_password,
    create_token,
    hash_password,
    token_digest,
)
from conveyor.errors import ItemNotFoundError
from conveyor.store.models import ApiToken, User, WebSession, utcnow

DURATION = re.compile(r"(\d{1,6})([mhdw])")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_TOKEN_LIFETIME = timedelta(days=3660)
GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


class AccountNotFoundError(ItemNotFoundError):
    http_status = 404


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    disabled: bool
    must_change_password: bool
    created_at: datetime
    sessions: int


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked: bool

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: a token's lifetime."""
    match = DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise AccountError(
            f"expiry {text!r} is not a duration; write a number and a unit m, h, d or w "
            "(e.g. 30d for 30 days)"
        )
    lifetime = timedelta(**{DURATION_UNITS[match[2]]: int(match[1])})
    if not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
        raise AccountError(f"expiry must be above 0 and at most {MAX_TOKEN_LIFETIME.days} days")
    return lifetime


# -- users ----------------------------------------------------------------------------------


def list_users(session: Session) -> list[UserInfo]:
    now = utcnow()
    counts = dict(
        session.execute(
            select(WebSession.user_id, func.count())
            .where(WebSession.expires_at >= now)
            .group_by(WebSession.user_id)
        ).all()
    )
    return [
        UserInfo(
            u.name, u.role, u.disabled, u.must_change_password, u.created_at, counts.get(u.id, 0)
        )
        for u in session.scalars(select(User).order_by(User.name))
    ]


def get_user(session: Session, name: str) -> User:
    user = None if "\x00" in name else session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountNotFoundError(f"no user named {name!r}; see `conveyor users list`")
    return user


def end_user_sessions(session: Session, user: User) -> int:
    """Log the user out everywhere; returns how many sessions ended."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


def set_password(session: Session, name: str, password_hash: str, must_change: bool) -> User:
    """An admin sets ``name``'s password (hashed first with ``hash_password``, outside the
    transaction); with ``must_change`` it only serves to choose a new one at the next login."""
    user = get_user(session, name)
    user.password_hash = password_hash
    user.must_change_password = must_change
    end_user_sessions(session, user)
    return user


def check_own_change(session: Session, name: str, current: str, new: str) -> str:
    """The new password's hash, if ``current`` is right (only reads: hashing is slow)."""
    if check_password(session, name, current) is None:
        raise AccountError("the current password is wrong")
    if new == current:
        raise AccountError("the new password must differ from the current one")
    return hash_password(new)


def store_own_password(session: Session, name: str, password_hash: str) -> User:
    return set_password(session, name, password_hash, must_change=False)


def set_disabled(session: Session, name: str, disabled: bool) -> User:
    user = get_user(session, name)
    if disabled and user.role == Role.ADMIN and not user.disabled:
        _keep_an_admin(session, user, "disable")
    user.disabled = disabled
    end_user_sessions(session, user)
    return user


def set_role(session: Session, name: str, role: str) -> User:
    user = get_user(session, name)
    try:
        new_role = parse_role(role).value
    except ValueError as error:
        raise AccountError(str(error)) from None
    if user.role == Role.ADMIN and new_role != Role.ADMIN and not user.disabled:
        _keep_an_admin(session, user, "take the admin role from")
    user.role = new_role
    end_user_sessions(session, user)
    return user


def _keep_an_admin(session: Session, user: User, action: str) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.disabled.is_(False), User.id != user.id)
    )
    if not others:
        raise AccountError(
            f"cannot {action} {user.name!r}: they are the last enabled admin; make another "
            "user admin first"
        )


# -- tokens ---------------------------------------------------------------------------------


def _token_info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.name,
        row.role,
        row.created_at,
        row.last_used_at,
        row.expires_at,
        row.revoked,
    )


def new_token(
    session: Session, name: str, role: str, expires_in: str | None = None
) -> tuple[str, TokenInfo]:
    """(the token, shown once; its description), expiring after ``expires_in`` if given."""
    expires_at = utcnow() + parse_duration(expires_in) if expires_in else None
    token = create_token(session, name, role, expires_at)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    assert row is not None
    return token, _token_info(row)


def list_tokens(session: Session, include_revoked: bool = False) -> list[TokenInfo]:
    query = select(ApiToken).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked.is_(False))
    return [_token_info(row) for row in session.scalars(query)]


def find_token_by_reference(session: Session, reference: str) -> ApiToken:
    """A token by its id, or by its name when only one token (not revoked) has it."""
    if reference.isdigit() and len(reference) < 10:
        row = session.get(ApiToken, int(reference))
        if row is not None:
            return row
        raise AccountNotFoundError(f"no API token with id {reference}; see `conveyor tokens list`")
    rows = session.scalars(
        select(ApiToken).where(ApiToken.name == reference, ApiToken.revoked.is_(False))
    ).all()
    if len(rows) != 1:
        found = "no" if not rows else f"{len(rows)}"
        raise AccountNotFoundError(
            f"{found} active API tokens are named {reference!r}; give the token's id "
            "(`conveyor tokens list`)"
        )
    return rows[0]


def revoke_token(session: Session, token_id: int) -> TokenInfo:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise AccountNotFoundError(f"no API token with id {token_id}; see GET /api/v1/tokens")
    row.revoked = True
    return _token_info(row)
