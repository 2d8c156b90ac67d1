"""Waiting for items with a progress bar, driving a controller in-process when none runs."""

from __future__ import annotations

import threading
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from conveyor.cli.state import console
from conveyor.core.lifecycle import FINAL_STATUSES
from conveyor.engine.presence import controller_alive
from conveyor.installation import Installation
from conveyor.store import queries
from conveyor.store.models import Item

POLL_SECONDS = 0.5


def final_statuses(installation: Installation, item_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with installation.sessions() as session:
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            rows = session.execute(select(Item.id, Item.status).where(Item.id.in_(chunk))).all()
            found |= {item_id: status for item_id, status in rows}
    return found


def count_unfinished(installation: Installation) -> int:
    with installation.sessions() as session:
        return queries.count_unfinished(session)


def wait_for_items(installation: Installation, item_ids: list[str]) -> dict[str, str]:
    """Block until every item is final; run a local controller if no `conveyor up` runs."""
    stop = threading.Event()
    worker = None
    if not controller_alive(installation.settings.home):
        controller = installation.controller()
        worker = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        worker.start()
    try:
        with _progress() as progress:
            task = progress.add_task("processing", total=len(item_ids))
            while True:
                statuses = final_statuses(installation, item_ids)
                done = sum(status in FINAL_STATUSES for status in statuses.values())
                progress.update(task, completed=done)
                if done == len(item_ids):
                    return statuses
                time.sleep(POLL_SECONDS)
    finally:
        stop.set()
        if worker is not None:
            worker.join()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
