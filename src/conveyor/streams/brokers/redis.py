"""Redis Streams: ``redis://[[user]:password@]host[:port]/STREAM_KEY[?db=N]`` (``rediss://``
for TLS).

A source is a consumer group on the stream (created at the stream's start unless
``start=latest``). Entries delivered to a consumer stay in the group's pending list until
XACK; a consumer that died holding some is relieved by the others with XAUTOCLAIM once the
entries have been idle ``claim_idle_seconds``, and a restarted consumer of the same name
re-reads its own pending entries first. An entry with a ``payload`` field is that payload
(``key`` and other fields become the key and headers); any other entry's fields become a
JSON object of strings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.client import Pipeline

from conveyor.errors import ConfigurationError
from conveyor.streams.brokers.base import Message, Outgoing

PAYLOAD_FIELD = b"payload"
KEY_FIELD = b"key"
DEFAULT_CLAIM_IDLE_SECONDS = 30.0
FORGET_IDLE_FACTOR = 10  # a consumer idle this many claim periods, owning nothing, is removed


@dataclass(frozen=True)
class StreamAddress:
    key: str
    client_options: dict[str, Any]


def parse_url(url: str, options: Mapping[str, str]) -> StreamAddress:
    parts = urlsplit(url)
    key = unquote(parts.path.lstrip("/"))
    if not key or not parts.hostname:
        raise ConfigurationError(
            f"Redis stream URL needs a host and a stream key: redis://HOST:6379/KEY (got {url!r})"
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    client: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(query.get("db", options.get("db", "0"))),
        "username": options.get("username") or (unquote(parts.username or "") or None),
        "password": options.get("password") or (unquote(parts.password or "") or None),
        "socket_connect_timeout": 10,
        "socket_timeout": 60,  # longer than any BLOCK a fetch asks for
        "health_check_interval": 30,
    }
    if parts.scheme.lower() == "rediss":
        client.update(_tls_options(options))
    return StreamAddress(key, client)


def _tls_options(options: Mapping[str, str]) -> dict[str, Any]:
    tls: dict[str, Any] = {"ssl": True}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if options.get(name):
            tls[name] = options[name]
    if options.get("ssl_check_hostname", "true").lower() == "false":
        tls["ssl_check_hostname"] = False
    return tls


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> RedisStreamConsumer:
    address = parse_url(url, options)
    client = redis.Redis(**address.client_options)
    claim_idle = float(options.get("claim_idle_seconds", DEFAULT_CLAIM_IDLE_SECONDS))
    consumer = RedisStreamConsumer(client, address.key, group, consumer_name, claim_idle)
    consumer.create_group(start_at_end=options.get("start", "earliest") == "latest")
    return consumer


def open_producer(url: str, options: Mapping[str, str]) -> RedisStreamProducer:
    address = parse_url(url, options)
    maxlen = int(options["maxlen"]) if options.get("maxlen") else None
    dedupe = int(options["dedupe_seconds"]) if options.get("dedupe_seconds") else None
    client = redis.Redis(**address.client_options)
    return RedisStreamProducer(client, address.key, maxlen, dedupe)


class RedisStreamConsumer:
    def __init__(
        self, client: redis.Redis, key: str, group: str, name: str, claim_idle_seconds: float
    ) -> None:
        self.client = client
        self.key = key
        self.group = group
        self.name = name
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._own_pending_from: str | None = "0"  # re-read what this name held before a crash
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0

    def create_group(self, start_at_end: bool) -> None:
        try:
            self.client.xgroup_create(self.key, self.group, "$" if start_at_end else "0", True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        if self._own_pending_from is not None:
            messages = self._read_own_pending(max_messages)
            if messages:
                return messages
        claimed = self._reclaim(max_messages)
        if claimed:
            return claimed
        block = int(timeout_seconds * 1000) or None  # BLOCK 0 would wait forever
        answer: Any = self.client.xreadgroup(
            self.group, self.name, {self.key: ">"}, count=max_messages, block=block
        )
        return self._messages(answer[0][1] if answer else [])

    def _read_own_pending(self, max_messages: int) -> list[Message]:
        start: Any = self._own_pending_from
        answer: Any = self.client.xreadgroup(
            self.group, self.name, {self.key: start}, count=max_messages
        )
        entries = answer[0][1] if answer else []
        if not entries:
            self._own_pending_from = None
            return []
        self._own_pending_from = entries[-1][0].decode()
        return self._messages(entries)

    def _reclaim(self, max_messages: int) -> list[Message]:
        """Entries another consumer of the group took and left idle (it died): take them."""
        if time.monotonic() < self._next_claim_at:
            return []
        answer: Any = self.client.xautoclaim(
            self.key, self.group, self.name, self.claim_idle_ms, self._claim_cursor, max_messages
        )
        cursor, entries = answer[0], answer[1]
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._claim_cursor == "0-0":  # a full pass: rest until entries could be idle again
            self._next_claim_at = time.monotonic() + max(self.claim_idle_ms / 4000, 0.5)
            self._forget_idle_consumers()
        return self._messages(entries)

    def _forget_idle_consumers(self) -> None:
        consumers: Any = self.client.xinfo_consumers(self.key, self.group)
        for consumer in consumers:
            name = consumer["name"].decode()
            idle = consumer["idle"] > self.claim_idle_ms * FORGET_IDLE_FACTOR
            if name != self.name and idle and consumer["pending"] == 0:
                self.client.xgroup_delconsumer(self.key, self.group, name)

    def _messages(
        self, entries: Sequence[tuple[bytes, dict[bytes, bytes] | None]]
    ) -> list[Message]:
        messages, vanished = [], []
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream while pending: nothing to deliver
                vanished.append(entry_id)
                continue
            messages.append(_message(self.key, entry_id.decode(), fields))
        if vanished:
            self.client.xack(self.key, self.group, *vanished)
        return messages

    def ack(self, messages: Sequence[Message]) -> None:
        if messages:
            self.client.xack(self.key, self.group, *(str(m.token) for m in messages))

    def lag(self) -> int | None:
        groups: Any = self.client.xinfo_groups(self.key)
        for group in groups:
            if group["name"].decode() == self.group:
                undelivered = group.get("lag")  # None when Redis cannot tell (trimmed stream)
                return None if undelivered is None else int(undelivered) + int(group["pending"])
        return None

    def close(self) -> None:
        self.client.close()


def _message(key: str, entry_id: str, fields: dict[bytes, bytes]) -> Message:
    identity = f"{key}/{entry_id}"
    if PAYLOAD_FIELD in fields:
        headers = {
            name.decode(errors="replace"): value.decode(errors="replace")
            for name, value in fields.items()
            if name not in (PAYLOAD_FIELD, KEY_FIELD)
        }
        return Message(identity, fields[PAYLOAD_FIELD], fields.get(KEY_FIELD), headers, entry_id)
    record = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    return Message(identity, json.dumps(record).encode(), token=entry_id)


# Marks the message key as published and adds the entry in one atomic step, or neither: a key
# published within the window is not added again (the stream key's hash tag keeps both keys in
# one Redis Cluster slot).
DEDUPE_SCRIPT = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return false end
if ARGV[2] == '' then return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3)) end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""


class RedisStreamProducer:
    """``dedupe_seconds`` (option): a message whose key was published to this stream within
    that many seconds is not added again, so a publisher that repeats a message after a crash
    (the sinks' relay) leaves one entry."""

    def __init__(
        self, client: redis.Redis, key: str, maxlen: int | None, dedupe_seconds: int | None = None
    ) -> None:
        self.client = client
        self.key = key
        self.maxlen = maxlen
        self.dedupe_seconds = dedupe_seconds
        self._dedupe = client.register_script(DEDUPE_SCRIPT) if dedupe_seconds else None

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.publish_batch([Outgoing(payload, key, headers or {})])

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """One pipelined round trip (not a transaction): the replies confirm each entry, and
        the first error raises."""
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            fields = _entry_fields(message)
            if self._dedupe is not None and message.key is not None:
                self._add_once(pipe, message.key, fields)
            else:
                pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        pipe.execute(raise_on_error=True)

    def _add_once(self, pipe: Pipeline, key: bytes, fields: dict[bytes, bytes]) -> None:
        marker = f"{{{self.key}}}:published:".encode() + key
        flat = [part for pair in fields.items() for part in pair]
        arguments = [str(self.dedupe_seconds).encode(), str(self.maxlen or "").encode(), *flat]
        assert self._dedupe is not None
        self._dedupe(keys=[self.key, marker], args=arguments, client=pipe)

    def close(self) -> None:
        self.client.close()


def _entry_fields(message: Outgoing) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {PAYLOAD_FIELD: message.payload}
    if message.key is not None:
        fields[KEY_FIELD] = message.key
    for name, value in message.headers.items():
        if name.encode() in fields:
            raise ConfigurationError(f"header {name!r} clashes with a Redis entry field")
        fields[name.encode()] = value.encode()
    return fields
