"""Checks every broker adapter must pass, called by each broker's test with a fresh URL.

They talk to the adapter only through the seam (``open_consumer``/``open_producer``), so a
broker that passes them works under the stream consumer loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.brokers.base import BrokerConsumer, Message, Outgoing


def publish(url: str, count: int, options: Mapping[str, str], start: int = 0) -> None:
    producer = open_producer(url, options)
    try:
        for n in range(start, start + count):
            producer.publish(f'{{"n": {n}}}'.encode(), key=str(n).encode(), headers={"h": "v"})
    finally:
        producer.close()


def fetch_all(consumer: BrokerConsumer, count: int, timeout: float = 15) -> list[Message]:
    """Fetch until ``count`` messages arrived (or the time is up)."""
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found.extend(consumer.fetch(count - len(found), 1.0))
    return found


def payload_numbers(messages: Sequence[Message]) -> list[int]:
    return sorted(int(m.payload.decode()[6:-1]) for m in messages)


def check_publish_fetch_unique(url: str, group: str, options: Mapping[str, str]) -> None:
    publish(url, 20, options)
    consumer = open_consumer(url, group, "one", options)
    try:
        messages = fetch_all(consumer, 20)
        assert payload_numbers(messages) == list(range(20))
        assert len({m.identity for m in messages}) == 20
        consumer.ack(messages)
    finally:
        consumer.close()


def check_publish_batch_in_order(url: str, group: str, options: Mapping[str, str]) -> None:
    """A batch arrives whole and in order (one key: one Kafka partition), keys and headers
    passed through; a single message after it follows it."""
    batch = [Outgoing(f'{{"n": {n}}}'.encode(), b"same", {"h": str(n)}) for n in range(60)]
    producer = open_producer(url, options)
    try:
        producer.publish_batch(batch)
        producer.publish(b'{"n": 60}', key=b"same", headers={"h": "60"})
    finally:
        producer.close()
    consumer = open_consumer(url, group, "one", options)
    messages: list[Message] = []
    deadline = time.monotonic() + 15
    try:
        while len(messages) < 61 and time.monotonic() < deadline:
            batch = consumer.fetch(61 - len(messages), 1.0)
            consumer.ack(batch)  # as it goes: MQTT brokers hold back past their in-flight limit
            messages.extend(batch)
    finally:
        consumer.close()
    assert [int(m.payload.decode()[6:-1]) for m in messages] == list(range(61))
    assert [m.headers["h"] for m in messages] == [str(n) for n in range(61)]
    assert {m.key for m in messages} == {b"same"}


def check_unacked_redelivered_acked_not(url: str, group: str, options: Mapping[str, str]) -> None:
    """Ack half, close, reopen: exactly the other half comes back, with the same identities."""
    publish(url, 10, options)
    consumer = open_consumer(url, group, "one", options)
    first = fetch_all(consumer, 10)
    assert len(first) == 10
    acked, left = first[:5], first[5:]
    consumer.ack(acked)
    consumer.close()
    again = open_consumer(url, group, "one", options)
    try:
        second = fetch_all(again, 5)
        assert sorted(m.identity for m in second) == sorted(m.identity for m in left)
        assert again.fetch(10, 1.0) == []
        again.ack(second)
    finally:
        again.close()


def check_group_shares(url: str, group: str, options: Mapping[str, str]) -> None:
    """Two consumers of a group: together they get every message once."""
    one = open_consumer(url, group, "one", {**options, "prefetch": "5"})
    two = open_consumer(url, group, "two", {**options, "prefetch": "5"})
    publish(url, 40, options)
    try:
        seen: list[Message] = []
        deadline = time.monotonic() + 20
        per_consumer = {"one": 0, "two": 0}
        while len(seen) < 40 and time.monotonic() < deadline:
            for name, consumer in (("one", one), ("two", two)):
                batch = consumer.fetch(5, 0.3)
                per_consumer[name] += len(batch)
                seen.extend(batch)
                consumer.ack(batch)
        assert payload_numbers(seen) == list(range(40))
        assert len({m.identity for m in seen}) == 40
        assert per_consumer["one"] > 0 and per_consumer["two"] > 0, per_consumer
    finally:
        one.close()
        two.close()


def check_lag_decreases(url: str, group: str, options: Mapping[str, str]) -> None:
    """Fetched and not acknowledged still counts as lag; acknowledged does not."""
    consumer = open_consumer(url, group, "one", options)
    try:
        publish(url, 10, options)
        messages = fetch_all(consumer, 10)
        assert len(messages) == 10
        assert consumer.lag() == 10
        consumer.ack(messages[:4])
        assert wait_lag(consumer, lambda lag: lag == 6) == 6
        consumer.ack(messages[4:])
        assert wait_lag(consumer, lambda lag: lag == 0) == 0
    finally:
        consumer.close()


def wait_lag(consumer: BrokerConsumer, good: Callable[[int], bool], timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while True:
        lag = consumer.lag()
        assert lag is not None
        if good(lag) or time.monotonic() > deadline:
            return lag
        time.sleep(0.2)
