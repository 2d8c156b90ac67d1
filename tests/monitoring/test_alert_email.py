"""Email delivery through the shipped email receiver: Debian's Alertmanager, with
deploy/alertmanager rendered by render.py for an SMTP server this test runs (aiosmtpd), mails
critical alerts to the on-call address, logging in with the password from its secrets file;
the subject names the alert and the thing, the body links to the item, endpoint or model page,
and the resolution is mailed too. Alerts are posted to Alertmanager's API as Prometheus does;
the group waits are shortened to 1 s (nothing else changes). About 10 s."""

from __future__ import annotations

import email
import email.policy
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from support.alerting import Alertmanager, WebhookSink, render_alertmanager
from support.monitoring import free_port, require_binary, wait_for

LINK_URL = "https://conveyor.example.test"
ONCALL = "oncall@example.test"
SENDER = "alerts@example.test"
LOGIN = ("conveyor-alerts", "smtp password from the secrets file")


class Mailbox:
    """aiosmtpd's handler: keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        """Only LOGIN's user and password are accepted (the one SMTP login of the site)."""
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == LOGIN
        )
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        with self._lock:
            return [str(message["Subject"]) for _, message in self.messages]

    def find(self, start: str) -> tuple[list[str], EmailMessage]:
        with self._lock:
            found = [(to, m) for to, m in self.messages if str(m["Subject"]).startswith(start)]
        assert len(found) == 1, self.subjects()
        return found[0]


def _short_waits(route: dict[str, Any]) -> None:
    for key in ("group_wait", "group_interval"):
        route[key] = "1s"
    for child in route.get("routes", []):
        _short_waits(child)


@pytest.fixture(scope="module")
def mailed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mailbox, Alertmanager]]:
    require_binary("prometheus-alertmanager")
    folder = tmp_path_factory.mktemp("alert-email")
    mailbox, sink = Mailbox(), WebhookSink()
    with warnings.catch_warnings():  # AUTH without TLS: loopback, no certificate here
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        smtp = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=free_port(),
            authenticator=mailbox.authenticate,
            auth_required=True,  # a message without the login is refused
            auth_require_tls=False,
            # Alertmanager's LOGIN expects the challenge "Username:", aiosmtpd sends "User Name".
            auth_exclude_mechanism=["LOGIN"],
        )
        smtp.start()
    settings = {
        "CONVEYOR_ALERTS_TOKEN": "cvy_" + "m4" * 20,
        "ALERTMANAGER_CONVEYOR_URL": sink.url,  # Conveyor's receiver is not under test here
        "ALERTMANAGER_LINK_URL": LINK_URL,
        "ALERTMANAGER_SMTP_SMARTHOST": f"127.0.0.1:{smtp.port}",
        "ALERTMANAGER_SMTP_FROM": SENDER,
        "ALERTMANAGER_SMTP_REQUIRE_TLS": "false",
        "ALERTMANAGER_SMTP_USERNAME": LOGIN[0],
        "ALERTMANAGER_SMTP_PASSWORD": LOGIN[1],  # render.py writes it to secrets/smtp-password
        "ALERTMANAGER_ONCALL_EMAIL": ONCALL,
    }
    config = yaml.safe_load(render_alertmanager(folder, settings).read_text())
    _short_waits(config["route"])
    alertmanager = Alertmanager(config, folder)
    try:
        yield mailbox, alertmanager
    finally:
        print(alertmanager.stop()[-3000:])
        smtp.stop()
        sink.stop()


def _alert(name: str, labels: dict[str, str], ends_at: datetime | None = None) -> dict[str, Any]:
    alert = {
        "labels": {"alertname": name, "severity": "critical"} | labels,
        "annotations": {"summary": f"{name} summary", "description": f"{name} description"},
        "generatorURL": "http://prometheus.example.test/graph?g0.expr=up",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, message
    return str(part.get_content())


def test_critical_alerts_are_mailed_with_links_to_their_page(
    mailed: tuple[Mailbox, Alertmanager],
) -> None:
    mailbox, alertmanager = mailed
    started = time.monotonic()
    alertmanager.post_alerts(
        [
            _alert("ConveyorServingLatencyP99High", {"component": "serving", "endpoint": "heart"}),
            _alert("ConveyorModelDrift", {"component": "serving", "model": "heart-risk"}),
            _alert("ConveyorItemStuck", {"component": "pipeline", "item_id": "it-42"}),
        ]
    )
    wait_for(lambda: len(mailbox.subjects()) >= 3, 20, "three alert emails")
    print(f"three emails {time.monotonic() - started:.1f} s after the alerts were posted")

    to, latency = mailbox.find("[FIRING:1] ConveyorServingLatencyP99High endpoint heart")
    assert to == [ONCALL] and latency["To"] == ONCALL and SENDER in str(latency["From"])
    assert str(latency["Subject"]).endswith("(critical)")
    body = _html(latency)
    assert f'<a href="{LINK_URL}/endpoints/heart">Open in Conveyor</a>' in body
    assert "ConveyorServingLatencyP99High summary" in body
    assert "ConveyorServingLatencyP99High description" in body
    assert 'href="http://prometheus.example.test/graph?g0.expr=up"' in body
    assert mailbox.logins and all(ok for _, ok in mailbox.logins), mailbox.logins

    _, drift = mailbox.find("[FIRING:1] ConveyorModelDrift")
    assert f'<a href="{LINK_URL}/models/heart-risk">' in _html(drift)
    _, stuck = mailbox.find("[FIRING:1] ConveyorItemStuck")
    assert f'<a href="{LINK_URL}/items/it-42">' in _html(stuck)


def test_the_resolution_is_mailed(mailed: tuple[Mailbox, Alertmanager]) -> None:
    mailbox, alertmanager = mailed
    labels = {"component": "serving", "endpoint": "heart"}
    alertmanager.post_alerts([_alert("ConveyorServingErrorRateHigh", labels)])
    wait_for(
        lambda: any("ConveyorServingErrorRateHigh" in s for s in mailbox.subjects()), 20, "firing"
    )
    ended = datetime.now(UTC) - timedelta(seconds=1)
    alertmanager.post_alerts([_alert("ConveyorServingErrorRateHigh", labels, ends_at=ended)])
    wait_for(
        lambda: any(
            s.startswith("[RESOLVED] ConveyorServingErrorRateHigh") for s in mailbox.subjects()
        ),
        20,
        "the resolution email",
    )
    _, resolved = mailbox.find("[RESOLVED] ConveyorServingErrorRateHigh endpoint heart")
    assert "<b>resolved</b>" in _html(resolved)
    assert f'<a href="{LINK_URL}/endpoints/heart">' in _html(resolved)


def test_the_rendered_config_keeps_email_on_the_on_call_receivers(tmp_path: Path) -> None:
    settings = {"CONVEYOR_ALERTS_TOKEN": "cvy_" + "m4" * 20}
    settings |= {"ALERTMANAGER_SMTP_SMARTHOST": "127.0.0.1:25", "ALERTMANAGER_ONCALL_EMAIL": ONCALL}
    config = yaml.safe_load(render_alertmanager(tmp_path, settings).read_text())
    with_email = {r["name"] for r in config["receivers"] if "email_configs" in r}
    assert with_email == {"oncall", "serving-oncall", "ops-email"}
