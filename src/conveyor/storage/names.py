"""File names are data: turn any submitted name into one safe file name component."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200
MAX_DISPLAY_NAME = 1024
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_file_name(name: str, fallback: str = "input") -> str:
    """Keep what a person would recognise (spaces, ``;``, quotes, unicode) but never a path:
    separators and control characters go, leading dots go (no ``..``, no hidden files), and the
    result fits common file-system limits."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _FORBIDDEN.sub("_", name).strip().lstrip(".").strip()
    if not name:
        return fallback
    return _truncate_keeping_suffix(name)


def display_name(name: str) -> str:
    """The submitted name as recorded and shown: as given, less NUL characters (which no store
    keeps) and cut to what the store holds."""
    return name.replace("\x00", "")[:MAX_DISPLAY_NAME]


def _truncate_keeping_suffix(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = name, ""
    budget = MAX_NAME_BYTES - len(suffix.encode()) - 1
    stem = stem.encode()[:budget].decode(errors="ignore")
    return f"{stem}.{suffix}" if suffix else stem
