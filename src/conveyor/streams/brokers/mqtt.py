"""MQTT topics: ``mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC/FILTER[?qos=1&client_id=ID]``
(``mqtts://`` for TLS, port 8883 by default; ``+`` and ``#`` wildcards are written as they are).

A source is one **persistent MQTT 5 session** (client id ``client_id``, default the source's
consumer group) subscribed to the filter at QoS 1 and connected with ``clean_start=False`` and
a session expiry: the broker keeps the subscription and queues messages while the consumer is
down, and resends every message it delivered and did not get a PUBACK for when the session
reconnects. PUBACKs are sent by hand (paho's ``manual_ack``) only after the caller's commit.

MQTT has no message id that survives redelivery (a packet id is per connection and reused), so
the identity is, in this order: the payload's JSON field named by the ``identity_field`` option;
the MQTT 5 user property ``message_id`` (Conveyor's producer sets one on every message); a
SHA-256 of the payload. Both the field and the hash make two messages with equal values on one
topic the same message: the second is taken as a redelivery.

One session has one connection: a second consumer with the same client id takes the session
over and the broker disconnects the first. A source therefore has **one** consumer; run one
``conveyor streams run`` (or ``conveyor up``) per MQTT source.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from conveyor.errors import ConfigurationError
from conveyor.streams.brokers.base import Message, Outgoing

NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5 session expiry interval meaning "keep the session forever"
ANSWER_SECONDS = 30.0  # for CONNACK, SUBACK and PUBACK
MESSAGE_ID = "message_id"  # MQTT 5 user property: the publisher's id for the message
LONGEST_IDENTITY_PART = 200  # longer field values are hashed to keep identities short


@dataclass(frozen=True)
class TopicAddress:
    host: str
    port: int
    topic: str  # a filter for a consumer, a plain topic for a producer
    qos: int
    client_id: str | None
    secure: bool


def parse_url(url: str, options: Mapping[str, str]) -> TopicAddress:
    parts = urlsplit(url, allow_fragments=False)  # `#` is MQTT's multi-level wildcard here
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    topic = unquote(parts.path[1:])
    if not parts.hostname or not topic:
        raise ConfigurationError(
            "MQTT URL needs a host and a topic filter: mqtt://HOST:1883/TOPIC/FILTER?qos=1"
            f" (got {url!r})"
        )
    qos = int(query.get("qos", options.get("qos", "1")))
    if qos not in (1, 2):
        raise ConfigurationError(f"MQTT source {url!r}: qos must be 1 or 2 (0 is not redelivered)")
    secure = parts.scheme.lower() == "mqtts"
    port = parts.port or (8883 if secure else 1883)
    client_id = query.get("client_id") or options.get("client_id")
    return TopicAddress(parts.hostname, port, topic, qos, client_id, secure)


def _configure(client: mqtt.Client, url: str, options: Mapping[str, str]) -> None:
    parts = urlsplit(url, allow_fragments=False)
    user = options.get("username") or unquote(parts.username or "")
    password = options.get("password") or unquote(parts.password or "")
    if user:
        client.username_pw_set(user, password or None)
    if parts.scheme.lower() == "mqtts" or any(k.startswith("ssl_") for k in options):
        client.tls_set_context(_tls_context(options))


def _tls_context(options: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs") or None)
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile") or None)
    if options.get("ssl_check_hostname", "true").lower() == "false":
        context.check_hostname = False
    return context


class _Session:
    """A paho client on its own network thread, with the answers the adapter waits for."""

    def __init__(self, client_id: str, manual_ack: bool) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,  # a lost connection raises; the runner reopens
            manual_ack=manual_ack,
        )
        self.connected = threading.Event()
        self.refused: str | None = None
        self.lost: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.lost = f"the MQTT connection closed ({reason})"
        self.connected.set()

    def connect(self, address: TopicAddress, clean_start: bool, expiry: int) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = expiry
        self.client.connect(
            address.host, address.port, clean_start=clean_start, properties=properties
        )
        self.client.loop_start()
        if not self.connected.wait(ANSWER_SECONDS):
            self.close()
            raise TimeoutError(f"no CONNACK from {address.host}:{address.port}")
        if self.refused or self.lost:
            self.close()
            raise ConnectionError(
                f"MQTT broker refused the connection: {self.refused or self.lost}"
            )

    def check(self) -> None:
        if self.lost:
            raise ConnectionError(self.lost)

    def close(self) -> None:
        # paho's network thread writes queued packets (our PUBACKs) in order and reports the
        # DISCONNECT written after them; stopping the thread before that would drop them.
        self.connected.clear()
        if self.client.disconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.connected.wait(ANSWER_SECONDS)
        self.client.loop_stop()


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> MqttConsumer:
    address = parse_url(url, options)
    session = _Session(address.client_id or group, manual_ack=True)
    _configure(session.client, url, options)
    consumer = MqttConsumer(session, address, options.get("identity_field"))
    expiry = int(options.get("session_expiry_seconds", NEVER_EXPIRES))
    session.connect(address, clean_start=False, expiry=expiry)
    try:
        consumer.subscribe()
    except BaseException:
        session.close()
        raise
    return consumer


def open_producer(url: str, options: Mapping[str, str]) -> MqttProducer:
    address = parse_url(url, options)
    if "+" in address.topic or "#" in address.topic:
        raise ConfigurationError(
            f"MQTT producer: cannot publish to the topic filter {address.topic!r}; "
            "give a plain topic in the URL"
        )
    session = _Session(f"conveyor-producer-{uuid.uuid4().hex[:12]}", manual_ack=False)
    _configure(session.client, url, options)
    session.connect(address, clean_start=True, expiry=0)
    return MqttProducer(session, address)


class MqttConsumer:
    def __init__(
        self, session: _Session, address: TopicAddress, identity_field: str | None
    ) -> None:
        self.session = session
        self.address = address
        self.identity_field = identity_field
        self._arrived = threading.Condition()
        self._received: list[Message] = []
        self._subscribed = threading.Event()
        self._granted: list[Any] = []
        self._acked_since_round_trip = False
        session.client.on_message = self._on_message
        session.client.on_subscribe = self._on_subscribe

    def subscribe(self) -> None:
        # Retained messages only when the subscription is new, or every restart would take
        # the topic's retained message again.
        options = SubscribeOptions(qos=self.address.qos, retainHandling=1)
        self._subscribed.clear()
        self.session.client.subscribe(self.address.topic, options=options)
        if not self._subscribed.wait(ANSWER_SECONDS):
            raise TimeoutError(f"no SUBACK for {self.address.topic!r}")
        self.session.check()
        if any(code.is_failure for code in self._granted):
            raise ConnectionError(f"MQTT broker refused the subscription: {self._granted}")

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
        self._granted = list(codes)
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, record: mqtt.MQTTMessage) -> None:
        message = _message(record, self.identity_field)
        with self._arrived:
            self._received.append(message)
            self._arrived.notify()

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        deadline = time.monotonic() + timeout_seconds
        with self._arrived:
            while not self._received and time.monotonic() < deadline:
                self.session.check()
                self._arrived.wait(min(deadline - time.monotonic(), 0.5))
            self.session.check()  # after a lost connection, the broker resends to the next one
            batch, self._received = self._received[:max_messages], self._received[max_messages:]
        return batch

    def ack(self, messages: Sequence[Message]) -> None:
        """PUBACK each, in the order received (MQTT asks for that order; the consumer loop acks
        whole batches in fetch order)."""
        self.session.check()
        for message in messages:
            mid, qos = cast(tuple[int, int], message.token)
            result = self.session.client.ack(mid, qos)
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"MQTT acknowledgement failed: {mqtt.error_string(result)}")
            self._acked_since_round_trip = True

    def lag(self) -> int | None:
        """Unknown: MQTT brokers do not tell how many messages a session has queued."""
        return None

    def close(self) -> None:
        """Disconnect, keeping the session: what was not acknowledged is resent when it
        reconnects.

        Mosquitto was seen to forget PUBACKs that arrived just before a DISCONNECT (the
        messages came back on the next connect), so a SUBACK round trip first makes sure the
        broker has read them: it reads a connection's packets in order. Subscribing again to
        the same filter changes nothing (retained messages are not resent, as above)."""
        if self._acked_since_round_trip and self.session.lost is None:
            with contextlib.suppress(TimeoutError, ConnectionError):
                self.subscribe()
        self.session.close()


def _message(record: mqtt.MQTTMessage, identity_field: str | None) -> Message:
    properties = dict(getattr(record.properties, "UserProperty", None) or [])
    key = properties.pop("key", None)
    publisher_id = properties.pop(MESSAGE_ID, None)
    payload = bytes(record.payload)
    identity = f"{record.topic}/{_identity_part(payload, identity_field, publisher_id)}"
    token = (record.mid, record.qos)
    return Message(identity, payload, key.encode() if key else None, properties, token)


def _identity_part(payload: bytes, identity_field: str | None, publisher_id: str | None) -> str:
    value = _field(payload, identity_field) if identity_field else None
    if value is not None:
        return f"{identity_field}:{value}"
    if publisher_id:
        return _short(publisher_id)
    return f"sha256:{hashlib.sha256(payload).hexdigest()}"


def _field(payload: bytes, name: str) -> str | None:
    """The payload's JSON field ``name`` as text; None for a payload without it (poison
    included, which then falls back to the next rule)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get(name) is None:
        return None
    return _short(str(document[name]))


