"""Broker adapters by URL scheme, imported only when a source of that scheme is opened.

Each adapter module exposes ``open_consumer(url, group, consumer_name, options)`` and
``open_producer(url, options)`` (the seam is in :mod:`conveyor.streams.brokers.base`);
``options`` carries TLS and credential settings that do not belong in a URL.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

from conveyor.errors import ConfigurationError, InputRejectedError
from conveyor.streams.brokers.base import BrokerConsumer, BrokerProducer

ADAPTERS = {
    "kafka": "kafka",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "nats": "nats",
    "redis": "redis",
    "rediss": "redis",
    "mqtt": "mqtt",
    "mqtts": "mqtt",
    "file": "file",  # a JSON Lines file on this machine: no broker (brokers/file.py)
}


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> BrokerConsumer:
    """A consumer of ``url`` in consumer group ``group`` (load is shared within a group)."""
    consumer: BrokerConsumer = adapter(url).open_consumer(url, group, consumer_name, options)
    return consumer


def open_producer(url: str, options: Mapping[str, str]) -> BrokerProducer:
    producer: BrokerProducer = adapter(url).open_producer(url, options)
    return producer


def adapter(url: str) -> ModuleType:
    """The adapter module for the URL's scheme; a clear error for an unknown scheme or a
    broker library that is not installed."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ADAPTERS:
        known = ", ".join(f"{s}://" for s in ADAPTERS)
        raise ConfigurationError(f"stream URL {redact(url)!r}: unknown scheme; use one of {known}")
    module = f"conveyor.streams.brokers.{ADAPTERS[scheme]}"
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigurationError(
            f"the {scheme}:// adapter cannot load ({error}); install its broker library "
            "(docs/streams.md lists them)."
        ) from error


def check_url(url: str) -> None:
    """Refuse a URL no adapter serves, before it is stored as a source."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InputRejectedError(
                f"stream URL {url!r}: a file stream names an absolute path with three "
                "slashes, e.g. file:///home/me/readings.jsonl"
            )
        return
    if parts.scheme.lower() not in ADAPTERS or not parts.hostname:
        known = ", ".join(f"{s}://HOST/..." for s in ADAPTERS if s != "file")
        raise InputRejectedError(
            f"stream URL {redact(url)!r} is not one of {known} or file:///PATH"
        )


def redact(url: str) -> str:
    """The URL without its password, for lists, logs and error messages."""
    parts = urlsplit(url, allow_fragments=False)  # an MQTT filter's `#` is not a fragment
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
