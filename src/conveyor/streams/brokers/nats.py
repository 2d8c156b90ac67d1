"""NATS JetStream streams:
``nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT][,HOST:PORT...]/STREAM[?subject=S&durable=D]``.

A source is a durable **pull** consumer on the stream (named ``durable``, default the source's
consumer group), with explicit acks: every consumer process of the group pulls from the same
durable consumer, so JetStream shares the messages between them. A message is acknowledged
after the caller's commit; one handed out and not acknowledged is redelivered once the
consumer's ``ack_wait`` has passed (a consumer closed cleanly naks what it holds, so those come
back at once). The identity is the stream name and the message's stream sequence, which
JetStream keeps across redeliveries. The stream is created if missing, with ``subject`` (default:
the stream's name) as its subject.

nats-py is asyncio-only while the seam is synchronous (the runner gives every source a plain
thread). Each consumer and producer therefore owns a private event loop on a daemon thread and
submits coroutines to it (:class:`_LoopThread`). ``asyncio.run`` per call would not do: a NATS
connection belongs to the loop that opened it, and its reader, pinger and reconnect tasks must
keep running between calls to ``fetch``. A loop of one's own also works when the caller already
runs a loop (the API server), where ``run_until_complete`` would fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from conveyor.errors import ConfigurationError
from conveyor.streams.brokers.base import Message, Outgoing

T = TypeVar("T")
logger = logging.getLogger(__name__)
MSG_ID_HEADER = "Nats-Msg-Id"  # JetStream drops a repeated id within the duplicate window
CALL_TIMEOUT = 30.0  # seconds a call may take beyond its own wait (connect, acks, info)
DEFAULT_ACK_WAIT = 30.0
DEFAULT_MAX_ACK_PENDING = 1000
NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_-]")  # durable and stream names: no . * > or spaces


@dataclass(frozen=True)
class StreamAddress:
    servers: list[str]
    stream: str
    subject: str | None  # None: every subject of an existing stream
    durable: str | None
    connect: dict[str, Any] = field(default_factory=dict)  # nats.connect keyword arguments


def parse_url(url: str, options: Mapping[str, str]) -> StreamAddress:
    parts = urlsplit(url)
    stream = unquote(parts.path.strip("/"))
    hosts = parts.netloc.rsplit("@", 1)[-1]
    if not hosts or not stream or NOT_IN_A_NAME.search(stream):
        raise ConfigurationError(
            "NATS URL needs a host and a stream name (letters, digits, - and _): "
            f"nats://HOST:4222/STREAM?subject=SUBJECT&durable=NAME (got {url!r})"
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    servers = [f"nats://{host}" for host in hosts.split(",")]
    return StreamAddress(
        servers,
        stream,
        query.get("subject"),
        query.get("durable"),
        _connect_options(parts.username, parts.password, options),
    )


def _connect_options(
    url_user: str | None, url_password: str | None, options: Mapping[str, str]
) -> dict[str, Any]:
    """Credentials (user and password, a token, a .creds file or an nkey seed) and TLS."""
    connect: dict[str, Any] = {}
    user = options.get("username") or unquote(url_user or "")
    password = options.get("password") or unquote(url_password or "")
    if user and password:
        connect.update(user=user, password=password)
    elif user or options.get("token"):  # nats://TOKEN@HOST, as the NATS tools write it
        connect["token"] = options.get("token") or user
    if options.get("creds"):
        connect["user_credentials"] = options["creds"]
    if options.get("nkeys_seed"):
        connect["nkeys_seed"] = options["nkeys_seed"]
    if options.get("tls", "").lower() == "true" or any(k.startswith("ssl_") for k in options):
        connect["tls"] = _tls_context(options)
    return connect


def _tls_context(options: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs") or None)
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile") or None)
    if options.get("ssl_check_hostname", "true").lower() == "false":
        context.check_hostname = False
    return context


class _LoopThread:
    """An asyncio loop of this adapter's own, run on a daemon thread; ``run`` waits for a
    coroutine from synchronous code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.done():  # the coroutine's own TimeoutError (the same class since 3.11)
                raise
            future.cancel()
            raise TimeoutError(f"NATS did not answer within {timeout:.0f} s") from None

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # a stuck task must not keep the loop alive
            self.run(_cancel_other_tasks(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


async def _log_error(error: Exception) -> None:
    # nats-py's default logs a traceback for every reset connection; the runner reports the
    # failure that matters (the next call raises), so one line is enough here.
    logger.warning("NATS: %s: %s", type(error).__name__, error)


async def _cancel_other_tasks() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _connect(address: StreamAddress, name: str) -> tuple[Client, JetStreamContext]:
    # No reconnecting inside nats-py: it would retry a refused first connect (a wrong password)
    # for two minutes, and hide a lost connection behind empty fetches. A lost connection
    # raises instead, and the runner reopens the consumer with its back-off, as for every broker.
    # Even so, nats-py tries each server of a first connect max_reconnect_attempts times, 2 s
    # apart (default 60: a broker that is down held the caller until CALL_TIMEOUT, and the error
    # shown was that timeout); 1 means each server is tried twice, the second time after 1 s.
    last_error: list[Exception] = []  # the latest only: the callback stays for the connection

    async def remember(error: Exception) -> None:
        last_error[:] = [error]
        await _log_error(error)

    client = Client()
    try:
        await client.connect(
            address.servers,
            name=name,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=1,
            error_cb=remember,
            **address.connect,
        )
    except nats.errors.NoServersError:
        why = f"{type(last_error[0]).__name__}: {last_error[0]}" if last_error else "no answer"
        servers = ", ".join(address.servers)
        raise ConnectionError(f"could not connect to NATS {servers}: {why}") from None
    return client, client.jetstream()


async def _ensure_stream(js: JetStreamContext, address: StreamAddress) -> None:
    try:
        await js.stream_info(address.stream)
    except nats.js.errors.NotFoundError:
        subjects = [address.subject or address.stream]
        config = StreamConfig(address.stream, subjects=subjects, storage=StorageType.FILE)
        await js.add_stream(config)


def _consumer_config(durable: str, address: StreamAddress, options: Mapping[str, str]) -> Any:
    start = options.get("start", "earliest")
    return ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=float(options.get("ack_wait_seconds", DEFAULT_ACK_WAIT)),
        max_ack_pending=int(options.get("max_ack_pending", DEFAULT_MAX_ACK_PENDING)),
        deliver_policy=DeliverPolicy.NEW if start == "latest" else DeliverPolicy.ALL,
        filter_subject=address.subject,
    )


async def _subscribe(
    js: JetStreamContext, address: StreamAddress, durable: str, options: Mapping[str, str]
) -> JetStreamContext.PullSubscription:
    """Bind to the durable consumer, creating it (and the stream) first if missing; options
    such as ``ack_wait_seconds`` apply when the consumer is created."""
    await _ensure_stream(js, address)
    try:
        await js.consumer_info(address.stream, durable)
    except nats.js.errors.NotFoundError:
        await js.add_consumer(address.stream, _consumer_config(durable, address, options))
    return await js.pull_subscribe_bind(durable, address.stream)


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> NatsConsumer:
    address = parse_url(url, options)
    durable = address.durable or NOT_IN_A_NAME.sub("_", group)
    loop = _LoopThread(f"nats-{consumer_name}")
    try:
        client, js = loop.run(_connect(address, consumer_name))
        subscription = loop.run(_subscribe(js, address, durable, options))
    except BaseException:
        loop.stop()
        raise
    return NatsConsumer(loop, client, subscription, address.stream)


def open_producer(url: str, options: Mapping[str, str]) -> NatsProducer:
    address = parse_url(url, options)
    subject = address.subject or address.stream
    if "*" in subject or ">" in subject:
        raise ConfigurationError(
            f"NATS producer: cannot publish to the wildcard subject {subject!r}; "
            "give a plain subject in the URL (?subject=readings.eu)"
        )
    loop = _LoopThread("nats-producer")
    try:
        client, js = loop.run(_connect(address, "conveyor-producer"))
        loop.run(_ensure_stream(js, address))
    except BaseException:
        loop.stop()
        raise
    dedupe = options.get("dedupe_by_key", "").lower() == "true"
    return NatsProducer(loop, client, js, address.stream, subject, dedupe)


class NatsConsumer:
    def __init__(
        self,
        loop: _LoopThread,
        client: Client,
        subscription: JetStreamContext.PullSubscription,
        stream: str,
    ) -> None:
        self.loop = loop
        self.client = client
        self.subscription = subscription
        self.stream = stream
        self._unacked: dict[int, Msg] = {}  # stream sequence -> message handed out, not acked

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        wait = max(timeout_seconds, 0.05)  # nats-py needs a positive expiry for a pull
        records = self.loop.run(self._pull(max_messages, wait), wait + CALL_TIMEOUT)
        messages = []
        for record in records:
            message = self._message(record)
            self._unacked[int(str(message.token))] = record
            messages.append(message)
        return messages

    async def _pull(self, max_messages: int, wait: float) -> list[Msg]:
        if not self.client.is_connected:
            raise ConnectionError("the NATS connection is down (reconnecting)")
        try:
            return await self.subscription.fetch(max_messages, wait)
        except TimeoutError:  # nats-py raises its own subclass or asyncio's (the builtin)
            return []

    def _message(self, record: Msg) -> Message:
        sequence = record.metadata.sequence.stream
        headers = dict(record.headers or {})
        key = headers.pop("key", None)
        identity = f"{self.stream}/{sequence}"
        return Message(identity, record.data, key.encode() if key else None, headers, sequence)

    def ack(self, messages: Sequence[Message]) -> None:
        records = [self._unacked.pop(int(str(m.token))) for m in messages]
        self.loop.run(self._acknowledge(records))

    async def _acknowledge(self, records: list[Msg]) -> None:
        # Acks are fire-and-forget publishes; a flush (PING/PONG) waits until the server has
        # read all of them, in order, so lag() read afterwards already counts them.
        for record in records:
            await record.ack()
        await self.client.flush()

    def lag(self) -> int | None:
        """Messages not yet delivered to the group plus those delivered and not acked, as the
        durable consumer (shared by the whole group) counts them."""
        info = self.loop.run(self.subscription.consumer_info())
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def close(self) -> None:
        """Nak what was handed out and not acked, so it is redelivered now rather than after
        ``ack_wait``; then close the connection and the loop."""
        try:
            if self.client.is_connected:
                self.loop.run(self._nak_and_close(list(self._unacked.values())))
        finally:
            self._unacked.clear()
            self.loop.stop()

    async def _nak_and_close(self, records: list[Msg]) -> None:
        for record in records:
            await record.nak()
        await self.client.close()  # flushes the naks first


class NatsProducer:
    """``dedupe_by_key`` (option): each message's key is its ``Nats-Msg-Id``, so JetStream
    drops a message whose key the stream stored within its duplicate window (the sinks' relay
    repeating a batch after a crash)."""

    def __init__(
        self,
        loop: _LoopThread,
        client: Client,
        js: JetStreamContext,
        stream: str,
        subject: str,
        dedupe: bool = False,
    ) -> None:
        self.loop = loop
        self.client = client
        self.js = js
        self.stream = stream
        self.subject = subject
        self.dedupe = dedupe

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Returns once JetStream acknowledged that the stream stored the message; raises on an
        error or no answer (a ``Nats-Msg-Id`` header makes JetStream drop a repeat within its
        duplicate window)."""
        self.publish_batch([Outgoing(payload, key, headers or {})])

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Sends them all in order, then waits for every publish acknowledgement."""
        self.loop.run(self._publish_all(messages), CALL_TIMEOUT + 5)

    async def _publish_all(self, messages: Sequence[Outgoing]) -> None:
        acknowledgements = []
        for message in messages:
            headers = dict(message.headers)
            if message.key is not None:
                headers["key"] = message.key.decode(errors="replace")
                if self.dedupe:
                    headers.setdefault(MSG_ID_HEADER, headers["key"])
            acknowledgements.append(
                await self.js.publish_async(
                    self.subject, message.payload, stream=self.stream, headers=headers or None
                )
            )
        await self._acknowledged(asyncio.gather(*acknowledgements))

    async def _acknowledged(self, acknowledgements: asyncio.Future[Any]) -> None:
        """Waits for the acknowledgements, failing as soon as the connection is lost: nats-py
        leaves the futures of a closed connection pending, which would hold the caller until
        CALL_TIMEOUT."""
        deadline = asyncio.get_running_loop().time() + CALL_TIMEOUT
        while not acknowledgements.done():
            if not self.client.is_connected:
                acknowledgements.cancel()
                raise ConnectionError("the NATS connection closed before JetStream acknowledged")
            if asyncio.get_running_loop().time() > deadline:
                acknowledgements.cancel()
                raise TimeoutError(f"JetStream did not acknowledge within {CALL_TIMEOUT:.0f} s")
            await asyncio.wait([acknowledgements], timeout=0.1)
        acknowledgements.result()  # raises a refused publish's error

    def close(self) -> None:
        try:
            if not self.client.is_closed:
                self.loop.run(self.client.close())
        finally:
            self.loop.stop()
