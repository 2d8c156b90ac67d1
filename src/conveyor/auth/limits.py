"""The limits every login passes, built from the settings (docs/configuration.md).

The attempt limits live in the store and hold across every API process; the bound on password
checks at once is per process on purpose, since what it protects is that process's memory and
CPU. The ``check_*`` and ``forget_*`` methods block on the store: call them from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from conveyor.auth.hashing import HashingGate
from conveyor.auth.ratelimit import AttemptStore, WindowLimit
from conveyor.settings import Settings


@dataclass(frozen=True)
class LoginLimits:
    per_address: WindowLimit  # whatever the user names: guessing many accounts
    per_user: WindowLimit  # address and user name: guessing one password
    attempts: AttemptStore  # where both are counted: the store
    hashing: HashingGate  # password checks at once in this process: memory and CPU

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session]) -> LoginLimits:
        window = settings.login_window_seconds
        return cls(
            WindowLimit("address", settings.login_attempts_per_address, window),
            WindowLimit("user", settings.login_attempts_per_user, window),
            AttemptStore(sessions),
            HashingGate(settings.login_concurrency, settings.login_wait_seconds),
        )

    def check_login(self, address: str, user_key: str) -> float:
        """Seconds to wait before this login may be tried (0: now, and it is counted)."""
        return self.attempts.retry_after((self.per_address, address), (self.per_user, user_key))

    def check_password_change(self, user_key: str) -> float:
        return self.attempts.retry_after((self.per_user, user_key))

    def forget_user(self, user_key: str) -> None:
        """After a right password: the user's failed attempts no longer count."""
        self.attempts.forget(self.per_user, user_key)
