#!/usr/bin/env python3
"""Render this folder's Alertmanager configuration for one deployment (docs/monitoring.md).

alertmanager.yml and templates/ are the one source of the routing tree, receivers, grouping,
inhibition and messages. A deployment differs only in addresses and secrets, which this script
takes from environment variables and KEY=VALUE files (later ones win) and writes, with the
templates, into a folder Alertmanager reads. Slack, email and the generic webhook are each on
only when their setting is given; Conveyor's own receiver is always on.

    OUT/alertmanager.yml  OUT/templates/*.tmpl  OUT/secrets/{conveyor-token,...} (mode 600)

    python3 deploy/alertmanager/render.py OUT [--settings FILE ...] [--directory DIR]

The compose stack runs it in a one-off container, the Ansible monitoring role on the
controller, and for Kubernetes you run it into the overlay (kustomize then makes a Secret of
it). Needs only Python 3 and PyYAML (Ansible and Ray both depend on it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

SOURCE = Path(__file__).resolve().parent
WEBHOOK_PATH = "/api/v1/alerts/webhook"
TEMPLATE_URL = '{{ define "conveyor.url" }}http://127.0.0.1:8321{{ end }}'
# Secret settings and the file each goes to under secrets/ (paths in alertmanager.yml).
SECRET_FILES = {
    "CONVEYOR_ALERTS_TOKEN": "conveyor-token",
    "ALERTMANAGER_SLACK_WEBHOOK_URL": "slack-webhook-url",
    "ALERTMANAGER_SMTP_PASSWORD": "smtp-password",
}
# Plain settings: name -> (path in the global block, or None when handled below).
GLOBAL_SETTINGS = {
    "ALERTMANAGER_SMTP_SMARTHOST": "smtp_smarthost",
    "ALERTMANAGER_SMTP_FROM": "smtp_from",
    "ALERTMANAGER_SMTP_USERNAME": "smtp_auth_username",
}


class _PlainDumper(yaml.SafeDumper):
    """Writes shared values (the source's YAML anchors) out in full: easier to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and what to do."""


def read_settings_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as `conveyor deploy secrets` writes them; # comments and blanks skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip().strip("'\"")
    return values


def render_config(
    source: dict[str, Any], settings: dict[str, str], directory: str = "."
) -> dict[str, Any]:
    """The source configuration with the deployment's addresses; pure (no files).

    An address left out keeps the source's value. A channel is on only when its setting is
    set (Slack: ALERTMANAGER_SLACK_WEBHOOK_URL, email: ALERTMANAGER_SMTP_SMARTHOST, the generic
    webhook: ALERTMANAGER_WEBHOOK_URL), so nothing goes to the source's placeholders.
    ``directory`` is where Alertmanager will find the folder: it resolves templates and
    credentials_file against its configuration's folder, but not slack_api_url_file or
    smtp_auth_password_file (0.25 to 0.27), so those two are made absolute.
    """
    config = yaml.safe_load(yaml.safe_dump(source))  # a deep copy that keeps YAML's types
    glob = config.setdefault("global", {})
    for name, key in GLOBAL_SETTINGS.items():
        if settings.get(name):
            glob[key] = settings[name]
    if settings.get("ALERTMANAGER_SMTP_REQUIRE_TLS"):
        glob["smtp_require_tls"] = settings["ALERTMANAGER_SMTP_REQUIRE_TLS"].lower() == "true"
    if settings.get("ALERTMANAGER_SMTP_USERNAME"):
        glob["smtp_auth_password_file"] = "secrets/" + SECRET_FILES["ALERTMANAGER_SMTP_PASSWORD"]
    for key in ("slack_api_url_file", "smtp_auth_password_file"):
        if key in glob and not glob[key].startswith("/"):
            glob[key] = f"{directory.rstrip('/')}/{glob[key]}"
    for webhook in _configs(config, "webhook_configs"):
        if webhook["url"].endswith(WEBHOOK_PATH):
            if settings.get("ALERTMANAGER_CONVEYOR_URL"):
                webhook["url"] = settings["ALERTMANAGER_CONVEYOR_URL"].rstrip("/") + WEBHOOK_PATH
        elif settings.get("ALERTMANAGER_WEBHOOK_URL"):
            webhook["url"] = settings["ALERTMANAGER_WEBHOOK_URL"]
    _set_email(config, "oncall", settings.get("ALERTMANAGER_ONCALL_EMAIL"))
    _set_email(config, "ops-email", settings.get("ALERTMANAGER_OPS_EMAIL"))
    _switch_off_unset_channels(config, settings)
    return config


def _switch_off_unset_channels(config: dict[str, Any], settings: dict[str, str]) -> None:
    def off(name: str) -> bool:
        return not settings.get(name)

    glob = config["global"]
    for receiver in config.get("receivers", []):
        if off("ALERTMANAGER_SLACK_WEBHOOK_URL"):
            receiver.pop("slack_configs", None)
        if off("ALERTMANAGER_SMTP_SMARTHOST"):
            receiver.pop("email_configs", None)
        if off("ALERTMANAGER_WEBHOOK_URL") and "webhook_configs" in receiver:
            kept = [w for w in receiver["webhook_configs"] if w["url"].endswith(WEBHOOK_PATH)]
            receiver["webhook_configs"] = kept
            if not kept:
                del receiver["webhook_configs"]
    if off("ALERTMANAGER_SLACK_WEBHOOK_URL"):
        glob.pop("slack_api_url_file", None)
    if off("ALERTMANAGER_SMTP_SMARTHOST"):
        for key in [key for key in glob if key.startswith("smtp_")]:
            del glob[key]


def render_template(text: str, settings: dict[str, str]) -> str:
    """A template file with Conveyor's address for people (the links) set."""
    url = settings.get("ALERTMANAGER_LINK_URL") or settings.get("ALERTMANAGER_CONVEYOR_URL")
    if not url:
        return text
    return text.replace(
        TEMPLATE_URL, TEMPLATE_URL.replace("http://127.0.0.1:8321", url.rstrip("/"))
    )


def _configs(config: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for receiver in config.get("receivers", []):
        yield from receiver.get(kind, [])


def _drop(config: dict[str, Any], kind: str) -> None:
    for receiver in config.get("receivers", []):
        receiver.pop(kind, None)


def _set_email(config: dict[str, Any], receiver_name: str, address: str | None) -> None:
    """Point the email of ``receiver_name`` (and receivers sharing its address) at ``address``."""
    if not address:
        return
    (receiver,) = [r for r in config["receivers"] if r["name"] == receiver_name]
    old = {email["to"] for email in receiver.get("email_configs", [])}
    for email in _configs(config, "email_configs"):
        if email["to"] in old:
            email["to"] = address


def collect_settings(files: Iterable[Path], environment: dict[str, str]) -> dict[str, str]:
    settings = {
        k: v for k, v in environment.items() if k.startswith(("ALERTMANAGER_", "CONVEYOR_"))
    }
    for path in files:
        if not path.is_file():
            raise SettingsError(f"settings file {path} does not exist")
        settings |= read_settings_file(path)
    return settings


def write_folder(
    out: Path, settings: dict[str, str], with_secrets: bool = True, directory: str | None = None
) -> None:
    """alertmanager.yml, templates/ and (unless ``with_secrets`` is false) secrets/ in ``out``;
    ``directory``: where Alertmanager will see ``out`` (default: ``out`` itself)."""
    if with_secrets and not settings.get("CONVEYOR_ALERTS_TOKEN"):
        raise SettingsError(
            "CONVEYOR_ALERTS_TOKEN is not set: Conveyor's receiver needs an operator token "
            "(`conveyor deploy secrets` writes one; `conveyor deploy init` registers it)"
        )
    source = yaml.safe_load((SOURCE / "alertmanager.yml").read_text())
    (out / "templates").mkdir(parents=True, exist_ok=True)
    header = "# Rendered by deploy/alertmanager/render.py from deploy/alertmanager; do not edit.\n"
    config = render_config(source, settings, directory or str(out.resolve()))
    body = yaml.dump(config, Dumper=_PlainDumper, sort_keys=False, width=100)
    (out / "alertmanager.yml").write_text(header + body)
    for template in sorted((SOURCE / "templates").glob("*.tmpl")):
        (out / "templates" / template.name).write_text(
            render_template(template.read_text(), settings)
        )
    if with_secrets:
        _write_secrets(out / "secrets", settings)


def _write_secrets(folder: Path, settings: dict[str, str]) -> None:
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, file_name in SECRET_FILES.items():
        # An empty file keeps the *_file paths valid where a site has no Slack or no SMTP login.
        path = folder / file_name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(settings.get(name, ""))


def _give_to(out: Path, owner: str) -> None:
    user, _, group = owner.partition(":")
    for path in [out, *out.rglob("*")]:
        os.chown(path, int(user), int(group or user))


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--settings", type=Path, action="append", default=[], help="KEY=VALUE file")
    parser.add_argument(
        "--no-secrets", action="store_true", help="leave out secrets/ (the target mounts it)"
    )
    parser.add_argument(
        "--directory",
        help="where Alertmanager will see OUT, when it is mounted or copied elsewhere",
    )
    parser.add_argument(
        "--owner", help="UID:GID to give the files (run as root; Alertmanager's own user)"
    )
    options = parser.parse_args(arguments)
    try:
        settings = collect_settings(options.settings, dict(os.environ))
        write_folder(options.out, settings, not options.no_secrets, options.directory)
        if options.owner:
            _give_to(options.out, options.owner)
    except SettingsError as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 2
    print(f"wrote {options.out / 'alertmanager.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
