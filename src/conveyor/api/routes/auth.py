"""/api/v1/auth: log in and out (session cookie + CSRF token), and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from conveyor.api.errors import ApiError
from conveyor.api.schemas import Login, Me
from conveyor.api.security import SESSION_COOKIE, current_principal
from conveyor.auth.service import Principal, check_password, end_session, start_session

router = APIRouter(prefix="/auth", tags=["auth"])


def client_key(request: Request, name: str) -> str:
    host = request.client.host if request.client else "unknown"
    return f"{host}|{name.lower()}"


@router.post("/login", response_model=Me)
def login(request: Request, response: Response, body: Login) -> Me:
    limiter = request.app.state.login_limiter
    key = client_key(request, body.name)
    wait = limiter.retry_after(key)
    if wait > 0:
        raise ApiError(
            429, "too_many_attempts", f"too many login attempts; try again in {int(wait) + 1} s"
        )
    with request.app.state.installation.sessions.begin() as session:
        user = check_password(session, body.name, body.password)
        if user is None:
            raise ApiError(401, "unauthenticated", "wrong user name or password")
        session_id, csrf = start_session(session, user)
        role = user.role
    limiter.reset(key)
    set_session_cookie(request, response, session_id)
    return Me(name=body.name, role=role, kind="user", csrf_token=csrf)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=request.scope.get("root_path") or "/",
        max_age=12 * 3600,
    )


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with request.app.state.installation.sessions.begin() as session:
            end_session(session, cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path") or "/")
    return response


@router.get("/me", response_model=Me)
def me(principal: Principal = Depends(current_principal)) -> Me:
    return Me(
        name=principal.name,
        role=principal.role.value,
        kind=principal.kind,
        csrf_token=principal.csrf_token,
    )
