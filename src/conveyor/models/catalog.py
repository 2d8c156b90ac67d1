"""Registered models as the API and the web pages show them: each with its aliases and
versions, read through :class:`~conveyor.models.service.ModelOps`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.models.promotion import CHALLENGER, CHAMPION
from conveyor.models.registry import VersionInfo

if TYPE_CHECKING:
    from conveyor.models.service import ModelOps


@dataclass(frozen=True)
class ModelEntry:
    name: str
    aliases: dict[str, int]
    versions: list[VersionInfo]

    @property
    def champion(self) -> int | None:
        return self.aliases.get(CHAMPION)

    @property
    def challenger(self) -> int | None:
        return self.aliases.get(CHALLENGER)


def model_entry(ops: ModelOps, name: str) -> ModelEntry:
    """One model; ModelNotFoundError (404 in the API) when none has that name."""
    versions = ops.versions(name)
    return ModelEntry(name, ops.tracking.aliases(name), versions)


def model_entries(ops: ModelOps) -> list[ModelEntry]:
    return [model_entry(ops, name) for name in ops.tracking.model_names()]
