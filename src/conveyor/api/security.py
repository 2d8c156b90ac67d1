"""Who is calling, and may they: bearer tokens, session cookies with CSRF, roles."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, Request

from conveyor.api.errors import ApiError
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import (
    Principal,
    find_token,
    note_token_use,
    principal_for_session,
    token_use_due,
)
from conveyor.installation import Installation

SESSION_COOKIE = "conveyor_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN, "anonymous")


PASSWORD_CHANGE_REQUIRED = "password_change_required"


def current_principal(request: Request) -> Principal:
    """The caller, refused (403) while their password is a temporary one to be changed."""
    principal = authenticate(request)
    if principal.must_change_password:
        raise ApiError(
            403,
            PASSWORD_CHANGE_REQUIRED,
            "your password was set by an admin (or at first start) and must be changed "
            "before anything else: POST /api/v1/auth/password, or the page /account/password",
        )
    return principal


def authenticate(request: Request) -> Principal:
    """The caller (token, or session with its CSRF check), even with a password to change."""
    state = request.app.state
    if not state.auth_required:
        return ANONYMOUS_ADMIN
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <token>'")
        principal = _token_principal(state.installation, token.strip())
        if principal is None:
            raise ApiError(401, "unauthenticated", "the API token is unknown or revoked")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with state.installation.read_sessions() as session:
            principal = principal_for_session(session, cookie)
        if principal is not None:
            _check_csrf(request, principal)
            return principal
    raise ApiError(
        401,
        "unauthenticated",
        "log in (POST /api/v1/auth/login) or send 'Authorization: Bearer <token>'",
    )


def _token_principal(installation: Installation, token: str) -> Principal | None:
    """Reads in a read-only session; writes (the last use) only for a known token, and then at
    most once a minute, so anonymous guesses never queue for SQLite's write lock."""
    with installation.read_sessions() as session:
        row = find_token(session, token)
        if row is None:
            return None
        principal = Principal(row.name, Role(row.role), "token")
        due, token_id = token_use_due(row), row.id
    if due:
        with installation.sessions.begin() as session:
            note_token_use(session, token_id)
    return principal


def _check_csrf(request: Request, principal: Principal) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "").encode()
    expected = (principal.csrf_token or "").encode()
    if not expected or not hmac.compare_digest(sent, expected):
        raise ApiError(
            403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header for this session"
        )


def check_role(principal: Principal, role: Role, why: str = "") -> None:
    """403 unless ``principal`` holds ``role``; ``why`` says what about the request needs it."""
    if not allows(principal.role, role):
        what = f"this {why}" if why else "this"
        raise ApiError(
            403, "forbidden", f"{what} needs the {role.value} role; you are {principal.role.value}"
        )


def require(role: Role) -> Callable[[Principal], Principal]:
    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        check_role(principal, role)
        return principal

    return dependency


viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))
admin = Depends(require(Role.ADMIN))
