"""The limits every login passes, built from the settings (docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.auth.hashing import HashingGate
from conveyor.auth.ratelimit import SlidingWindowLimiter
from conveyor.settings import Settings


@dataclass(frozen=True)
class LoginLimits:
    per_address: SlidingWindowLimiter  # whatever the user names: guessing many accounts
    per_user: SlidingWindowLimiter  # address and user name: guessing one password
    hashing: HashingGate  # password checks at once: memory and CPU

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        window = settings.login_window_seconds
        return cls(
            SlidingWindowLimiter(settings.login_attempts_per_address, window),
            SlidingWindowLimiter(settings.login_attempts_per_user, window),
            HashingGate(settings.login_concurrency, settings.login_wait_seconds),
        )
