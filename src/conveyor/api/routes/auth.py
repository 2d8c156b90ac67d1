"""/api/v1/auth: log in and out (session cookie + CSRF token), who am I, change my password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from conveyor.api.errors import ApiError, error_responses
from conveyor.api.schemas import Login, Me, PasswordChange
from conveyor.api.security import SESSION_COOKIE, authenticate
from conveyor.auth.accounts import check_own_change, store_own_password
from conveyor.auth.ratelimit import address_key
from conveyor.auth.service import Principal, check_password, end_session, start_session
from conveyor.installation import Installation

router = APIRouter(prefix="/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The caller's address as the limits count it (a proxy's X-Forwarded-For is honoured only
    from ``forwarded_allow_ips``, by uvicorn)."""
    return address_key(request.client.host if request.client else "unknown")


@router.post("/login", response_model=Me, responses=error_responses(429, 503))
async def login(request: Request, response: Response, body: Login) -> Me:
    """Start a browser session. Limited per client address and per address and user name
    (429, counted in the store across every API process), with at most ``login_concurrency``
    password checks at once in this process (503 when busy)."""
    state = request.app.state
    address = client_address(request)
    user_key = f"{address}|{body.name.lower()}"
    _refuse_if_limited(await run_in_threadpool(state.login_limits.check_login, address, user_key))
    started = await state.login_limits.hashing.run(_log_in, state.installation, body)
    if started is None:
        raise ApiError(401, "unauthenticated", "wrong user name or password")
    await run_in_threadpool(state.login_limits.forget_user, user_key)
    session_id, csrf, role, must_change = started
    set_session_cookie(request, response, session_id)
    return Me(
        name=body.name, role=role, kind="user", csrf_token=csrf, must_change_password=must_change
    )


def _refuse_if_limited(wait: float) -> None:
    if wait > 0:
        seconds = str(int(wait) + 1)
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many login attempts; try again in {seconds} s",
            headers={"Retry-After": seconds},
        )


def _log_in(installation: Installation, body: Login) -> tuple[str, str, str, bool] | None:
    """(session cookie, CSRF token, role, must change password) for the right password, else
    None (a thread). The hash runs in a read-only session: a write transaction would hold
    SQLite's write lock, and with it every other request, for the length of the hash."""
    with installation.read_sessions() as session:
        user = check_password(session, body.name, body.password)
    if user is None:
        return None
    with installation.sessions.begin() as session:
        session_id, csrf = start_session(session, user)
    return session_id, csrf, user.role, user.must_change_password


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
def me(principal: Principal = Depends(authenticate)) -> Me:
    """Also answers while the password must be changed (``must_change_password``)."""
    return Me(
        name=principal.name,
        role=principal.role.value,
        kind=principal.kind,
        csrf_token=principal.csrf_token,
        must_change_password=principal.must_change_password,
    )


@router.post("/password", response_model=Me, responses=error_responses(429, 503))
async def change_password(
    request: Request,
    response: Response,
    body: PasswordChange,
    principal: Principal = Depends(authenticate),
) -> Me:
    """Change your own password (any role; the only route open while a temporary password
    must be changed). Ends all your sessions, this one included, and starts a new one."""
    if principal.kind != "user":
        raise ApiError(
            403,
            "forbidden",
            "only users logged in with a password can change it; API tokens "
            "and callers of a server without logins have none",
        )
    state = request.app.state
    user_key = f"{client_address(request)}|{principal.name.lower()}"
    _refuse_if_limited(await run_in_threadpool(state.login_limits.check_password_change, user_key))
    started = await state.login_limits.hashing.run(
        _change_password, state.installation, principal.name, body
    )
    session_id, csrf, role = started
    set_session_cookie(request, response, session_id)
    return Me(name=principal.name, role=role, kind="user", csrf_token=csrf)


def _change_password(
    installation: Installation, name: str, body: PasswordChange
) -> tuple[str, str, str]:
    with installation.read_sessions() as session:  # no write lock while hashing
        new_hash = check_own_change(session, name, body.current_password, body.new_password)
    with installation.sessions.begin() as session:
        user = store_own_password(session, name, new_hash)
        session_id, csrf = start_session(session, user)
        return session_id, csrf, user.role
