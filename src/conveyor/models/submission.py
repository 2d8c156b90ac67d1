"""Starting a training run: snapshot the dataset into storage by digest, submit a record item.

The snapshot (``datasets/<model>/<sha256>.csv``) is what the run reads and what its MLflow run
names, so a run can be repeated on exactly the same bytes even after the source file changes.
"""

from __future__ import annotations

import getpass
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError
from conveyor.ingest.submit import Submission, Submitter, record_item
from conveyor.models.provenance import sha256_hex
from conveyor.models.training import TrainingPipeline, TrainingRequest, snapshot_path
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.settings import Settings
from conveyor.storage.files import Storage
from conveyor.store.models import utcnow
from conveyor.store.submissions import NewItem, insert_items

DATASET_PARAM = "dataset"


def training_pipeline(registry: PipelineRegistry, model: str) -> TrainingPipeline:
    pipeline = registry.get(model)
    if not isinstance(pipeline, TrainingPipeline):
        trainable = [p.name for p in registry if isinstance(p, TrainingPipeline)]
        raise InputRejectedError(
            f"{model!r} is a pipeline but not a training pipeline; models: "
            f"{', '.join(trainable) or 'none'}."
        )
    return pipeline


def load_dataset(
    settings: Settings, pipeline: TrainingPipeline, given: str | None
) -> tuple[bytes, str]:
    """(bytes, source) of the data to train on: the given file, else the model's configured
    dataset, else the pipeline's default (a file, or a function returning bytes)."""
    configured = settings.models.get(pipeline.model_name)
    chosen = given or (configured.dataset if configured else None) or pipeline.default_dataset
    if callable(chosen):
        return chosen(), pipeline.default_dataset_source
    if not chosen:
        raise InputRejectedError(
            f"model {pipeline.model_name!r} has no dataset; pass --param dataset=PATH or set "
            f"models.{pipeline.model_name}.dataset in conveyor.toml."
        )
    path = Path(chosen).expanduser().resolve()
    if not path.is_file():
        raise InputRejectedError(
            f"dataset {chosen!r} of model {pipeline.model_name!r} is not a readable file "
            f"(looked at {path}); pass --param dataset=PATH."
        )
    return path.read_bytes(), str(path)


def snapshot_dataset(storage: Storage, model: str, data: bytes) -> tuple[str, str]:
    """Store ``data`` once under its digest; returns (storage path, sha256)."""
    digest = sha256_hex(data)
    folder, name = posixpath.split(snapshot_path(model, digest))
    local = storage.local_path(folder, name)
    if local is None or not local.exists():
        storage.write_bytes(folder, name, data)
    return snapshot_path(model, digest), digest


def build_training_item(
    settings: Settings,
    registry: PipelineRegistry,
    storage: Storage,
    model: str,
    params: Mapping[str, Any] | None = None,
    trigger: str = "cli",
    requested_by: str | None = None,
    extra_rows: Sequence[Sequence[str]] = (),
    dataset: tuple[bytes, str] | None = None,
    delivery: Mapping[str, Any] | None = None,
    new_rows: Mapping[str, int] | None = None,
) -> NewItem:
    """Check parameters, snapshot the dataset (plus ``extra_rows``) and describe the item.

    ``dataset`` gives the bytes and their source instead of a file (a delivery reads them from
    a commit); ``delivery`` is kept in the record for the registrar (docs/cicd.md);
    ``new_rows`` names the labelled rows a data trigger added (its fire and counts). Inserting
    the item is the caller's: alone, or in one transaction with a trigger's claim."""
    pipeline = training_pipeline(registry, model)
    given = dict(params or {})
    dataset_path = given.pop(DATASET_PARAM, None)
    configured = settings.models.get(pipeline.model_name)
    merged = {**(configured.params if configured else {}), **given}
    resolved = pipeline.resolve_params(merged)  # fails early, before anything is stored
    base, source = dataset or load_dataset(settings, pipeline, dataset_path)
    data = base + _as_csv(extra_rows)
    stored, digest = snapshot_dataset(storage, pipeline.model_name, data)
    label = f"{source} + {len(extra_rows)} new rows" if extra_rows else str(source)
    request = TrainingRequest(
        model=pipeline.model_name,
        dataset=stored,
        dataset_source=label,
        dataset_sha256=digest,
        params={k: resolved[k] for k in merged},
        trigger=trigger,
        requested_by=requested_by or _user(),
        requested_at=utcnow().isoformat(),
        delivery=dict(delivery or {}),
        new_rows=dict(new_rows or {}),
    )
    record = request.to_record()
    work_dir = storage.reserve_work_dir(f"train-{pipeline.model_name}-{uuid.uuid4().hex[:8]}")
    return record_item(pipeline, record, work_dir, trigger[:20])


def submit_training(
    settings: Settings,
    submitter: Submitter,
    model: str,
    params: Mapping[str, Any] | None = None,
    trigger: str = "cli",
    requested_by: str | None = None,
    dataset: tuple[bytes, str] | None = None,
    delivery: Mapping[str, Any] | None = None,
) -> Submission:
    """Queue one training run now; returns once its item is committed."""
    new = build_training_item(
        settings,
        submitter.registry,
        submitter.storage,
        model,
        params,
        trigger,
        requested_by,
        dataset=dataset,
        delivery=delivery,
    )
    with submitter.sessions.begin() as session:
        [item] = insert_items(session, [new])
    return Submission(item.id, duplicate=False)


def _as_csv(rows: Sequence[Sequence[str]]) -> bytes:
    if not rows:
        return b""
    return ("\n" + "\n".join(",".join(row) for row in rows) + "\n").encode()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
