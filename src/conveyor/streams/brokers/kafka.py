"""Kafka topics: ``kafka://HOST:PORT[,HOST:PORT...]/TOPIC``.

A source is a Kafka consumer group on the topic with automatic offset commits off: the offsets
of acknowledged messages are committed synchronously after the caller's commit, so a consumer
that dies re-reads from the last committed offset of each partition. Acknowledging a message
commits every earlier offset of its partition too, as Kafka offsets do; the consumer loop acks
whole batches in fetch order, so nothing unacknowledged is skipped. Options are passed to
librdkafka as they are (``security.protocol``, ``sasl.mechanism``, ``sasl.username``,
``sasl.password``, ``ssl.ca.location``, ...), except ``start`` (``earliest`` or ``latest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conveyor.errors import ConfigurationError
from conveyor.streams.brokers.base import Message, Outgoing

CONVEYOR_OPTIONS = ("start",)


@dataclass(frozen=True)
class TopicAddress:
    topic: str
    config: dict[str, Any]


def parse_url(url: str, options: Mapping[str, str]) -> TopicAddress:
    parts = urlsplit(url)
    topic = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not topic:
        raise ConfigurationError(
            "Kafka URL needs brokers and a topic: kafka://HOST:9092[,HOST:9092]/TOPIC"
            f" (got {url!r})"
        )
    servers = parts.netloc.rsplit("@", 1)[-1]
    config: dict[str, Any] = {"bootstrap.servers": servers}
    config.update({k: v for k, v in options.items() if k not in CONVEYOR_OPTIONS})
    return TopicAddress(topic, config)


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> KafkaConsumer:
    address = parse_url(url, options)
    config = address.config | {
        "group.id": group,
        "client.id": consumer_name,
        "enable.auto.commit": False,
        "auto.offset.reset": options.get("start", "earliest"),
    }
    consumer = Consumer(config)
    consumer.subscribe([address.topic])
    return KafkaConsumer(consumer, address.topic)


def open_producer(url: str, options: Mapping[str, str]) -> KafkaProducer:
    address = parse_url(url, options)
    config = address.config | {"enable.idempotence": True, "acks": "all"}
    return KafkaProducer(Producer(config), address.topic)


class KafkaConsumer:
    def __init__(self, consumer: Consumer, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        records = self.consumer.consume(max_messages, timeout_seconds)
        messages = []
        for record in records:
            error = record.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            messages.append(_message(record))
        return messages

    def ack(self, messages: Sequence[Message]) -> None:
        """Commit, per partition, the offset after the highest acknowledged one."""
        highest: dict[int, int] = {}
        for message in messages:
            partition, offset = cast(tuple[int, int], message.token)
            highest[partition] = max(offset, highest.get(partition, -1))
        if highest:
            offsets = [TopicPartition(self.topic, p, o + 1) for p, o in highest.items()]
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def lag(self) -> int | None:
        """High watermark minus committed offset, over the partitions this consumer holds."""
        assigned = self.consumer.assignment()
        if not assigned:
            return None
        total = 0
        for committed in self.consumer.committed(assigned, timeout=5):
            low, high = self.consumer.get_watermark_offsets(committed, timeout=5, cached=False)
            start = committed.offset if committed.offset >= 0 else low
            total += max(high - start, 0)
        return total

    def close(self) -> None:
        self.consumer.close()


def _message(record: Any) -> Message:
    identity = f"{record.topic()}/{record.partition()}/{record.offset()}"
    headers = {
        name: (value or b"").decode(errors="replace") for name, value in record.headers() or []
    }
    return Message(
        identity,
        record.value() or b"",
        record.key(),
        headers,
        (record.partition(), record.offset()),
    )


class KafkaProducer:
    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Idempotent, acks=all; returns once the delivery report says the broker has it."""
        self.publish_batch([Outgoing(payload, key, headers or {})])

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Produces them all, then waits for every delivery report (the idempotent producer
        keeps their order within a partition across its own retries)."""
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _record: Any) -> None:
            if error is not None:
                failures.append(error)

        for message in messages:
            headers: list[tuple[str, str | bytes | None]] = list(message.headers.items())
            self.producer.produce(
                self.topic, message.payload, message.key, headers=headers, on_delivery=delivered
            )
        if self.producer.flush(30) > 0:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "delivery not confirmed"))
        if failures:
            raise KafkaException(failures[0])

    def close(self) -> None:
        self.producer.flush(30)
