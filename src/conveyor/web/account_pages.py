"""Account pages: change your own password (everyone; where a temporary password leads), and
for admins the users and API tokens with their actions. Changes go through /api/v1 from the
browser (with the session's CSRF token), so the rules live in one place."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from conveyor.api.errors import ApiError
from conveyor.api.security import authenticate
from conveyor.auth import accounts
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.web.routes import Viewer, _page, root_of, safe_next

router = APIRouter(include_in_schema=False)


def signed_in_any(request: Request) -> Principal:
    """The caller even with a password to change (only the password page takes this)."""
    try:
        return authenticate(request)
    except ApiError:
        raise HTTPException(
            303, "log in first", {"Location": f"{root_of(request)}/login"}
        ) from None


@router.get("/account/password", name="web_password")
def password_page(
    request: Request, next: str = "", principal: Principal = Depends(signed_in_any)
) -> Response:
    return _page(
        request,
        "password.html",
        principal,
        active_page="password",
        next=safe_next(root_of(request), next),
    )


@router.get("/users", name="web_users")
def users_page(request: Request, principal: Principal = Viewer) -> Response:
    if not allows(principal.role, Role.ADMIN):
        message = "Users and API tokens are managed by admins."
        return _page(request, "missing.html", principal, status_code=403, message=message)
    with request.app.state.installation.read_sessions() as session:
        users = accounts.list_users(session)
        tokens = accounts.list_tokens(session, True)
    return _page(
        request,
        "users.html",
        principal,
        active_page="users",
        users=users,
        tokens=tokens,
        roles=[role.value for role in Role],
    )