def _short(value: str) -> str:
    if len(value) <= LONGEST_IDENTITY_PART:
        return value
    return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"


class MqttProducer:
    def __init__(self, session: _Session, address: TopicAddress) -> None:
        self.session = session
        self.address = address

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """QoS 1 (or the URL's qos) with a fresh ``message_id`` user property; returns once the
        broker's PUBACK arrived and raises otherwise."""
        self.publish_batch([Outgoing(payload, key, headers or {})])

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Hands them all to paho (which sends them in order, as many in flight as its
        ``max_inflight_messages`` allows), then waits for every PUBACK."""
        self.session.check()
        sent = [self._send(message) for message in messages]
        deadline = time.monotonic() + ANSWER_SECONDS
        for info in sent:
            # In slices: paho does not wake a waiter when the connection is lost.
            while not info.is_published():
                self.session.check()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"MQTT broker did not acknowledge within {ANSWER_SECONDS:.0f} s"
                    )
                info.wait_for_publish(min(0.1, max(0.0, deadline - time.monotonic())))

    def _send(self, message: Outgoing) -> mqtt.MQTTMessageInfo:
        properties = Properties(PacketTypes.PUBLISH)
        user = [(MESSAGE_ID, message.message_id or uuid.uuid4().hex), *message.headers.items()]
        if message.key is not None:
            user.append(("key", message.key.decode(errors="replace")))
        properties.UserProperty = user
        return self.session.client.publish(
            self.address.topic, message.payload, qos=self.address.qos, properties=properties
        )

    def close(self) -> None:
        self.session.close()
