"""The schema's heads read from the revision files agree with Alembic's, so a store already at
its heads opens without loading Alembic, and one that is not still gets upgraded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from conveyor.pipeline.registry import discover
from conveyor.store.database import MIGRATIONS, alembic_config, connect, migrate
from conveyor.store.revisions import head_revisions, stored_revisions

EXAMPLE = Path(__file__).parents[1] / "plugins" / "example_pipeline" / "example_pipeline"
BUILT_IN = discover().migration_locations()


@pytest.mark.parametrize(
    "locations",
    [[], BUILT_IN, [*BUILT_IN, EXAMPLE / "migrations"]],
    ids=["core", "built-ins", "with a plug-in's depends_on"],
)
def test_heads_are_the_ones_alembic_finds(locations: list[Path]) -> None:
    alembic_heads = ScriptDirectory.from_config(alembic_config(locations)).get_heads()
    assert head_revisions([MIGRATIONS / "versions", *locations]) == set(alembic_heads)


def test_the_core_chain_has_one_head() -> None:
    """Pipelines' chains fork from the core's single head; two core revisions written on the
    same parent need a merge revision (like 0013 and 0019), or a new core revision would
    have to pick one of them."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"core heads {heads}: add a merge revision (alembic merge heads)"


def test_merges_and_annotations_count_and_computed_ids_defer_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    (tmp_path / "__init__.py").write_text('revision = "not a revision"\n')
    assert head_revisions([tmp_path]) == {"d"}
    (tmp_path / "e.py").write_text('revision = make_id()\ndown_revision = "d"\n')
    assert head_revisions([tmp_path]) is None


def test_a_store_at_its_heads_opens_without_alembic(database_url: str) -> None:
    engine = connect(database_url)
    with engine.connect() as connection:
        assert stored_revisions(connection) == set()  # never migrated
    migrate(engine, pipeline_migrations=BUILT_IN)
    with engine.connect() as connection:
        assert stored_revisions(connection) == head_revisions([MIGRATIONS / "versions", *BUILT_IN])
    engine.dispose()
    probe = f"""
import sys
from conveyor.pipeline.registry import discover
from conveyor.store.database import connect, migrate
engine = connect({database_url!r})
migrate(engine, pipeline_migrations=discover().migration_locations())
print(sorted(name for name in sys.modules if name.split(".")[0] in ("alembic", "mako")))
"""
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert loaded.stdout.strip() == "[]"
