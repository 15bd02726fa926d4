"""An MQTT subscriber for the interop tests (paho-mqtt 2.x).

    sub = MqttSubscriber(broker.port).start()           # subscribes to "#"
    msg = sub.wait_for(lambda m: m.topic.endswith("/status") and m.text == "online")
    sub.wait_for(lambda m: ..., timeout=10)             # AssertionError with what was seen
    sub.messages("ocpp809/ocpp809/chargers/CP001/meter")  # by exact topic
    sub.stop()

Every received message is kept, in order, as ``Message(topic, payload, retain)``; the list is
shared with paho's network thread under a lock. ``persistent=True`` uses a fixed client id
with ``clean_session=False`` so that QoS 1 messages published while the subscriber (or the
broker, see broker.py) was away are delivered when it is back. The client reconnects by
itself.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt

from daemon import LOOPBACK

_ids = itertools.count()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttSubscriber:
    def __init__(self, port: int, topic: str = "#", *, host: str = LOOPBACK,
                 client_id: Optional[str] = None, persistent: bool = False) -> None:
        self.host = host
        self.port = port
        self.topic = topic
        self._lock = threading.Condition()
        self._messages: list[Message] = []
        self._subscribed = threading.Event()
        client_id = client_id or f"pytest-sub-{next(_ids)}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent,
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)

    # paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self._messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._lock.notify_all()

    def start(self, timeout: float = 10.0) -> "MqttSubscriber":
        """Connects (retrying until ``timeout``) and waits for the SUBACK."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.connect(self.host, self.port, keepalive=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"cannot connect to MQTT broker {self.host}:{self.port}")
                time.sleep(0.1)
        self.client.loop_start()
        if not self._subscribed.wait(max(0.1, deadline - time.monotonic())):
            raise AssertionError(f"no SUBACK for {self.topic!r} from {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "MqttSubscriber":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def messages(self, topic: Optional[str] = None) -> list[Message]:
        """A copy of what was received, optionally only one exact topic."""
        with self._lock:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        """The first message (already received or arriving within ``timeout``) that satisfies
        ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for m in self._messages:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(f"  {m.topic} retain={m.retain} {m.text[:200]}"
                                     for m in self._messages[-30:])
                    raise AssertionError(f"no matching MQTT message within {timeout} s; "
                                         f"last received:\n{seen or '  (nothing)'}")
                self._lock.wait(left)

    def wait_until(self, condition: Callable[[list[Message]], bool],
                   timeout: float = 10.0) -> list[Message]:
        """Waits until ``condition(all messages)`` holds; returns the messages."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(list(self._messages)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"MQTT condition not met within {timeout} s "
                                         f"({len(self._messages)} messages received)")
                self._lock.wait(left)
            return list(self._messages)


def in_order_at_least_once(values: list) -> tuple[list, Optional[Any]]:
    """QoS 1 delivery may repeat a message, never reorder: returns ``values`` with the
    redelivered ones removed, and the first value that arrived after a higher one without
    being a repeat (``None`` when the stream is in order)."""
    deduped, highest = [], float("-inf")
    for v in values:
        if v > highest:
            deduped.append(v)
            highest = v
        elif v not in deduped:
            return deduped, v
    return deduped, None
