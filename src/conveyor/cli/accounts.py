"""``users`` and ``tokens``: accounts for the API and the web UI."""

from __future__ import annotations

import sys

import typer

from conveyor.auth.roles import parse_role
from conveyor.auth.service import AccountError, add_user, create_token
from conveyor.cli.state import CliState, console

users_app = typer.Typer(help="Manage users of the web UI and API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")


def _role(value: str) -> str:
    try:
        return parse_role(value).value
    except ValueError as error:
        raise AccountError(str(error)) from None


@users_app.command("add")
def users_add(
    context: typer.Context,
    name: str = typer.Argument(...),
    role: str = typer.Option("viewer", "--role", help="admin, operator or viewer"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Add a user; asks for the password (twice) unless --password-stdin."""
    state: CliState = context.obj
    role = _role(role)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with state.installation.sessions.begin() as session:
        add_user(session, name, password, role)
    console.print(f"added user {name!r} with role {role}")


@tokens_app.command("create")
def tokens_create(
    context: typer.Context,
    name: str = typer.Argument(..., help="What the token is for, e.g. 'nightly-upload'."),
    role: str = typer.Option("operator", "--role", help="admin, operator or viewer"),
) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    state: CliState = context.obj
    role = _role(role)
    with state.installation.sessions.begin() as session:
        token = create_token(session, name, role)
    console.print(
        f"token {name!r} ({role}); send it as 'Authorization: Bearer <token>'. "
        "It is shown only now:"
    )
    print(token)
