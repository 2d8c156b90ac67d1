"""The schema's head revisions, read from the revision files without loading Alembic.

Every command opens the store, and most find it already at its heads. Alembic's script
machinery (with Mako and its DDL modules) took a quarter of ``conveyor status``, so the common
case is answered from the ``revision`` and ``down_revision`` literals of the files, and Alembic
loads only when the store may be behind. Heads are what Alembic's ``get_heads()`` calls heads:
revisions no ``down_revision`` names (``depends_on`` does not count). An id that is not a
literal answers ``None``: "ask Alembic".
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"  # Alembic's script location
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
_NAMES = ("revision", "down_revision")


def version_folders(pipeline_migrations: Iterable[Path] = ()) -> list[Path]:
    """The core chain's version folder, then the pipelines' (Alembic's version locations)."""
    return [MIGRATIONS / "versions", *pipeline_migrations]


def head_revisions(folders: Iterable[Path]) -> frozenset[str] | None:
    """The revisions no ``down_revision`` in ``folders`` names, or None when unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _revision_files(folders):
        found = _literals(path)
        if found is None or "down_revision" not in found:
            return None
        revision, down = found.get("revision"), _as_ids(found["down_revision"])
        if not isinstance(revision, str) or down is None:
            return None
        revisions.add(revision)
        parents.update(down)
    return frozenset(revisions - parents) if revisions else None


def stored_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the store is at (none for a store never migrated)."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return frozenset(rows.scalars())


def _revision_files(folders: Iterable[Path]) -> list[Path]:
    # Alembic reads every .py file of a version location but __init__ (not subfolders).
    return [
        path
        for folder in folders
        for path in sorted(Path(folder).glob("*.py"))
        if not path.name.startswith(("__init__", ".#"))
    ]


def _literals(path: Path) -> dict[str, object] | None:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    # The identifiers come before the first function (Alembic's template): parsing just that
    # part costs a twentieth of the whole file. Without them there, the whole file is read.
    header = _assignments(source.split("\ndef ", 1)[0], path)
    if header is not None and set(_NAMES) <= header.keys():
        return header
    return _assignments(source, path)


def _assignments(source: str, path: Path) -> dict[str, object] | None:
    try:
        tree = ast.parse(source, str(path))
    except (SyntaxError, ValueError):
        return None
    found: dict[str, object] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target in _NAMES and value is not None:  # a bare annotation assigns nothing
            try:
                found[target] = ast.literal_eval(value)
            except ValueError:
                return None  # an id Alembic computes when it runs the file
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _as_ids(down_revision: object) -> tuple[str, ...] | None:
    if down_revision is None:
        return ()
    if isinstance(down_revision, str):
        return (down_revision,)
    if isinstance(down_revision, tuple | list) and all(isinstance(r, str) for r in down_revision):
        return tuple(down_revision)
    return None
