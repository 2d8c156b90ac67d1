"""Adapters by URL scheme: loaded only when used, unknown schemes refused, passwords hidden."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conveyor.errors import ConfigurationError, InputRejectedError
from conveyor.streams.brokers import adapter, check_url, redact
from conveyor.streams.brokers.redis import parse_url


def test_no_broker_library_loads_until_a_source_of_its_scheme_opens() -> None:
    code = (
        "import sys, conveyor.streams.brokers, conveyor.streams.runner;"
        "print(sorted(m for m in ('redis', 'confluent_kafka', 'pika', 'aio_pika', 'nats',"
        " 'paho') if m in sys.modules))"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert answer.stdout.strip() == "[]", answer.stderr


def test_schemes_map_to_adapters_and_unknown_ones_are_refused() -> None:
    assert adapter("rediss://h/k").__name__ == "conveyor.streams.brokers.redis"
    with pytest.raises(ConfigurationError, match=r"kafka://.*mqtts://"):
        adapter("zmq://h/q")
    with pytest.raises(InputRejectedError):
        check_url("redis:///no-host")


def test_passwords_never_show() -> None:
    assert redact("amqp://guest:guest@h:5672/q") == "amqp://guest:***@h:5672/q"
    assert redact("redis://:pw@h/k") == "redis://:***@h/k"
    assert redact("kafka://h:9092/t") == "kafka://h:9092/t"


def test_redis_urls_and_options() -> None:
    plain = parse_url("redis://u:p%40ss@h:6380/sensors%2Feu?db=2", {})
    assert plain.key == "sensors/eu"
    assert {k: plain.client_options[k] for k in ("host", "port", "db", "username", "password")} == {
        "host": "h",
        "port": 6380,
        "db": 2,
        "username": "u",
        "password": "p@ss",
    }
    secure = parse_url("rediss://h/k", {"ssl_ca_certs": "/ca.pem", "ssl_check_hostname": "false"})
    assert secure.client_options["ssl"] is True
    assert secure.client_options["ssl_ca_certs"] == "/ca.pem"
    assert secure.client_options["ssl_check_hostname"] is False
    with pytest.raises(ConfigurationError, match="stream key"):
        parse_url("redis://h:6379/", {})
