"""Who is calling, and may they: bearer tokens, session cookies with CSRF, roles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from conveyor.api.errors import ApiError
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal, principal_for_session, principal_for_token

SESSION_COOKIE = "conveyor_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN, "anonymous")


def current_principal(request: Request) -> Principal:
    state = request.app.state
    if not state.auth_required:
        return ANONYMOUS_ADMIN
    authorization = request.headers.get("authorization", "")
    sessions = state.installation.sessions
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <token>'")
        with sessions.begin() as session:
            principal = principal_for_token(session, token.strip())
        if principal is None:
            raise ApiError(401, "unauthenticated", "the API token is unknown or revoked")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with sessions() as session:
            principal = principal_for_session(session, cookie)
        if principal is not None:
            _check_csrf(request, principal)
            return principal
    raise ApiError(
        401,
        "unauthenticated",
        "log in (POST /api/v1/auth/login) or send 'Authorization: Bearer <token>'",
    )


def _check_csrf(request: Request, principal: Principal) -> None:
    if request.method in SAFE_METHODS:
        return
    if request.headers.get(CSRF_HEADER) != principal.csrf_token:
        raise ApiError(
            403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header for this session"
        )


def require(role: Role) -> Callable[[Principal], Principal]:
    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not allows(principal.role, role):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {role.value} role; you are {principal.role.value}",
            )
        return principal

    return dependency


viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))
admin = Depends(require(Role.ADMIN))
