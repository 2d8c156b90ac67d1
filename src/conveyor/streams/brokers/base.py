"""The seam between Conveyor's stream logic and a message broker.

Every broker adapter (``brokers/kafka.py``, ``rabbitmq.py``, ``nats.py``, ``redis.py``,
``mqtt.py``) implements :class:`BrokerConsumer` and :class:`BrokerProducer` and nothing else;
the consumer loop, deduplication, dead letters, backpressure and the outbox live above this seam
and never import a broker library.

Delivery contract: a message handed out by :meth:`BrokerConsumer.fetch` is redelivered (to this
or another consumer of the same group) until :meth:`BrokerConsumer.ack` has been called for it,
so the caller acks only after the item it became is committed. ``Message.identity`` is stable
across redeliveries (topic/partition/offset, a stream entry id, a JetStream sequence, a
publisher's message id), which makes a redelivered message recognisable in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Message:
    identity: str  # unique and stable within the source across redeliveries
    payload: bytes
    key: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token: object = None  # what the adapter needs to ack this message; opaque above the seam


@dataclass(frozen=True)
class Outgoing:
    """A message to publish. ``message_id``: the publisher's stable id for it (the same on
    every attempt), carried where the broker has a place for one (RabbitMQ's ``message_id``
    property, an MQTT 5 user property); None: a fresh id per publish."""

    payload: bytes
    key: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None


class BrokerConsumer(Protocol):
    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        """Up to ``max_messages``, waiting at most ``timeout_seconds`` for the first one."""
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """Commit the offset / ack: these messages are not to be delivered again."""
        ...

    def lag(self) -> int | None:
        """Messages published and not yet acked by this group, where the broker can tell."""
        ...

    def close(self) -> None: ...


class BrokerProducer(Protocol):
    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish one message and return once the broker has confirmed it (raise otherwise)."""
        ...

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Publish the messages in order and return once the broker has confirmed every one.
        Raise if any is not confirmed: then any of them may have been published, and the
        caller publishes the whole batch again (its consumers dedupe by key)."""
        ...

    def close(self) -> None: ...
