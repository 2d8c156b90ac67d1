"""What every command shares: lazily built settings and installation."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # the store and settings load with the first command that needs them
    from conveyor.installation import Installation
    from conveyor.settings import Settings

console = Console()
error_console = Console(stderr=True, soft_wrap=True)


class CliState:
    def __init__(self, make_settings: Callable[[], Settings], private_umask: bool = False) -> None:
        self._make_settings = make_settings
        self._private_umask = private_umask  # the process's umask is ours to set

    @cached_property
    def settings(self) -> Settings:
        from conveyor.filemodes import restrict_umask

        settings = self._make_settings()
        if self._private_umask:
            restrict_umask(settings.home, settings.resolved_storage_url)
        return settings

    @cached_property
    def installation(self) -> Installation:
        from conveyor.installation import Installation

        return Installation(self.settings)
