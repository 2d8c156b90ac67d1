"""Stream messages naming files outside the storage root (docs/streams.md): with reference_roots
set, one under a root becomes a file item read where it lies (nothing copied); one outside
every root, through a symbolic link leading out, or with '..' is a dead letter saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store.models import Item
from conveyor.streams.brokers.base import Message
from conveyor.streams.intake import MessageIntake
from conveyor.streams.tables import StreamDeadLetter


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "note.txt").write_text("three little words")
    (tmp_path / "secret.txt").write_text("not for streams")
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    return folder


@pytest.fixture
def referencing(tmp_path: Path, database_url: str, shared: Path) -> Iterator[Installation]:
    settings = load_settings(
        tmp_path / "home",
        database_url=database_url,
        pipelines=["support.pipelines"],
        reference_roots=[str(shared)],
    )
    installation = Installation(settings)
    yield installation
    installation.close()


def test_files_under_a_root_become_reference_items_and_the_rest_dead_letters(
    referencing: Installation, shared: Path, tmp_path: Path
) -> None:
    bodies = [
        {"$file": str(shared / "note.txt")},
        {"$file": f"file://{shared}/note.txt", "name": "again.txt"},  # the same file
        {"$file": str(tmp_path / "secret.txt")},
        {"$file": str(shared / "leak.txt")},
        {"$file": f"{shared}/../secret.txt"},
        {"$file": str(shared / "gone.txt")},
    ]
    messages = [Message(f"m/{n}", json.dumps(body).encode()) for n, body in enumerate(bodies)]
    intake = MessageIntake(referencing.sessions, referencing.submitter)

    outcome = intake.take("shared", referencing.registry.get("text_stats"), messages)

    assert (outcome.items, dict(outcome.dead_letters)) == (2, {"reference_refused": 4})
    with referencing.sessions() as session:
        items = list(session.scalars(select(Item).order_by(Item.input_name)))
        letters = {
            json.loads(letter.payload)["$file"]: letter.reason
            for letter in session.scalars(select(StreamDeadLetter))
        }
    assert [(i.input_name, i.input_url, i.input_size) for i in items] == [
        ("again.txt", str(shared / "note.txt"), 18),
        ("note.txt", str(shared / "note.txt"), 18),
    ]
    assert all(referencing.storage.list_files(i.work_dir) == [] for i in items)  # no copy
    assert "outside every allowed root" in letters[str(tmp_path / "secret.txt")]
    assert "symbolic link" in letters[str(shared / "leak.txt")]
    assert "'..'" in letters[f"{shared}/../secret.txt"]
    assert "no readable file" in letters[str(shared / "gone.txt")]
