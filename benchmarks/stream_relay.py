"""How fast a stream sink's relay publishes: N items finished through the store's commit (their
outbox rows written as the controller writes them, SQLite), then `OutboxRelay.publish_batch`
run until the outbox is empty, per broker: Redis (with and without ``dedupe_seconds``),
RabbitMQ, NATS JetStream and Mosquitto on loopback, and a tansu (Kafka protocol) started here.

    .venv/bin/python benchmarks/stream_relay.py --items 3000 --batch 500 [--brokers redis,kafka]

Prints messages/s per broker (publish, confirmation and the outbox delete, not the commit that
wrote the rows). docs/streams.md (Sinks) has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import nats
import nats.js.errors
import pika
import redis
from confluent_kafka.admin import AdminClient, NewTopic

from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.streams.brokers import open_producer
from conveyor.streams.relay import OutboxRelay, RelayTuning
from conveyor.streams.sinks import SinkConfig, add_sink
from support.brokers import OwnTansu, running
from support.sinks import finish_items

BROKERS = ("redis", "redis-dedupe", "rabbitmq", "kafka", "nats", "mqtt")


def relay_rate(url: str, options: dict[str, str], items: int, batch: int) -> tuple[int, float]:
    """(messages published, seconds) for ``items`` finished items' outbox rows."""
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            Path(folder) / "home",
            database_url=f"sqlite:///{folder}/conveyor.db",
            pipelines=["support.pipelines"],
        )
        installation = Installation(settings)
        with installation.sessions.begin() as session:
            add_sink(session, SinkConfig("results", url, "single", options))
        finish_items(installation, items)
        relay = OutboxRelay(installation, ["results"], RelayTuning(batch_size=batch))
        producer = open_producer(url, options)
        started, published = time.perf_counter(), 0
        while count := relay.publish_batch("results", producer):
            published += count
        seconds = time.perf_counter() - started
        producer.close()
        installation.close()
    return published, seconds


async def _delete_stream(name: str) -> None:
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


@contextmanager
def urls(tag: str) -> Iterator[dict[str, tuple[str, dict[str, str]]]]:
    """Each broker's sink URL and options; what they made is deleted afterwards."""
    with running(OwnTansu(Path(tempfile.mkdtemp()))) as tansu:
        admin = AdminClient({"bootstrap.servers": tansu.bootstrap})
        admin.create_topics([NewTopic("results", num_partitions=1)])["results"].result(10)
        yield {
            "redis": (f"redis://127.0.0.1:6379/{tag}", {}),
            "redis-dedupe": (f"redis://127.0.0.1:6379/{tag}-dd", {"dedupe_seconds": "60"}),
            "rabbitmq": (f"amqp://guest:guest@127.0.0.1:5672/?queue={tag}", {}),
            "kafka": (f"kafka://{tansu.bootstrap}/results", {}),
            "nats": (f"nats://127.0.0.1:4222/{tag}?subject={tag}.results", {}),
            "mqtt": (f"mqtt://127.0.0.1:1883/{tag}/results", {}),
        }
    client = redis.Redis()
    client.delete(tag, f"{tag}-dd", *client.keys(f"{{{tag}-dd}}:*"))
    connection = pika.BlockingConnection()
    connection.channel().queue_delete(tag)
    connection.close()
    with contextlib.suppress(nats.js.errors.NotFoundError):  # NATS was not among --brokers
        asyncio.run(_delete_stream(tag))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=RelayTuning().batch_size)
    parser.add_argument("--brokers", default=",".join(BROKERS))
    arguments = parser.parse_args()
    with urls(f"bench-relay-{uuid.uuid4().hex[:8]}") as by_broker:
        for name in arguments.brokers.split(","):
            url, options = by_broker[name]
            count, seconds = relay_rate(url, options, arguments.items, arguments.batch)
            print(f"{name:13s} {count} messages in {seconds:5.2f} s: {count / seconds:8,.0f}/s")


if __name__ == "__main__":
    main()
