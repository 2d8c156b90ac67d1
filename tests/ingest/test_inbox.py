"""Files dropped into the inbox are queued, including while processing runs."""

from __future__ import annotations

import threading
import time

from conveyor.ingest.inbox import InboxWatcher
from conveyor.store import queries
from conveyor.store.queries import ItemFilter

AWKWARD_NAMES = ["plain.txt", "with space.txt", "semi;colon.txt", "quote'\"s.txt", "ünï 電.txt"]


def _items(installation):  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        return queries.list_items(session, ItemFilter(pipeline="text_stats"), limit=1000)


def test_awkward_names_are_safe_and_duplicates_set_aside(installation) -> None:
    storage = installation.storage
    for index, name in enumerate(AWKWARD_NAMES):
        storage.put_in_inbox(name, f"words {index} here".encode(), "text_stats")
    storage.put_in_inbox("copy.txt", b"words 0 here", "text_stats")
    storage.put_in_inbox("../../escape.txt", b"escape attempt", "text_stats")
    report = installation.inbox.scan(settle_seconds=0)
    assert len(report.accepted) == 6 and report.duplicates == ["text_stats/copy.txt"]
    installation.controller().run_until_idle(timeout=120)
    items = _items(installation)
    assert sorted(i.input_name for i in items) == sorted([*AWKWARD_NAMES, "escape.txt"])
    assert all(i.status == "succeeded" for i in items)
    root = storage.local_path("")
    assert root is not None and not (root.parent / "escape.txt").exists()
    assert storage.list_inbox("duplicates") != []


def test_unsettled_files_wait(installation) -> None:
    installation.storage.put_in_inbox("fresh.txt", b"just written", "text_stats")
    report = installation.inbox.scan(settle_seconds=60)
    assert report.accepted == [] and report.waiting == ["text_stats/fresh.txt"]


def test_files_added_while_processing_are_picked_up(installation) -> None:
    storage = installation.storage
    stop = threading.Event()
    installation.inbox.settle_seconds = 0.2
    watcher = InboxWatcher(installation.inbox, 0.2, stop)
    controller = installation.controller()
    runner = threading.Thread(target=controller.run, args=(stop,))
    watcher.start()
    runner.start()
    try:
        for wave in range(3):
            for n in range(5):
                storage.put_in_inbox(f"wave{wave}-{n}.txt", f"w{wave} n{n}".encode(), "text_stats")
            time.sleep(1.0)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            items = _items(installation)
            if len(items) == 15 and all(i.status == "succeeded" for i in items):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        watcher.join()
        runner.join()
    items = _items(installation)
    assert len(items) == 15 and {i.status for i in items} == {"succeeded"}
    assert storage.list_inbox("text_stats") == []
