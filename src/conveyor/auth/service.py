"""Accounts: users with argon2 password hashes, API tokens and browser sessions stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from conveyor.auth.roles import Role, parse_role
from conveyor.errors import ConveyorError
from conveyor.store.models import ApiToken, User, WebSession, utcnow

SESSION_LIFETIME = timedelta(hours=12)
LAST_USED_RESOLUTION = timedelta(minutes=1)  # a token's last use is written at most this often
TOKEN_PREFIX = "cvy_"
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MAX_NAME_LENGTH = 100


class AuthError(ConveyorError):
    code = "unauthenticated"
    http_status = 401


class AccountError(ConveyorError):
    code = "invalid_account"
    http_status = 422


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by session or password) or an API token."""

    name: str
    role: Role
    kind: str  # "user", "token" or "anonymous"
    csrf_token: str | None = None
    must_change_password: bool = False  # a user with a temporary password (auth/accounts.py)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


token_digest = _digest  # how tokens and session ids are stored


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"{what} must be 1 to {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise AccountError(f"{what} must not contain control characters")
    return name


def add_user(
    session: Session, name: str, password: str, role: str, must_change_password: bool = False
) -> User:
    """A new user; ``must_change_password`` makes the password good only for changing it."""
    name = _check_name(name, "user name")
    password_hash = hash_password(password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AccountError(f"user {name!r} already exists")
    user = User(
        name=name,
        password_hash=password_hash,
        role=parse_role(role).value,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    return user


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def check_password(session: Session, name: str, password: str) -> User | None:
    # No stored name holds a NUL, and PostgreSQL would refuse to compare one.
    user = None if "\x00" in name else session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def create_token(session: Session, name: str, role: str, expires_at: datetime | None = None) -> str:
    """Returns the token once; only its hash is stored. It stops working at ``expires_at``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    register_token(session, name, role, token, expires_at)
    return token


def register_token(
    session: Session, name: str, role: str, token: str, expires_at: datetime | None = None
) -> bool:
    """Accept ``token``, made elsewhere (a deployment's secrets file), under ``name``.

    Idempotent: False when that token is registered already (revoked ones stay revoked).
    """
    name = _check_name(name, "token name")
    if len(token) < 24:
        raise AccountError(
            "a token must be at least 24 characters; `conveyor deploy secrets` makes one"
        )
    if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == _digest(token))):
        return False
    role_value = parse_role(role).value
    session.add(
        ApiToken(name=name, token_hash=_digest(token), role=role_value, expires_at=expires_at)
    )
    session.flush()
    return True


def find_token(session: Session, token: str) -> ApiToken | None:
    """The valid API token ``token``, or None. Only reads: a guessed token takes no lock."""
    return session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _digest(token),
            ApiToken.revoked.is_(False),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()),
        )
    )


def principal_for_token(session: Session, token: str) -> Principal | None:
    row = find_token(session, token)
    return None if row is None else Principal(row.name, Role(row.role), "token")


def token_use_due(row: ApiToken) -> bool:
    """Whether the token's last use is worth writing (at most once per resolution)."""
    return row.last_used_at is None or row.last_used_at < utcnow() - LAST_USED_RESOLUTION


def note_token_use(session: Session, token_id: int) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))


def start_session(session: Session, user: User) -> tuple[str, str]:
    """A new browser session: returns (cookie value, CSRF token)."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            id_hash=_digest(session_id),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return session_id, csrf


def principal_for_session(session: Session, session_id: str) -> Principal | None:
    row = session.get(WebSession, _digest(session_id))
    if row is None or row.expires_at < utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return Principal(user.name, Role(user.role), "user", row.csrf_token, user.must_change_password)


def end_session(session: Session, session_id: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == _digest(session_id)))
