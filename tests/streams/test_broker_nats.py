"""The NATS JetStream adapter against the NATS server (JetStream on) on loopback: the shared
conformance checks on the shared server; then, against a NATS server of its own (the shared one
is never restarted), a stream source end to end while the consumer is SIGKILLed twice and the
server is killed and restarted mid-stream."""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import nats
import pytest

from conveyor.errors import ConfigurationError
from conveyor.installation import Installation
from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.brokers.base import Outgoing
from conveyor.streams.brokers.nats import parse_url
from support import broker_conformance as conformance
from support.brokers import OwnNats, reachable, running
from support.certificates import self_signed_certificate
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)

HOST, PORT = "127.0.0.1", 4222
OPTIONS: dict[str, str] = {}
# a killed consumer's messages come back after ack_wait: short here to keep the test short
SOURCE_OPTIONS = {"ack_wait_seconds": "2"}


async def _admin(port: int, stream: str, durable: str | None) -> int:
    """Delete the stream (durable None), or count what the durable consumer has left."""
    client = await nats.connect(f"nats://{HOST}:{port}")
    try:
        js = client.jetstream()
        if durable is None:
            await js.delete_stream(stream)
            return 0
        info = await js.consumer_info(stream, durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    finally:
        await client.close()


def left_in(port: int, stream: str, durable: str = "conveyor-readings") -> int:
    return asyncio.run(_admin(port, stream, durable))


@pytest.fixture
def stream_name() -> Iterator[str]:
    if not reachable(PORT):
        if os.environ.get("CI"):
            pytest.fail(f"NATS is not reachable on {HOST}:{PORT}")
        pytest.skip("NATS is not reachable on loopback")
    name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(_admin(PORT, name, None))


@pytest.fixture
def stream_url(stream_name: str) -> str:
    return f"nats://{HOST}:{PORT}/{stream_name}?subject={stream_name}.readings"


def test_publish_then_fetch_all_with_unique_identities(stream_url: str) -> None:
    conformance.check_publish_fetch_unique(stream_url, "g", OPTIONS)


def test_a_batch_arrives_whole_and_in_order(stream_url: str) -> None:
    conformance.check_publish_batch_in_order(stream_url, "g", OPTIONS)


def test_dedupe_by_key_drops_a_repeated_batch(stream_url: str) -> None:
    """What the sinks' relay relies on: a batch published again after a crash is dropped."""
    producer = open_producer(stream_url, {"dedupe_by_key": "true"})
    try:
        batch = [Outgoing(b'{"n": 1}', b"item-1"), Outgoing(b'{"n": 2}', b"item-2")]
        producer.publish_batch(batch)
        producer.publish_batch(batch)
        producer.publish(b'{"n": 3}')  # no key: nothing to dedupe by
        producer.publish(b'{"n": 3}')
    finally:
        producer.close()
    consumer = open_consumer(stream_url, "g", "one", OPTIONS)
    try:
        messages = conformance.fetch_all(consumer, 5, timeout=5)
        assert [(m.key, m.payload) for m in messages] == [
            (b"item-1", b'{"n": 1}'),
            (b"item-2", b'{"n": 2}'),
            (None, b'{"n": 3}'),
            (None, b'{"n": 3}'),
        ]
        consumer.ack(messages)
    finally:
        consumer.close()


def test_unacked_messages_come_back_acked_ones_do_not(stream_url: str) -> None:
    conformance.check_unacked_redelivered_acked_not(stream_url, "g", OPTIONS)


def test_two_consumers_share_the_durable_consumer(stream_url: str) -> None:
    conformance.check_group_shares(stream_url, "g", OPTIONS)


def test_lag_falls_as_messages_are_acked(stream_url: str) -> None:
    conformance.check_lag_decreases(stream_url, "g", OPTIONS)


def running_nats(folder: Path, arguments: Sequence[str] = ()) -> AbstractContextManager[OwnNats]:
    return running(OwnNats(folder, arguments))


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnNats]:
    with running_nats(tmp_path / "nats") as server:
        yield server


def round_trip(url: str, options: dict[str, str]) -> None:
    conformance.publish(url, 3, options)
    consumer = open_consumer(url, "g", "one", options)
    try:
        messages = conformance.fetch_all(consumer, 3)
        assert conformance.payload_numbers(messages) == [0, 1, 2]
        consumer.ack(messages)
    finally:
        consumer.close()


def test_user_and_password_from_the_url_or_the_options(tmp_path: Path) -> None:
    with running_nats(tmp_path / "nats", ["--user", "conveyor", "--pass", "s3cret"]) as server:
        address = f"{HOST}:{server.port}/readings"
        round_trip(f"nats://conveyor:s3cret@{address}", {})
        round_trip(f"nats://{address}", {"username": "conveyor", "password": "s3cret"})
        with pytest.raises(nats.errors.Error, match="Authorization"):
            open_producer(f"nats://conveyor:wrong@{address}", {})


def test_a_token_in_the_url(tmp_path: Path) -> None:
    with running_nats(tmp_path / "nats", ["--auth", "t0ken"]) as server:
        round_trip(f"nats://t0ken@{HOST}:{server.port}/readings", {})


def test_tls_with_the_servers_certificate_authority(tmp_path: Path) -> None:
    certificate, key = self_signed_certificate(tmp_path)
    arguments = ["--tls", "--tlscert", str(certificate), "--tlskey", str(key)]
    with running_nats(tmp_path / "nats", arguments) as server:
        url = f"nats://{HOST}:{server.port}/readings"
        round_trip(url, {"ssl_ca_certs": str(certificate)})
        with pytest.raises(ssl.SSLError):
            open_producer(url, {"tls": "true"})  # the system's authorities do not know it


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_messages_become_one_item_each_while_the_consumer_is_killed_twice_and_nats_restarted(
    stream_installation: Installation, own_nats: OwnNats, tmp_path: Path
) -> None:
    url = f"nats://{HOST}:{own_nats.port}/readings"
    add_test_source(stream_installation, url, SOURCE_OPTIONS)
    total = publish_records_and_poison(url, MESSAGES)

    consume_while_killed_twice(
        stream_installation,
        total,
        tmp_path / "streams-run.log",
        lambda: left_in(own_nats.port, "readings") == 0,
        own_nats.crash_and_restart,
    )

    assert_exactly_once(stream_installation, MESSAGES)


def test_the_url_carries_servers_stream_subject_durable_and_credentials() -> None:
    address = parse_url("nats://t0ken@h1:4222,h2:4223/readings?subject=readings.>&durable=d", {})
    assert address.servers == ["nats://h1:4222", "nats://h2:4223"]
    assert (address.stream, address.subject, address.durable) == ("readings", "readings.>", "d")
    assert address.connect == {"token": "t0ken"}
    with_user = parse_url("nats://u:p%40ss@h/s", {"creds": "/etc/nats/app.creds"})
    assert with_user.connect == {
        "user": "u",
        "password": "p@ss",
        "user_credentials": "/etc/nats/app.creds",
    }
    with pytest.raises(ConfigurationError, match="stream name"):
        parse_url("nats://h/readings.eu", {})
