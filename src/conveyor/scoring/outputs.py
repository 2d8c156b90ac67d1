"""The output folder once the parts are written: one rejects file, no temporary leftovers."""

from __future__ import annotations

from typing import Any

REJECTS_FILE = "_rejects.csv"


def _filesystem(output: str) -> tuple[Any, str]:
    import fsspec  # type: ignore[import-untyped]

    filesystem, folder = fsspec.core.url_to_fs(output)
    return filesystem, folder.rstrip("/")


def merge_rejects(output: str) -> int:
    """Concatenate ``_rejects/part-*.csv`` (in part order, so in file and line order) into
    ``_rejects.csv``; returns the number of part files merged."""
    from conveyor.scoring.parts import REJECTS_FOLDER

    filesystem, folder = _filesystem(output)
    pieces = sorted(filesystem.glob(f"{folder}/{REJECTS_FOLDER}/part-*.csv"))
    if not pieces:
        return 0
    temporary, final = f"{folder}/.{REJECTS_FILE}.tmp", f"{folder}/{REJECTS_FILE}"
    with filesystem.open(temporary, "wb") as merged:
        for number, piece in enumerate(pieces):
            with filesystem.open(piece, "rb") as handle:
                header = handle.readline()
                if number == 0:
                    merged.write(header)
                while chunk := handle.read(1 << 20):
                    merged.write(chunk)
    filesystem.mv(temporary, final)
    return len(pieces)


def finish_output(output: str) -> None:
    """Remove the temporary files of parts a killed run left half written."""
    filesystem, folder = _filesystem(output)
    for leftover in filesystem.glob(f"{folder}/.part-*.tmp") + filesystem.glob(
        f"{folder}/_rejects/.part-*.tmp"
    ):
        filesystem.rm(leftover)


def output_exists(output: str) -> bool:
    """A finished job whose output folder was removed is scored again from the start."""
    filesystem, folder = _filesystem(output)
    return bool(filesystem.exists(folder))
