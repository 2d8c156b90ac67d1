"""First-use initialisation, done once across processes.

Several Conveyor processes often start on a fresh home at the same instant (``conveyor up`` in
one terminal and ``conveyor train heart --wait`` in another, N ``serve`` workers, Ray workers
loading a model). Whatever they create on first use (Conveyor's schema, MLflow's tracking and
registry store, the first admin user, model caches) is created under a cross-process lock:

- a SQLite database or a folder on local disk: a file lock (``filelock``, ``flock`` on Linux)
  in a file beside it; the kernel drops it when its holder dies, so no lock is ever stale;
- a PostgreSQL database: a session advisory lock (``pg_advisory_lock``) named after the purpose
  and the current schema, so processes on different machines exclude each other too;
- any other database: a file lock in the temporary folder (processes on this machine only).

Callers check whether the work is done before taking a lock and check again once they hold it,
so an initialised home costs a lookup, not a wait. A process that finds the lock held says so
once, waits up to ``timeout`` seconds (``init_lock_timeout_seconds``), then raises
:class:`InitialisationTimeoutError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import URL, create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from conveyor.errors import ConveyorError
from conveyor.filemodes import PRIVATE_FILE

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT_SECONDS = 600.0
_KEY = "hashtextextended('conveyor:' || :purpose || ':' || coalesce(current_schema(), ''), 0)"


class InitialisationTimeoutError(ConveyorError):
    """Another process held a first-use lock for longer than the configured wait."""

    code = "unavailable"
    http_status = 503  # the other process is still initialising: ask again shortly
    retry_after = 5


def _waiting(what: str, where: str, timeout: float) -> None:
    logger.warning(
        "another Conveyor process is %s at %s; waiting (up to %.0f s)", what, where, timeout
    )


def _gave_up(what: str, where: str, timeout: float) -> InitialisationTimeoutError:
    return InitialisationTimeoutError(
        f"gave up after {timeout:.0f} s waiting for another Conveyor process {what} at "
        f"{where}. If that process is stuck, stop it and start again; if the work is just "
        "slow (a large store to migrate), raise CONVEYOR_INIT_LOCK_TIMEOUT_SECONDS."
    )


@contextmanager
def file_lock(
    path: Path, what: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, mode: int = -1
) -> Iterator[None]:
    """Hold the lock file ``path`` (created with its folder, with ``mode`` if given); ``what``
    names the work in the message a waiting process prints, e.g. "joining the Whisper model"."""
    from filelock import FileLock, Timeout  # only a first use, not every command, takes a lock

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, mode=mode)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        _waiting(what, str(path.parent), timeout)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise _gave_up(what, str(path.parent), timeout) from None
    try:
        yield
    finally:
        lock.release()


def database_lock(
    url: str, purpose: str, what: str, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> AbstractContextManager[None]:
    """Hold the first-use lock ``purpose`` (e.g. "schema") of the database at ``url``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return nullcontext()  # private to this process
        lock = Path(f"{parsed.database}.{purpose}.lock")
        return file_lock(lock, what, timeout, PRIVATE_FILE)  # beside the database: its mode
    if backend == "postgresql":
        return _advisory_lock(parsed, purpose, what, timeout)
    digest = hashlib.sha256(f"{purpose}:{url}".encode()).hexdigest()[:16]
    return file_lock(Path(tempfile.gettempdir()) / f"conveyor-{digest}.lock", what, timeout)


@contextmanager
def _advisory_lock(url: URL, purpose: str, what: str, timeout: float) -> Iterator[None]:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver Conveyor ships
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    key = {"purpose": purpose}
    try:
        with engine.connect() as connection:
            if not connection.scalar(text(f"select pg_try_advisory_lock({_KEY})"), key):
                where = url.render_as_string(hide_password=True)
                _waiting(what, where, timeout)
                if not _advisory_lock_within(connection, key, timeout):
                    raise _gave_up(what, where, timeout)
            try:
                yield
            finally:
                connection.execute(text(f"select pg_advisory_unlock({_KEY})"), key)
    finally:
        engine.dispose()


def _advisory_lock_within(connection: Connection, key: dict[str, str], timeout: float) -> bool:
    connection.execute(text(f"set lock_timeout = {max(1, int(timeout * 1000))}"))
    try:
        connection.execute(text(f"select pg_advisory_lock({_KEY})"), key)
    except OperationalError as failure:
        if getattr(failure.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return False
        raise
    connection.execute(text("set lock_timeout = 0"))
    return True


def replace_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary file beside ``target``, then rename it into place: a
    reader sees the old file or the whole new one, never a part. The temporary file is removed
    if ``write`` fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
