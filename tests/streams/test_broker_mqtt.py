"""The MQTT adapter against Mosquitto: the shared conformance checks on the Mosquitto on
loopback; then, against a Mosquitto of its own (the shared one keeps its default queue limit of
1,000 messages per offline session and is never restarted), a stream source end to end while
the consumer is SIGKILLed twice and the broker is restarted mid-stream."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conveyor.errors import ConfigurationError
from conveyor.installation import Installation
from conveyor.streams.brokers import open_consumer, open_producer, redact
from conveyor.streams.brokers.mqtt import parse_url
from support import broker_conformance as conformance
from support.brokers import OwnMosquitto, reachable, running
from support.certificates import self_signed_certificate
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)

HOST, PORT = "127.0.0.1", 1883
OPTIONS: dict[str, str] = {}


def end_session(port: int, client_id: str) -> None:
    """Connect with a clean start and no expiry: the broker forgets the session."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(HOST, port, clean_start=True)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def subscribe_once(url: str) -> None:
    """MQTT keeps no log: the source's session must exist before anything is published."""
    open_consumer(url, "g", "one", OPTIONS).close()


@pytest.fixture
def topic_url() -> Iterator[str]:
    if not reachable(PORT):
        if os.environ.get("CI"):
            pytest.fail(f"Mosquitto is not reachable on {HOST}:{PORT}")
        pytest.skip("Mosquitto is not reachable on loopback")
    name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    url = f"mqtt://{HOST}:{PORT}/{name}/readings?client_id={name}"
    subscribe_once(url)
    yield url
    end_session(PORT, name)


def test_publish_then_fetch_all_with_unique_identities(topic_url: str) -> None:
    conformance.check_publish_fetch_unique(topic_url, "g", OPTIONS)


def test_a_batch_arrives_whole_and_in_order(topic_url: str) -> None:
    conformance.check_publish_batch_in_order(topic_url, "g", OPTIONS)


def test_unacked_messages_come_back_acked_ones_do_not(topic_url: str) -> None:
    conformance.check_unacked_redelivered_acked_not(topic_url, "g", OPTIONS)


def test_lag_is_unknown(topic_url: str) -> None:
    consumer = open_consumer(topic_url, "g", "one", OPTIONS)
    assert consumer.lag() is None
    consumer.close()


def publish_plain(topic_url: str, payloads: list[bytes]) -> None:
    """As a device publishes: MQTT 3.1.1, no message_id property."""
    topic = topic_url.split("/", 3)[3].split("?")[0]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(HOST, PORT)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_identity_from_a_payload_field_or_else_the_payload_hash(topic_url: str) -> None:
    readings = [{"reading_id": "w-17/1", "pulse": 72}, {"reading_id": "w-17/2", "pulse": 72}]
    publish_plain(topic_url, [json.dumps(r).encode() for r in readings] + [b"same", b"same"])
    consumer = open_consumer(topic_url, "g", "one", {"identity_field": "reading_id"})
    messages = conformance.fetch_all(consumer, 4)
    consumer.ack(messages)
    consumer.close()

    topic = topic_url.split("/", 3)[3].split("?")[0]
    identities = [m.identity.removeprefix(f"{topic}/") for m in messages]
    assert identities[:2] == ["reading_id:w-17/1", "reading_id:w-17/2"]
    assert identities[2] == identities[3]  # equal payloads are one message
    assert identities[2].startswith("sha256:")


def test_urls_without_a_topic_or_with_a_filter_to_publish_to_are_refused() -> None:
    with pytest.raises(Exception, match=r"host and a topic"):
        open_producer(f"mqtt://{HOST}:{PORT}/", OPTIONS)
    with pytest.raises(Exception, match="cannot publish to the topic filter"):
        open_producer(f"mqtt://{HOST}:{PORT}/a/#", OPTIONS)


def running_mosquitto(
    folder: Path, settings: str = "allow_anonymous true\n"
) -> AbstractContextManager[OwnMosquitto]:
    return running(OwnMosquitto(folder, settings))


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[OwnMosquitto]:
    with running_mosquitto(tmp_path / "mosquitto") as server:
        yield server


def test_user_and_password_over_tls(tmp_path: Path) -> None:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    certificate, key = self_signed_certificate(folder)
    passwords = folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "conveyor", "s3cret"], check=True
    )
    settings = f"allow_anonymous false\npassword_file {passwords}\n"
    settings += f"certfile {certificate}\nkeyfile {key}\n"
    with running_mosquitto(folder, settings) as server:
        address = f"{HOST}:{server.port}/devices/readings?client_id=tls-test"
        tls = {"ssl_ca_certs": str(certificate)}
        open_consumer(f"mqtts://conveyor:s3cret@{address}", "g", "one", tls).close()
        conformance.publish(f"mqtts://conveyor:s3cret@{address}", 3, tls)
        consumer = open_consumer(
            f"mqtts://{address}", "g", "one", tls | {"username": "conveyor", "password": "s3cret"}
        )
        messages = conformance.fetch_all(consumer, 3)
        consumer.ack(messages)
        consumer.close()
        assert conformance.payload_numbers(messages) == [0, 1, 2]
        with pytest.raises(ConnectionError, match="refused"):
            open_producer(f"mqtts://conveyor:wrong@{address}", tls)
        with pytest.raises(ssl.SSLError):
            open_producer(f"mqtts://conveyor:s3cret@{address}", {})  # an unknown authority


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_messages_become_one_item_each_while_the_consumer_is_killed_twice_and_mqtt_restarted(
    stream_installation: Installation, own_mosquitto: OwnMosquitto, tmp_path: Path
) -> None:
    url = f"mqtt://{HOST}:{own_mosquitto.port}/devices/readings"
    add_test_source(stream_installation, url)
    open_consumer(url, "conveyor-readings", "first", {}).close()  # the session, before publishing
    total = publish_records_and_poison(url, MESSAGES)

    consume_while_killed_twice(
        stream_installation,
        total,
        tmp_path / "streams-run.log",
        restart_broker=own_mosquitto.restart,
    )

    assert_exactly_once(stream_installation, MESSAGES)
    consumer = open_consumer(url, "conveyor-readings", "last", {})
    assert consumer.fetch(100, 2.0) == []  # nothing left unacknowledged in the session
    consumer.close()


def test_the_url_carries_the_filter_with_its_wildcards_the_qos_and_the_client_id() -> None:
    address = parse_url("mqtt://broker/wearables/+/readings/#?qos=2&client_id=c1", {})
    assert (address.host, address.port, address.topic) == ("broker", 1883, "wearables/+/readings/#")
    assert (address.qos, address.client_id, address.secure) == (2, "c1", False)
    secure = parse_url("mqtts://u:p@broker/a", {"client_id": "c2"})
    assert (secure.port, secure.secure, secure.client_id, secure.qos) == (8883, True, "c2", 1)
    with pytest.raises(ConfigurationError, match="qos must be 1 or 2"):
        parse_url("mqtt://broker/a?qos=0", {})
    assert redact("mqtt://u:secret@broker/a/#") == "mqtt://u:***@broker/a/#"
