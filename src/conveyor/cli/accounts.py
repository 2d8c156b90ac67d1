"""``users`` and ``tokens``: accounts for the API and the web UI, after creation too.

Every change to a user (password, disable, role) ends that user's browser sessions.
"""

from __future__ import annotations

import sys
from datetime import datetime

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console

users_app = typer.Typer(help="Manage users of the web UI and API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from standard input."
)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")


def _role(value: str) -> str:
    from conveyor.auth.roles import parse_role
    from conveyor.auth.service import AccountError

    try:
        return parse_role(value).value
    except ValueError as error:
        raise AccountError(str(error)) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _when(moment: datetime | None, empty: str = "never") -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else empty


# -- users ----------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    context: typer.Context,
    name: str = typer.Argument(...),
    role: str = typer.Option("viewer", "--role", help="admin, operator or viewer"),
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Add a user; asks for the password (twice) unless --password-stdin."""
    from conveyor.auth.service import add_user

    state: CliState = context.obj
    role = _role(role)
    password = _read_password(password_stdin)
    with state.installation.sessions.begin() as session:
        add_user(session, name, password, role)
    console.print(f"added user {name!r} with role {role}")


@users_app.command("list")
def users_list(context: typer.Context) -> None:
    """Every user with role, status and open browser sessions."""
    from conveyor.auth import accounts

    state: CliState = context.obj
    with state.installation.sessions() as session:
        users = accounts.list_users(session)
    table = Table("user", "role", "status", "sessions", "created")
    for user in users:
        status = "disabled" if user.disabled else "enabled"
        if user.must_change_password:
            status += ", must change password"
        table.add_row(user.name, user.role, status, str(user.sessions), _when(user.created_at))
    console.print(table)


@users_app.command("passwd")
def users_passwd(
    context: typer.Context,
    name: str = typer.Argument(...),
    password_stdin: bool = PASSWORD_STDIN,
    temporary: bool = typer.Option(
        False, "--temporary", help="The user must choose a new password at the next login."
    ),
) -> None:
    """Set a user's password (asks twice unless --password-stdin); ends their sessions."""
    from conveyor.auth import accounts
    from conveyor.auth.service import hash_password

    state: CliState = context.obj
    password_hash = hash_password(_read_password(password_stdin))
    with state.installation.sessions.begin() as session:
        accounts.set_password(session, name, password_hash, must_change=temporary)
    note = "; it must be changed at the next login" if temporary else ""
    console.print(f"set the password of {name!r}{note}; their sessions ended")


@users_app.command("disable")
def users_disable(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Refuse the user's logins and end their sessions (the last admin stays enabled)."""
    _set_disabled(context.obj, name, True)


@users_app.command("enable")
def users_enable(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Let a disabled user log in again."""
    _set_disabled(context.obj, name, False)


def _set_disabled(state: CliState, name: str, disabled: bool) -> None:
    from conveyor.auth import accounts

    with state.installation.sessions.begin() as session:
        accounts.set_disabled(session, name, disabled)
    console.print(f"{'disabled' if disabled else 'enabled'} {name!r}; their sessions ended")


@users_app.command("role")
def users_role(
    context: typer.Context,
    name: str = typer.Argument(...),
    role: str = typer.Argument(..., help="admin, operator or viewer"),
) -> None:
    """Change a user's role; ends their sessions (the last enabled admin keeps the role)."""
    from conveyor.auth import accounts

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        accounts.set_role(session, name, role)
    console.print(f"{name!r} is now {_role(role)}; their sessions ended")


# -- tokens ---------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    context: typer.Context,
    name: str = typer.Argument(..., help="What the token is for, e.g. 'nightly-upload'."),
    role: str = typer.Option("operator", "--role", help="admin, operator or viewer"),
    expires_in: str = typer.Option(
        None, "--expires-in", help="Lifetime, e.g. 30d, 12h, 2w (default: no expiry)."
    ),
) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    from conveyor.auth import accounts

    state: CliState = context.obj
    role = _role(role)
    with state.installation.sessions.begin() as session:
        token, info = accounts.new_token(session, name, role, expires_in)
    expiry = f", expires {_when(info.expires_at)} UTC" if info.expires_at else ""
    console.print(
        f"token {name!r} (id {info.id}, {role}{expiry}); send it as "
        "'Authorization: Bearer <token>'. It is shown only now:"
    )
    print(token)


@tokens_app.command("list")
def tokens_list(
    context: typer.Context,
    revoked: bool = typer.Option(False, "--revoked", help="List revoked tokens too."),
) -> None:
    """API tokens (never the tokens themselves: only their hashes are stored)."""
    from conveyor.auth import accounts

    state: CliState = context.obj
    with state.installation.sessions() as session:
        tokens = accounts.list_tokens(session, include_revoked=revoked)
    table = Table("id", "name", "role", "state", "created", "last used", "expires")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.name,
            token.role,
            token.state,
            _when(token.created_at),
            _when(token.last_used_at),
            _when(token.expires_at),
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    context: typer.Context,
    token: str = typer.Argument(..., help="The token's id, or its name if only one has it."),
) -> None:
    """Revoke a token: refused from now on (serving replicas: within 5 seconds)."""
    from conveyor.auth import accounts

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        row = accounts.find_token_by_reference(session, token)
        info = accounts.revoke_token(session, row.id)
    console.print(f"revoked token {info.id} ({info.name!r}, {info.role})")
