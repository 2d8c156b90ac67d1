"""A migrated store on each database, for tests of the store alone (no Ray)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store.database import connect, migrate, session_factory


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = connect(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()
