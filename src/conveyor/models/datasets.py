"""The dataset snapshots training runs used, and the runs that used each.

Every training run reads a snapshot that ``conveyor train`` (or a trigger) stored once under its
content digest, ``datasets/<model>/<sha256>.csv`` in the storage (models/submission.py): a
content-addressed copy, as DVC keeps, so a model version's data can be read back byte for byte
after its source file changed. The runs come from the store: each training item's record names
its snapshot's digest, and ``model_runs`` the version and MLflow run it was registered as.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import ConveyorError, InputRejectedError
from conveyor.models.training import DATASETS_FOLDER, SHA256_HEX, TrainingPipeline, snapshot_path
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.storage.files import CHUNK_BYTES, Storage
from conveyor.store.models import Item, ModelRun

MIN_PREFIX = 6  # hex digits of a digest a caller must give
HEX_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")


class DatasetNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


@dataclass(frozen=True)
class DatasetRun:
    """A training run (its item) that read a snapshot, and what it became."""

    item_id: str
    model: str
    status: str  # the item's
    created_at: datetime
    trigger: str
    source: str  # where the snapshot's bytes came from (a file, a commit, + new rows)
    version: int | None = None  # the registered model version, once registered
    run_id: str | None = None  # its MLflow run


@dataclass
class DatasetSnapshot:
    digest: str
    model: str
    size: int | None  # None: the snapshot file is gone from storage
    runs: list[DatasetRun] = field(default_factory=list)

    @property
    def path(self) -> str:
        return snapshot_path(self.model, self.digest)

    @property
    def first_used_at(self) -> datetime | None:
        return min((run.created_at for run in self.runs), default=None)

    @property
    def versions(self) -> list[int]:
        return sorted(run.version for run in self.runs if run.version is not None)


class DatasetCatalog:
    """Snapshots in storage joined with the training items of the store."""

    def __init__(
        self, sessions: sessionmaker[Session], storage: Storage, registry: PipelineRegistry
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.registry = registry

    def snapshots(self, model: str | None = None) -> list[DatasetSnapshot]:
        """Every snapshot (of ``model``), most recently used first."""
        found = {(s.model, s.digest): s for s in self._stored(model)}
        for run, digest in self._runs(model):
            key = (run.model, digest)
            if key not in found:
                found[key] = DatasetSnapshot(digest, run.model, None)
            found[key].runs.append(run)
        for snapshot in found.values():
            snapshot.runs.sort(key=lambda run: run.created_at)
        return sorted(found.values(), key=_recency, reverse=True)

    def snapshot(self, digest: str, model: str | None = None) -> DatasetSnapshot:
        """The snapshot whose digest starts with ``digest`` (at least 6 hex digits)."""
        prefix = _checked_prefix(digest)
        matches = [s for s in self.snapshots(model) if s.digest.startswith(prefix)]
        if not matches:
            raise DatasetNotFoundError(
                f"no dataset snapshot has a digest starting with {prefix!r}; "
                "`conveyor datasets list` shows them."
            )
        if len({s.digest for s in matches}) > 1:
            raise InputRejectedError(
                f"{prefix!r} starts {len(matches)} snapshot digests; give more of it."
            )
        if len(matches) > 1:
            names = ", ".join(sorted(s.model for s in matches))
            raise InputRejectedError(
                f"the snapshot {prefix!r} belongs to several models ({names}); name one "
                "with --model."
            )
        return matches[0]

    def of_version(self, model: str, version: int) -> DatasetSnapshot:
        """The snapshot the registered ``model`` ``version`` was trained on."""
        for snapshot in self.snapshots(model):
            if version in snapshot.versions:
                return snapshot
        raise DatasetNotFoundError(
            f"no training run of {model!r} registered version {version}; "
            f"`conveyor models show {model}` lists its versions."
        )

    def open(self, snapshot: DatasetSnapshot) -> BinaryIO:
        """The snapshot's bytes; a clear error when storage no longer holds them."""
        if snapshot.size is None:
            raise DatasetNotFoundError(
                f"the snapshot {snapshot.digest} of {snapshot.model!r} is no longer in the "
                f"storage ({snapshot.path}); its runs: {_run_list(snapshot.runs)}."
            )
        folder, name = posixpath.split(snapshot.path)
        return self.storage.open(folder, name)

    def _stored(self, model: str | None) -> Iterator[DatasetSnapshot]:
        try:
            files = self.storage.list_files(DATASETS_FOLDER)
        except FileNotFoundError:
            return
        for relative in files:
            owner, _, name = relative.partition("/")
            digest = name.removesuffix(".csv")
            if "/" in name or not name.endswith(".csv") or not SHA256_HEX.fullmatch(digest):
                continue
            if model is None or owner == model:
                size = self.storage.size(DATASETS_FOLDER, relative)
                yield DatasetSnapshot(digest, owner, size)

    def _runs(self, model: str | None) -> list[tuple[DatasetRun, str]]:
        names = [p.name for p in self.registry if isinstance(p, TrainingPipeline)]
        query = (
            select(Item, ModelRun)
            .outerjoin(ModelRun, ModelRun.item_id == Item.id)
            .where(Item.kind == "record")
            .where(or_(Item.pipeline.in_(names), ModelRun.item_id.is_not(None)))
            .order_by(Item.created_at)
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        found = [_run_of(item, registered) for item, registered in rows]
        return [f for f in found if f is not None and (model is None or f[0].model == model)]


def _run_of(item: Item, registered: ModelRun | None) -> tuple[DatasetRun, str] | None:
    record: Any = item.record
    if not isinstance(record, dict):
        return None
    digest, model = record.get("dataset_sha256"), record.get("model")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest) or not model:
        return None
    run = DatasetRun(
        item_id=item.id,
        model=str(model),
        status=item.status,
        created_at=item.created_at,
        trigger=str(record.get("trigger", "")),
        source=str(record.get("dataset_source", "")),
        version=registered.version if registered else None,
        run_id=registered.mlflow_run_id if registered else None,
    )
    return run, digest


def _checked_prefix(digest: str) -> str:
    prefix = digest.strip().lower()
    if (
        len(prefix) < MIN_PREFIX
        or len(prefix) > 64
        or any(c not in "0123456789abcdef" for c in prefix)
    ):
        raise InputRejectedError(
            f"{digest[:80]!r} is not a dataset digest: give at least {MIN_PREFIX} of its hex "
            "digits (`conveyor datasets list` shows them)."
        )
    return prefix


def _recency(snapshot: DatasetSnapshot) -> tuple[bool, datetime]:
    latest = max((run.created_at for run in snapshot.runs), default=None)
    return latest is not None, latest or datetime.min


def _run_list(runs: Iterable[DatasetRun]) -> str:
    return ", ".join(f"{run.item_id[:12]} (v{run.version})" for run in runs) or "none"


def copy_verified(source: BinaryIO, out: BinaryIO, digest: str, progress: Any = None) -> int:
    """Copy ``source`` to ``out`` in chunks, checking the bytes against ``digest``; returns the
    size. ``progress(n)`` is called with each chunk's size."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_BYTES):
        hasher.update(chunk)
        out.write(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
    if hasher.hexdigest() != digest:
        raise ConveyorError(
            f"the stored snapshot's bytes have the digest {hasher.hexdigest()}, not {digest}: "
            "the storage copy is damaged. Restore it from a backup."
        )
    return size
