"""What a step sees while it runs: the item's input, its work folder and a logger."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # fsspec loads in the workers that run steps, not with every pipeline
    from conveyor.storage.files import Storage


@dataclass
class StepContext:
    """Passed as the first argument of every step.

    ``record`` is the submitted JSON record (record items); ``input_name`` is the original
    file name (file items). ``input_url`` is set for a file submitted by reference: the file
    stays where it is (a shared mount, ``s3://``) and :meth:`input_path` or
    :meth:`open_input` read it there. Large outputs belong in artifacts inside the work folder.
    """

    item_id: str
    pipeline: str
    pipeline_version: str
    step: str
    attempt: int
    storage_url: str
    work_dir: str
    input_name: str | None = None
    record: Any = None
    input_url: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("conveyor.step"))
    _storage: Storage | None = field(default=None, repr=False)

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            from conveyor.storage.files import Storage

            self._storage = Storage(self.storage_url)
        return self._storage

    @property
    def log(self) -> logging.Logger:
        return self.logger

    def input_path(self) -> Path:
        """A local path to the input file: the file itself when it is on a local disk or a
        shared mount, else a copy (streamed through fsspec into a temporary folder)."""
        if self.input_name is None:
            raise ValueError(f"item {self.item_id} is a record item and has no input file")
        if self.input_url is not None:
            from conveyor.pipeline.referenced import local_input

            return local_input(self.input_url, self.input_name)
        return self.local_path(self.input_name)

    def open_input(self) -> BinaryIO:
        """The input file opened for reading through fsspec, wherever it lies (no copy):
        for steps that read it as a stream."""
        if self.input_name is None:
            raise ValueError(f"item {self.item_id} is a record item and has no input file")
        if self.input_url is not None:
            from conveyor.pipeline.referenced import open_input

            return open_input(self.input_url)
        return self.storage.open(self.work_dir, self.input_name)

    def local_path(self, relative: str) -> Path:
        """A local path for a file in the work folder (downloaded if storage is remote)."""
        local = self.storage.local_path(self.work_dir, relative)
        if local is not None:
            return local
        cache = Path(tempfile.mkdtemp(prefix="conveyor-")) / Path(relative).name
        self.storage.download(self.work_dir, relative, cache)
        return cache

    def artifact_path(self, name: str) -> Path:
        """A local path to write an artifact to; call :meth:`save_artifact` when remote."""
        local = self.storage.local_path(self.work_dir, name)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            return local
        return Path(tempfile.mkdtemp(prefix="conveyor-")) / Path(name).name

    def save_artifact(self, name: str, data: bytes) -> str:
        """Write bytes as an artifact of this item and return its storage-relative path."""
        return self.storage.write_bytes(self.work_dir, name, data)

    def save_json(self, name: str, value: Any) -> str:
        """Write ``value`` (numpy values allowed) as a JSON artifact; returns ``name``, to pass
        to dependent steps, which read it back with :meth:`load_json`."""
        import orjson

        self.save_artifact(
            name, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        )
        return name

    def load_json(self, name: str) -> Any:
        """Read a JSON artifact of this item (written by an earlier step)."""
        import orjson

        return orjson.loads(self.local_path(name).read_bytes())

    @staticmethod
    def gpu_ids() -> list[Any]:
        """The GPUs Ray assigned to this step run; empty on a CPU step or outside Ray."""
        try:
            import ray

            return list(ray.get_gpu_ids()) if ray.is_initialized() else []
        except Exception:  # outside a Ray worker (benchmarks, tests) there is no assignment
            return []
