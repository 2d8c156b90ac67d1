"""What every command shares: lazily built settings and installation."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from rich.console import Console

from conveyor.installation import Installation
from conveyor.settings import Settings

console = Console()
error_console = Console(stderr=True, soft_wrap=True)


class CliState:
    def __init__(self, make_settings: Callable[[], Settings]) -> None:
        self._make_settings = make_settings

    @cached_property
    def settings(self) -> Settings:
        return self._make_settings()

    @cached_property
    def installation(self) -> Installation:
        return Installation(self.settings)
