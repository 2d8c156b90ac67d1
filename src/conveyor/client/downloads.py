"""Where a streamed download goes: written to a temporary file beside the target and renamed
into place once complete, so a failed download leaves neither a partial file nor a clobbered
earlier one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Download:
    path: Path

    @classmethod
    def to(cls, destination: str | os.PathLike[str] | None, name: str) -> Download:
        """``destination`` as a file, or ``name``'s last component inside it when it is a
        folder (default: the current folder)."""
        base = Path(name).name or "download"
        if destination is None:
            return cls(Path.cwd() / base)
        target = Path(destination)
        return cls(target / base if target.is_dir() else target)

    @contextlib.contextmanager
    def writer(self) -> Iterator[IO[bytes]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                yield out
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
