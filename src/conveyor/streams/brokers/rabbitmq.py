"""RabbitMQ queues: ``amqp://[USER:PASSWORD@]HOST[:PORT]/[VHOST]?queue=NAME`` (``amqps://`` for
TLS; the default vhost ``/`` is written as an empty path or ``%2F``).

A source consumes one durable queue (declared if missing); every consumer of the source's
group reads the same queue, so RabbitMQ shares its messages between them. Messages are
acknowledged one by one after the commit; a consumer that disconnects leaves its unacknowledged
messages to be redelivered. Delivery tags are per channel and change on redelivery, so the
identity comes from the publisher's ``message_id`` property; without one it is a SHA-256 of the
payload, which makes two equal payloads one message (publishers should set ``message_id``;
:class:`RabbitProducer` always does).
"""

from __future__ import annotations

import hashlib
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, ReturnedMessage

from conveyor.errors import ConfigurationError
from conveyor.streams.brokers.base import Message, Outgoing

DEFAULT_PREFETCH = 500


@dataclass(frozen=True)
class QueueAddress:
    queue: str
    parameters: pika.ConnectionParameters


def parse_url(url: str, options: Mapping[str, str]) -> QueueAddress:
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    queue = query.get("queue", "")
    if not parts.hostname or not queue:
        raise ConfigurationError(
            "RabbitMQ URL needs a host and a queue: amqp://USER:PASSWORD@HOST:5672/VHOST?queue=NAME"
            f" (got {url!r})"
        )
    credentials = pika.PlainCredentials(
        options.get("username") or unquote(parts.username or "guest"),
        options.get("password") or unquote(parts.password or "guest"),
    )
    secure = parts.scheme.lower() == "amqps"
    parameters = pika.ConnectionParameters(
        host=parts.hostname,
        port=parts.port or (5671 if secure else 5672),
        virtual_host=unquote(parts.path[1:]) or "/",
        credentials=credentials,
        heartbeat=int(options.get("heartbeat", "60")),
        blocked_connection_timeout=60,
        ssl_options=pika.SSLOptions(_tls_context(options), parts.hostname) if secure else None,
    )
    return QueueAddress(queue, parameters)


def _tls_context(options: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs") or None)
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile") or None)
    if options.get("ssl_check_hostname", "true").lower() == "false":
        context.check_hostname = False
    return context


def _open_channel(address: QueueAddress) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(address.parameters)
    channel = connection.channel()
    channel.queue_declare(address.queue, durable=True)
    return connection, channel


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> RabbitConsumer:
    # The group is the queue: RabbitMQ shares a queue's messages among its consumers.
    address = parse_url(url, options)
    connection, channel = _open_channel(address)
    channel.basic_qos(prefetch_count=int(options.get("prefetch", DEFAULT_PREFETCH)))
    return RabbitConsumer(connection, channel, address.queue, consumer_name)


def open_producer(url: str, options: Mapping[str, str]) -> RabbitProducer:
    address = parse_url(url, options)
    connection, channel = _open_channel(address)
    channel.confirm_delivery()
    return RabbitProducer(connection, channel, address.queue)


class RabbitConsumer:
    def __init__(
        self,
        connection: pika.BlockingConnection,
        channel: BlockingChannel,
        queue: str,
        name: str,
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.queue = queue
        self._received: list[Message] = []
        self._unacked: set[int] = set()  # delivered to this consumer (prefetch), not yet acked
        channel.basic_consume(
            queue, self._on_message, consumer_tag=f"{name}-{uuid.uuid4().hex[:8]}"
        )

    def _on_message(
        self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        self._unacked.add(method.delivery_tag)
        self._received.append(_message(self.queue, method.delivery_tag, properties, body))

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        deadline = time.monotonic() + timeout_seconds
        self.connection.process_data_events(time_limit=0)
        while not self._received and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=deadline - time.monotonic())
        while 0 < len(self._received) < max_messages:  # take what else has already arrived
            before = len(self._received)
            self.connection.process_data_events(time_limit=0)
            if len(self._received) == before:
                break
        batch, self._received = self._received[:max_messages], self._received[max_messages:]
        return batch

    def ack(self, messages: Sequence[Message]) -> None:
        tags = {int(str(message.token)) for message in messages}
        if not tags:
            return
        highest = max(tags)
        if all(tag in tags for tag in self._unacked if tag <= highest):
            # One frame for the batch (a frame per message bound the rate at ~1,300/s): every
            # message this channel delivered up to ``highest`` is in it.
            self.channel.basic_ack(delivery_tag=highest, multiple=True)
            self._unacked = {tag for tag in self._unacked if tag > highest}
            return
        for tag in sorted(tags):
            self.channel.basic_ack(delivery_tag=tag)
            self._unacked.discard(tag)

    def lag(self) -> int | None:
        """Messages ready in the queue plus those this consumer holds unacknowledged (RabbitMQ's
        count leaves out every consumer's unacknowledged messages; other consumers' are not
        known here)."""
        self.connection.process_data_events(time_limit=0)
        declared = self.channel.queue_declare(self.queue, passive=True)
        return int(declared.method.message_count) + len(self._unacked)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def _message(queue: str, tag: int, properties: pika.BasicProperties, body: bytes) -> Message:
    message_id = properties.message_id or f"sha256:{hashlib.sha256(body).hexdigest()}"
    headers = {str(k): str(v) for k, v in (properties.headers or {}).items() if k != "key"}
    raw_key = (properties.headers or {}).get("key")
    key = raw_key.encode() if isinstance(raw_key, str) else raw_key
    return Message(f"{queue}/{message_id}", body, key, headers, tag)


class RabbitProducer:
    """``publish`` on a channel with publisher confirms; ``publish_batch`` on a second channel
    in transaction mode (a channel cannot be both), so a batch costs one round trip."""

    def __init__(
        self, connection: pika.BlockingConnection, channel: BlockingChannel, queue: str
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.queue = queue
        self._batch_channel: BlockingChannel | None = None
        self._returned: list[ReturnedMessage] = []

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Persistent, with a fresh message_id, returning once the broker confirmed it
        (pika raises on a nack or an unroutable message)."""
        properties = _properties(Outgoing(payload, key, headers or {}))
        self.channel.basic_publish("", self.queue, payload, properties, mandatory=True)

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Every message in one AMQP transaction: RabbitMQ answers the commit once it has
        routed them all (and written persistent messages of durable queues to disk); a message
        it could not route (the queue was deleted) comes back before that answer."""
        channel = self._transaction_channel()
        for message in messages:
            properties = _properties(message)
            channel.basic_publish("", self.queue, message.payload, properties, mandatory=True)
        channel.tx_commit()
        self.connection.process_data_events(time_limit=0)
        if self._returned:
            returned, self._returned = self._returned, []
            raise pika.exceptions.UnroutableError(returned)

    def _transaction_channel(self) -> BlockingChannel:
        if self._batch_channel is None or not self._batch_channel.is_open:
            channel = self.connection.channel()
            channel.add_on_return_callback(self._on_returned)
            channel.tx_select()
            self._batch_channel = channel
        return self._batch_channel

    def _on_returned(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._returned.append(ReturnedMessage(method, properties, body))

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def _properties(message: Outgoing) -> pika.BasicProperties:
    headers: dict[str, Any] = dict(message.headers)
    if message.key is not None:
        headers["key"] = message.key.decode(errors="replace")
    return pika.BasicProperties(
        message_id=message.message_id or uuid.uuid4().hex,
        delivery_mode=2,
        headers=headers or None,
    )
