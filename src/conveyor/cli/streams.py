"""``streams``: broker sources whose messages become items (docs/streams.md)."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console
from conveyor.errors import InputRejectedError

if TYPE_CHECKING:  # the store and the consumers load when a streams command runs
    from conveyor.streams.runner import StreamRunner

streams_app = typer.Typer(
    help="Event streams: Kafka, RabbitMQ, NATS, Redis Streams, MQTT and JSON Lines file sources.",
    no_args_is_help=True,
)
LIVE_REFRESH_SECONDS = 1.0
LOG_EVERY_SECONDS = 10.0  # when the output is not a terminal


def register(app: typer.Typer) -> None:
    app.add_typer(streams_app, name="streams")


@streams_app.command("add")
def add(
    context: typer.Context,
    name: str = typer.Argument(..., help="A name for the source."),
    url: str = typer.Option(..., "--url", help="e.g. redis://host:6379/KEY, kafka://host/TOPIC"),
    pipeline: str = typer.Option(None, "--pipeline", "-p", help="Pipeline its items go to."),
    train: str = typer.Option(
        None, "--train", help="Model whose training rows the messages are (instead of -p)."
    ),
    group: str = typer.Option(None, "--group", help="Consumer group (default conveyor-NAME)."),
    max_queued: int = typer.Option(
        10_000, "--max-queued", help="Pause consuming while this many of its items wait."
    ),
    options: list[str] = typer.Option(
        None, "--option", "-o", help="KEY=VALUE broker setting (TLS, credentials); repeatable."
    ),
    schema: Path = typer.Option(None, "--schema", help="JSON Schema every record must meet."),
    disabled: bool = typer.Option(False, "--disabled", help="Add it without consuming yet."),
) -> None:
    """Add a source: its messages become items of the pipeline (or labelled rows of the model
    with --train) once a consumer runs."""
    from conveyor.streams.sources import SourceConfig, add_source, source_target

    state: CliState = context.obj
    # An unknown or training pipeline is an error now, not at the first message.
    target, model = source_target(state.installation.registry, pipeline, train)
    config = SourceConfig(
        name=name,
        url=url,
        pipeline=target,
        model=model,
        group=group or f"conveyor-{name}",
        options=_options(options or []),
        max_queued=max_queued,
        record_schema=_schema(schema) if schema else None,
        enabled=not disabled,
    )
    with state.installation.sessions.begin() as session:
        add_source(session, config)
    what = f"training rows of model {model}" if model else f"pipeline {target}"
    console.print(f"added stream source {name} -> {what} (group {config.group})")
    if model:
        console.print(_training_hint(state, model), markup=False)


def _training_hint(state: CliState, model: str) -> str:
    configured = state.settings.models.get(model)
    if configured and (configured.retrain_after_rows or configured.retrain_after_minutes):
        return "`conveyor up` starts training when its data trigger is due (docs/streams.md)"
    return (
        f"rows are kept; set models.{model}.retrain_after_rows (or retrain_after_minutes) "
        "to train on them automatically"
    )


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InputRejectedError(f"--option {pair!r}: write KEY=VALUE")
        options[key.strip()] = value
    return options


def _schema(path: Path) -> dict[str, Any]:
    from conveyor.streams.messages import schema_check

    try:
        schema = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputRejectedError(f"--schema {path}: not readable JSON ({error})") from error
    if not isinstance(schema, dict):
        raise InputRejectedError(f"--schema {path}: a JSON Schema is a JSON object")
    try:
        schema_check(schema)
    except Exception as error:  # jsonschema's SchemaError
        raise InputRejectedError(f"--schema {path}: not a valid JSON Schema ({error})") from error
    return schema


@streams_app.command("list")
def list_command(
    context: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable output."),
) -> None:
    """Sources with their items, messages in the last minute, lag and dead letters."""
    from conveyor.streams.sources import list_sources, public_view, source_counts

    state: CliState = context.obj
    with state.installation.read_sessions() as session:
        rows = [
            {**public_view(source), **source_counts(session, source).__dict__}
            for source in list_sources(session)
        ]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title="Stream sources")
    columns = ("name", "url", "into", "enabled", "taken", "per min", "lag", "dead letters")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["url"],
            f"model {row['model']} (rows)" if row["model"] else row["pipeline"],
            "yes" if row["enabled"] else "no",
            str(row["rows"] if row["model"] else row["items"]),
            str(row["messages_last_minute"]),
            "?" if row["lag"] is None else str(row["lag"]),
            str(row["dead_letters"]),
        )
    console.print(table)


@streams_app.command("remove")
def remove(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a source (its items stay; its dead letters and message identities go)."""
    from conveyor.streams.sources import remove_source

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        remove_source(session, name)
    console.print(f"removed stream source {name}")


