"""Work folders no item names: what an upload or a submission leaves in storage when its process
dies before the item is committed (an API replica killed mid-upload). Every work folder is
named by its item once committed, and its name starts with the time it was made, so a folder
older than ``ABANDONED_AFTER`` that no item names will never get one. Maintenance removes them
(retention/maintenance.py); folders whose names carry no time are left alone.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store.models import Item, utcnow

if TYPE_CHECKING:
    from conveyor.storage.files import Storage

ABANDONED_AFTER = timedelta(days=1)  # longer than any upload takes
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # Storage's work folder names
LOOKUP_BATCH = 500


def made_at(work_dir: str) -> datetime | None:
    """When the work folder was made, from its name (None when the name has no time)."""
    stamp = posixpath.basename(work_dir).split("_", 1)[0].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, STAMP_FORMAT)
    except ValueError:
        return None


def abandoned_work_dirs(
    storage: Storage,
    sessions: sessionmaker[Session],
    now: datetime | None = None,
    older_than: timedelta = ABANDONED_AFTER,
) -> list[str]:
    horizon = (now or utcnow()) - older_than
    old = [d for d in storage.list_work_dirs() if (made := made_at(d)) and made < horizon]
    named: set[str] = set()
    with sessions() as session:
        for start in range(0, len(old), LOOKUP_BATCH):
            batch = old[start : start + LOOKUP_BATCH]
            named.update(session.scalars(select(Item.work_dir).where(Item.work_dir.in_(batch))))
    return [work_dir for work_dir in old if work_dir not in named]


def remove_abandoned_work_dirs(
    storage: Storage,
    sessions: sessionmaker[Session],
    now: datetime | None = None,
    older_than: timedelta = ABANDONED_AFTER,
) -> int:
    """Remove the abandoned work folders; returns how many went."""
    abandoned = abandoned_work_dirs(storage, sessions, now, older_than)
    for work_dir in abandoned:
        storage.remove_work_dir(work_dir)
    return len(abandoned)
