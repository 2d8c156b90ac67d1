"""Token lifetimes and states (pure parts of auth/accounts.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor.auth.accounts import TokenInfo, generate_password, parse_duration
from conveyor.auth.service import MIN_PASSWORD_LENGTH, AccountError
from conveyor.store.models import utcnow


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 2W ", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, lifetime: timedelta) -> None:
    assert parse_duration(text) == lifetime


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "a number and a unit"),
        ("1y", "a number and a unit"),
        ("-1d", "a number and a unit"),
        ("1.5d", "a number and a unit"),
        ("0h", "above 0"),
        ("99999w", "at most 3660 days"),
    ],
)
def test_bad_durations_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        parse_duration(text)


def test_token_states() -> None:
    now = utcnow()
    token = TokenInfo(1, "ci", "viewer", now, None, None, False)
    assert token.state == "active"
    assert TokenInfo(1, "ci", "viewer", now, None, now - timedelta(1), False).state == "expired"
    assert TokenInfo(1, "ci", "viewer", now, None, now + timedelta(1), True).state == "revoked"


def test_generated_passwords_are_long_and_differ() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= max(20, MIN_PASSWORD_LENGTH) for p in passwords)