@streams_app.command("enable")
def enable(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Consume a disabled source again (`conveyor up` and `streams run` pick it up)."""
    _set_enabled(context.obj, name, True)


@streams_app.command("disable")
def disable(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Stop consuming a source; its messages wait in the broker."""
    _set_enabled(context.obj, name, False)


def _set_enabled(state: CliState, name: str, enabled: bool) -> None:
    from conveyor.streams.sources import set_enabled

    with state.installation.sessions.begin() as session:
        set_enabled(session, name, enabled)
    console.print(f"stream source {name} {'enabled' if enabled else 'disabled'}")


@streams_app.command("dead-letters")
def dead_letters_command(
    context: typer.Context,
    name: str = typer.Argument(...),
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The newest dead letters of a source: identity, reason and payload."""
    from conveyor.streams.sources import dead_letters, get_source

    state: CliState = context.obj
    with state.installation.read_sessions() as session:
        get_source(session, name)
        letters = [
            {
                "identity": letter.identity,
                "reason": letter.reason,
                "payload": letter.payload.decode(errors="replace"),
                "received_at": str(letter.received_at),
            }
            for letter in dead_letters(session, name, limit)
        ]
    if as_json:
        print(json.dumps(letters))
        return
    for letter in letters:
        console.print(f"{letter['identity']}  {letter['reason']}", markup=False)
        console.print(f"    {letter['payload'][:200]}", markup=False)


@streams_app.command("publish")
def publish_command(
    context: typer.Context,
    name: str = typer.Argument(..., help="The source whose stream receives the messages."),
    messages: list[str] = typer.Argument(None, help="JSON messages, one per argument."),
    from_file: Path = typer.Option(
        None, "--file", "-f", help="A JSON Lines file: each line one message ('-': stdin)."
    ),
) -> None:
    """Publish messages to a source's stream (a broker, or the file of a file:// source)."""
    import sys

    from conveyor.streams.publishing import file_messages, publish_all
    from conveyor.streams.sources import get_source

    state: CliState = context.obj
    if bool(messages) == (from_file is not None):
        raise typer.BadParameter("give messages as arguments or --file FILE, one of them")
    with state.installation.read_sessions() as session:
        source = get_source(session, name)
        url, options = source.url, dict(source.options or {})
    if messages:
        count = publish_all(url, options, ((m.encode(), 0) for m in messages))
    elif str(from_file) == "-":
        count = publish_all(url, options, file_messages(sys.stdin.buffer))
    else:
        count = _publish_file(url, options, from_file)
    console.print(f"published {count} message(s) to {name}")


def _publish_file(url: str, options: dict[str, str], path: Path) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from conveyor.streams.publishing import file_messages, publish_all

    if not path.is_file():
        raise InputRejectedError(f"--file {path}: not a readable file")
    columns = (TextColumn("publishing"), BarColumn(), TextColumn("{task.fields[sent]:,} sent"))
    with path.open("rb") as lines, Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("publish", total=path.stat().st_size, sent=0)

        def shown(published: int, read: int) -> None:
            bar.update(task, completed=read, sent=published)

        return publish_all(url, options, file_messages(lines), shown)


@streams_app.command("add-sink")
def add_sink_command(
    context: typer.Context,
    name: str = typer.Argument(..., help="A name for the sink."),
    url: str = typer.Option(..., "--url", help="e.g. redis://host:6379/KEY, kafka://host/TOPIC"),
    pipeline: str | None = typer.Option(
        None, "--pipeline", "-p", help="Pipeline whose results go out."
    ),
    model_events: str | None = typer.Option(
        None, "--model-events", help="Model (or '*') whose versions, promotions, rollbacks go out."
    ),
    predictions: str | None = typer.Option(
        None, "--predictions", help="Endpoint (or '*') whose predictions and feedback go out."
    ),
    alerts: str | None = typer.Option(
        None, "--alerts", help="Alert name (or '*') whose firing and resolving go out."
    ),
    statuses: list[str] = typer.Option(
        None, "--status", help="Publish items that end so (succeeded, failed); repeatable."
    ),
    options: list[str] = typer.Option(
        None, "--option", "-o", help="KEY=VALUE broker setting (TLS, credentials); repeatable."
    ),
) -> None:
    """Add a sink: the pipeline's items that end from now on (or a model's events, or an
    endpoint's predictions, or alerts) are published to the URL."""
    from conveyor.streams.event_sinks import ALERTS, MODEL_EVENTS, PREDICTIONS
    from conveyor.streams.sinks import PUBLISHED_STATUSES, SinkConfig, add_sink

    state: CliState = context.obj
    kinds = ((model_events, MODEL_EVENTS), (predictions, PREDICTIONS), (alerts, ALERTS))
    chosen = [(subject, kind) for subject, kind in kinds if subject]
    if len(chosen) + (pipeline is not None) != 1:
        raise typer.BadParameter(
            "give one of --pipeline, --model-events, --predictions or --alerts"
        )
    if pipeline is not None:
        state.installation.registry.get(pipeline)  # an unknown pipeline is an error now
        subject, published = pipeline, list(statuses or PUBLISHED_STATUSES)
    else:
        subject, published = chosen[0][0], [chosen[0][1]]
    config = SinkConfig(name, url, subject, _options(options or []), published)
    with state.installation.sessions.begin() as session:
        add_sink(session, config)
    what = f"{', '.join(published)} items" if pipeline is not None else published[0]
    console.print(f"added stream sink {name}: {what} of {subject}")


@streams_app.command("sinks")
def sinks_command(
    context: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable output."),
) -> None:
    """Sinks with the messages published and those waiting in the outbox."""
    from conveyor.streams.sinks import list_sinks, outbox_depth, public_view

    state: CliState = context.obj
    with state.installation.read_sessions() as session:
        rows = [
            {**public_view(sink), "outbox": outbox_depth(session, sink.name)}
            for sink in list_sinks(session)
        ]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title="Stream sinks")
    for column in ("name", "url", "of", "publishes", "published", "waiting", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["url"],
            row["pipeline"],
            ", ".join(row["statuses"]) + " items" if row["kind"] == "items" else row["kind"],
            str(row["published"]),
            str(row["outbox"]),
            row["last_error"] or "",
        )
    console.print(table)


@streams_app.command("remove-sink")
def remove_sink_command(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a sink and the messages it has not published yet."""
    from conveyor.streams.sinks import remove_sink

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        dropped = remove_sink(session, name)
    console.print(f"removed stream sink {name} ({dropped} unpublished messages dropped)")


@streams_app.command("run")
def run(
    context: typer.Context,
    names: list[str] = typer.Argument(
        None, help="Sources to consume and sinks to relay (default: all enabled)."
    ),
    batch_size: int = typer.Option(500, "--batch-size", help="Messages per transaction."),
    sink_lease: float = typer.Option(
        30.0, "--sink-lease", help="Seconds a relay that died keeps its sinks from others."
    ),
    sink_batch: int = typer.Option(
        500, "--sink-batch", min=1, help="Messages a sink publishes per broker round trip."
    ),
    metrics_port: int = typer.Option(None, "--metrics-port", help="Serve /metrics here."),
    log_level: str = typer.Option("WARNING", "--log-level", help="e.g. INFO, WARNING."),
) -> None:
    """Run the sources' consumers and sinks' relays; Ctrl-C stops after the current batch."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from conveyor.streams.consumer import ConsumerTuning
    from conveyor.streams.relay import OutboxRelay, RelayTuning
    from conveyor.streams.runner import StreamRunner

    state: CliState = context.obj
    installation = state.installation
    sources, sinks = _split_names(state, names or [])
    runner = StreamRunner(installation, sources, ConsumerTuning(batch_size=batch_size))
    relay = OutboxRelay(
        installation, sinks, RelayTuning(batch_size=sink_batch, lease_seconds=sink_lease)
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop_metrics = _serve_metrics(state, metrics_port)
    threads = []
    if sources or not sinks:
        threads.append(runner.start(stop))
    if sinks or not sources:
        threads.append(relay.start(stop))
    console.print(f"consuming as {runner.consumer_name}; Ctrl-C stops", markup=False)
    try:
        _show_counts(runner, stop)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if stop_metrics is not None:
            stop_metrics()
    console.print("stopped; every committed batch was acknowledged")


def _split_names(state: CliState, names: list[str]) -> tuple[list[str], list[str]]:
    """The named sources (each must be enabled) and the named sinks."""
    from conveyor.streams.sinks import StreamSinkNotFoundError, get_sink
    from conveyor.streams.sources import StreamSourceNotFoundError, get_source

    sources, sinks = [], []
    with state.installation.read_sessions() as session:
        for name in names:
            try:
                enabled = get_source(session, name).enabled
            except StreamSourceNotFoundError:
                try:
                    get_sink(session, name)
                except StreamSinkNotFoundError:
                    raise StreamSourceNotFoundError(
                        f"no stream source or sink named {name!r}; `conveyor streams list` and "
                        "`conveyor streams sinks` show them"
                    ) from None
                sinks.append(name)
                continue
            if not enabled:
                raise InputRejectedError(
                    f"stream source {name!r} is disabled; `conveyor streams enable {name}` first"
                )
            sources.append(name)
    return sources, sinks


def _serve_metrics(state: CliState, port: int | None) -> Any:
    if port is None:
        return None
    from conveyor.monitoring.server import serve_metrics

    host = state.settings.api_host
    stop = serve_metrics(state.installation.metrics.registry, host, port)
    console.print(f"metrics on http://{host}:{port}/metrics")
    return stop


def _show_counts(runner: StreamRunner, stop: threading.Event) -> None:
    rates = _Rates()
    if not console.is_terminal:
        while not stop.wait(LOG_EVERY_SECONDS):
            console.print(_counts_line(runner), markup=False)
        return
    from rich.live import Live

    with Live(_counts_table(runner, rates), console=console, auto_refresh=False) as live:
        while not stop.wait(LIVE_REFRESH_SECONDS):
            live.update(_counts_table(runner, rates), refresh=True)


class _Rates:
    """Messages per second of each source between two refreshes."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, int]] = {}

    def of(self, name: str, taken: int) -> float:
        now = time.monotonic()
        before_at, before = self.last.get(name, (now, taken))
        self.last[name] = (now, taken)
        return (taken - before) / (now - before_at) if now > before_at else 0.0


def _counts_table(runner: StreamRunner, rates: _Rates) -> Table:
    table = Table(title="Stream consumers")
    for column in ("source", "state", "items", "duplicates", "dead letters", "msg/s", "lag"):
        table.add_column(column)
    for name, status in runner.statuses().items():
        taken = status.items + status.duplicates + status.dead_letters
        table.add_row(
            name,
            status.state if not status.error else f"{status.state}: {status.error}"[:80],
            str(status.items),
            str(status.duplicates),
            str(status.dead_letters),
            f"{rates.of(name, taken):.0f}",
            "?" if status.lag is None else str(status.lag),
        )
    return table


def _counts_line(runner: StreamRunner) -> str:
    parts = [
        f"{name}: {s.state} items={s.items} duplicates={s.duplicates} "
        f"dead_letters={s.dead_letters} lag={s.lag}"
        for name, s in runner.statuses().items()
    ]
    return "; ".join(parts) or "no enabled sources yet"
