"""One Conveyor installation: its settings, store, storage and pipelines, wired together.

The CLI and the API build one of these; the executor (Ray) is started only by what needs it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from conveyor.engine.contract import WorkerEnvironment
from conveyor.filemodes import create_private_home
from conveyor.pipeline.registry import PipelineRegistry, discover
from conveyor.settings import Settings

if TYPE_CHECKING:  # each part loads with the first command that uses it (`status`: none)
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session, sessionmaker

    from conveyor.engine.controller import Controller
    from conveyor.engine.executor import RayExecutor
    from conveyor.ingest.inbox import Inbox
    from conveyor.ingest.submit import Submitter
    from conveyor.monitoring import ConveyorMetrics
    from conveyor.storage.files import Storage
    from conveyor.store.counts import ItemCounts


class Installation:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        create_private_home(settings.home)
        settings.log_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def engine(self) -> Engine:
        from conveyor.store.database import connect, migrate

        engine = connect(self.settings.resolved_database_url)
        migrate(
            engine, self.settings.init_lock_timeout_seconds, self.registry.migration_locations()
        )
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from conveyor.store.database import session_factory

        return session_factory(self.engine)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions that only read: no write lock on SQLite, READ ONLY on PostgreSQL."""
        from conveyor.store.database import read_only_session_factory

        return read_only_session_factory(self.engine)

    def read_connection(self) -> Connection:
        """A Core connection that only reads, for commands that need no ORM."""
        from conveyor.store.database import read_only_connection

        return read_only_connection(self.engine)

    def item_counts(self) -> ItemCounts:
        """Items by pipeline and state (``conveyor status``): read by SQLite's own driver
        when the store is at its heads, else through the engine, which migrates or refuses."""
        from conveyor.store.counts import counts_by_status
        from conveyor.store.revisions import version_folders
        from conveyor.store.sqlite_reads import item_counts_at_heads

        folders = version_folders(self.registry.migration_locations())
        counts = item_counts_at_heads(self.settings.resolved_database_url, folders)
        if counts is not None:
            return counts
        with self.read_connection() as connection:
            return counts_by_status(connection)

    @cached_property
    def storage(self) -> Storage:
        from conveyor.storage.files import Storage

        return Storage(self.settings.resolved_storage_url)

    @cached_property
    def registry(self) -> PipelineRegistry:
        return discover(self.settings.pipelines)

    @cached_property
    def metrics(self) -> ConveyorMetrics:
        """This process's metrics registry: the controller, ingest and the API share it."""
        from conveyor.monitoring import create_metrics

        return create_metrics(self.sessions, self.storage, self.registry)

    @cached_property
    def submitter(self) -> Submitter:
        from conveyor.ingest.submit import Submitter

        return Submitter(
            self.sessions,
            self.storage,
            self.registry,
            self.metrics,
            reference_roots=self.settings.reference_roots,
        )

    @cached_property
    def inbox(self) -> Inbox:
        from conveyor.ingest.inbox import Inbox

        return Inbox(
            self.submitter,
            self.settings.default_inbox_pipeline,
            self.settings.inbox_settle_seconds,
        )

    @cached_property
    def executor(self) -> RayExecutor:
        from conveyor.engine.executor import RayExecutor

        workers = WorkerEnvironment(self.storage.url, tuple(self.settings.pipelines))
        return RayExecutor(workers, self.settings.ray_address, self.settings.ray_num_cpus)

    @property
    def uses_executor(self) -> bool:
        """Whether this process started the executor (it runs a controller: ``conveyor up``)."""
        return "executor" in self.__dict__

    def controller(self) -> Controller:
        from conveyor.engine.controller import Controller
        from conveyor.streams.outbox import write_outbox

        return Controller(
            sessions=self.sessions,
            registry=self.registry,
            executor=self.executor,
            lease_seconds=self.settings.lease_seconds,
            poll_interval=self.settings.poll_interval_seconds,
            max_inflight=self.settings.max_inflight_items,
            inflight_per_cpu=self.settings.inflight_per_cpu,
            metrics=self.metrics,
            final_hooks=[write_outbox],  # results of finished items for the stream sinks
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
