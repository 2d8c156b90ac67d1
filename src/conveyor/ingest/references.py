"""Inputs named by reference: a file on a shared mount or behind any fsspec URL (``s3://``)
becomes an item without its bytes being copied; the workers read it where it lies.

A reference is accepted only inside one of the configured ``reference_roots`` (none by
default): a local path must resolve, symbolic links followed, to a regular file under a root
folder; a URL must start with a root URL of the same protocol. ``..`` segments, chained URLs
(``a::b``) and relative paths are refused outright, whatever the roots.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError

SETTING = "reference_roots"
SETTING_HINT = "CONVEYOR_REFERENCE_ROOTS (comma-separated) or reference_roots in conveyor.toml"
LOCAL_PROTOCOLS = ("file", "local")
MAX_URL_CHARS = 2048


class ReferenceRefusedError(InputRejectedError):
    """A reference names a file outside the allowed roots, or no readable file at all."""

    code = "reference_refused"


@dataclass(frozen=True)
class Reference:
    """A checked reference: the URL workers open, what the file is now, and its identity."""

    url: str  # a plain absolute path for a local file (symbolic links resolved)
    name: str  # the file's name, as the item shows it
    size: int
    version: str  # what changes when the content does: ETag, or inode + mtime

    @property
    def is_local(self) -> bool:
        return "://" not in self.url

    def content_hash(self) -> str:
        """The item's duplicate key: the same file, unchanged, is the same input (its bytes
        are never read at submission; docs/batch.md says why)."""
        identity = "\0".join(("reference", self.url, str(self.size), self.version))
        return hashlib.sha256(identity.encode()).hexdigest()


def resolve_reference(location: str, roots: Sequence[str]) -> Reference:
    """Check ``location`` against ``roots`` and look the file up (size, version)."""
    location = _plain(location)
    protocol, path = _split(location)
    if protocol in LOCAL_PROTOCOLS:
        return _local_reference(location, path, roots)
    return _remote_reference(location, protocol, path, roots)


def _plain(location: str) -> str:
    if not isinstance(location, str) or not location.strip():
        raise ReferenceRefusedError("a reference must be a path or URL (a non-empty string).")
    if len(location) > MAX_URL_CHARS or "\x00" in location:
        raise ReferenceRefusedError(
            f"reference {location[:100]!r} is longer than {MAX_URL_CHARS} characters or holds "
            "a NUL character."
        )
    try:
        location.encode("utf-8")
    except UnicodeEncodeError:
        raise ReferenceRefusedError(
            f"reference {location[:100]!r} is not valid UTF-8 text (a lone surrogate); "
            "name the file as UTF-8."
        ) from None
    if "::" in location:
        raise ReferenceRefusedError(
            f"reference {location!r} chains file systems ('::'); name one URL or path."
        )
    return location.strip()


def _split(location: str) -> tuple[str, str]:
    protocol, separator, rest = location.partition("://")
    if not separator:
        return "file", location
    return protocol.lower(), rest


def _refuse_traversal(location: str, path: str) -> None:
    if any(part in (".", "..") for part in path.split("/")):
        raise ReferenceRefusedError(
            f"reference {location!r} contains '.' or '..' segments; name the file directly."
        )


def _roots_or_refuse(location: str, roots: Sequence[str]) -> Sequence[str]:
    if not roots:
        raise ReferenceRefusedError(
            f"references are turned off, so {location!r} cannot be submitted by reference: "
            f"list the folders or URL prefixes they may name in {SETTING_HINT}, or upload "
            "the file."
        )
    return roots


def _outside(location: str, roots: Sequence[str], detail: str = "") -> ReferenceRefusedError:
    return ReferenceRefusedError(
        f"reference {location!r}{detail} is outside every allowed root "
        f"({', '.join(roots)}); add its folder or prefix to {SETTING_HINT}.",
    )


# -- local files and shared mounts ---------------------------------------------------------


def _local_reference(location: str, path: str, roots: Sequence[str]) -> Reference:
    if not path.startswith("/"):
        raise ReferenceRefusedError(
            f"reference {location!r} is not an absolute path; give the full path on the "
            "shared mount (as every worker sees it)."
        )
    _refuse_traversal(location, path)
    roots = _roots_or_refuse(location, roots)
    folders = [_real_folder(root) for root in roots if _split(root)[0] in LOCAL_PROTOCOLS]
    if not any(_is_under(path, folder) for folder in folders if folder):
        raise _outside(location, roots)
    real = os.path.realpath(path)
    if not any(_is_under(real, folder) for folder in folders if folder):
        raise _outside(location, roots, f" resolves (through a symbolic link) to {real!r}, which")
    return _local_file(location, real)


def _real_folder(root: str) -> str | None:
    path = _split(root.strip())[1]
    return os.path.realpath(path) if path.startswith("/") else None


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _local_file(location: str, real: str) -> Reference:
    try:
        status = os.stat(real)
    except OSError as error:
        raise ReferenceRefusedError(
            f"reference {location!r}: no readable file there ({error.strerror}); check the "
            "path on the shared mount."
        ) from None
    if not Path(real).is_file() or not os.access(real, os.R_OK):
        raise ReferenceRefusedError(f"reference {location!r} is not a readable regular file.")
    version = f"inode:{status.st_ino}:mtime_ns:{status.st_mtime_ns}"
    return Reference(real, posixpath.basename(real), status.st_size, version)


# -- object stores and other fsspec URLs ---------------------------------------------------


def _remote_reference(location: str, protocol: str, path: str, roots: Sequence[str]) -> Reference:
    _refuse_traversal(location, path)
    roots = _roots_or_refuse(location, roots)
    prefixes = [_split(root.strip()) for root in roots]
    allowed = any(
        protocol == root_protocol and _is_under(path, root_path.rstrip("/"))
        for root_protocol, root_path in prefixes
        if root_protocol not in LOCAL_PROTOCOLS and root_path.strip("/")
    )
    if not allowed:
        raise _outside(location, roots)
    url = f"{protocol}://{path}"
    info = _remote_info(location, url)
    if info.get("type") != "file":
        raise ReferenceRefusedError(f"reference {location!r} is a folder, not a file.")
    return Reference(url, posixpath.basename(path), int(info.get("size") or 0), _version(info))


def _remote_info(location: str, url: str) -> dict[str, Any]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return dict(fs.info(path))
    except (ImportError, ValueError) as error:
        raise ReferenceRefusedError(
            f"reference {location!r}: this installation cannot open that kind of URL ({error})."
        ) from None
    except FileNotFoundError:
        raise ReferenceRefusedError(f"reference {location!r}: no file there.") from None
    except Exception as error:  # each fsspec back end raises its own kinds
        raise ReferenceRefusedError(
            f"reference {location!r} cannot be read ({type(error).__name__}: {error}); check "
            "the URL and the storage credentials (AWS_*, FSSPEC_* variables) of the API, the "
            "CLI and the workers."
        ) from None


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "VersionId", "generation", "md5Hash"):
        if info.get(key):
            return f"{key}:{str(info[key]).strip(chr(34))}"
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if isinstance(modified, datetime):
        modified = modified.isoformat()
    return f"modified:{modified}"
