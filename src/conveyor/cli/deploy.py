"""``conveyor deploy``: the secrets file of the compose stack and the stack's one-off init.

docs/deploy.md, "Compose stack". The stack's containers refuse to start without these secrets
(deploy/docker/entrypoint.sh), so there is no default password to forget to change.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

from conveyor.cli.state import CliState, console
from conveyor.errors import ConfigurationError

deploy_app = typer.Typer(help="Set up and initialise a cluster deployment.", no_args_is_help=True)

ADMIN_PASSWORD_VARIABLE = "CONVEYOR_ADMIN_PASSWORD"
# The operator token Alertmanager presents to POST /api/v1/alerts/webhook (docs/monitoring.md).
ALERTS_TOKEN_VARIABLE = "CONVEYOR_ALERTS_TOKEN"


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")


def new_secrets() -> dict[str, str]:
    """Fresh random values for every secret the compose stack needs."""
    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(32),  # URL-safe: goes into database URLs
        "RAY_AUTH_TOKEN": secrets.token_hex(32),  # the format `ray` itself generates
        ADMIN_PASSWORD_VARIABLE: secrets.token_urlsafe(18),
        ALERTS_TOKEN_VARIABLE: "cvy_" + secrets.token_urlsafe(32),
    }


def write_secrets_file(path: Path, values: dict[str, str]) -> None:
    """Create ``path`` readable by its owner only; never replaces an existing file."""
    if not path.parent.is_dir():
        raise ConfigurationError(f"folder {path.parent} does not exist; create it or pick another")
    body = "".join(f"{name}={value}\n" for name, value in values.items())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(
            f"{path} exists; it holds the stack's secrets. Remove it first to make new ones "
            "(the database keeps its old password until you change it there too)."
        ) from None
    with os.fdopen(descriptor, "w") as file:
        file.write("# Secrets of the Conveyor compose stack (conveyor deploy secrets).\n" + body)


@deploy_app.command("secrets")
def secrets_command(
    path: Path = typer.Argument(..., help="File to create, e.g. deploy/compose/.env"),
) -> None:
    """Create the secrets file of the compose stack (database, Ray token, first admin)."""
    values = new_secrets()
    write_secrets_file(path, values)
    console.print(
        f"wrote {path} (mode 600). The first admin is 'admin' with the password "
        f"{ADMIN_PASSWORD_VARIABLE} in that file.",
        soft_wrap=True,
    )


@deploy_app.command("init")
def init_command(
    context: typer.Context,
    admin: str = typer.Option("admin", "--admin", help="Name of the first admin."),
) -> None:
    """Migrate the store, create the first admin from $CONVEYOR_ADMIN_PASSWORD and accept
    $CONVEYOR_ALERTS_TOKEN as Alertmanager's operator token, when set (idempotent)."""
    from conveyor.auth.service import add_user, count_users, register_token

    password = os.environ.get(ADMIN_PASSWORD_VARIABLE, "")
    if not password:
        raise ConfigurationError(f"{ADMIN_PASSWORD_VARIABLE} is not set; see docs/deploy.md")
    alerts_token = os.environ.get(ALERTS_TOKEN_VARIABLE, "")
    state: CliState = context.obj
    with state.installation.sessions.begin() as session:  # migrates the store first
        if alerts_token and register_token(session, "alertmanager", "operator", alerts_token):
            console.print(f"registered {ALERTS_TOKEN_VARIABLE} as the token 'alertmanager'")
        if count_users(session) > 0:
            console.print("store migrated; users exist already, no admin added")
            return
        add_user(session, admin, password, "admin")
    console.print(f"store migrated; added the first admin {admin!r}")
