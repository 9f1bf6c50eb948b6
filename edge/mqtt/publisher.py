"""The MQTT client of a door: :class:`EventPublisher` (paho-mqtt 2.x), its outbox sender thread and callbacks.

The topic tree and the delivery guarantees are described in :mod:`edge.mqtt`; the topics, command parsing and
discovery messages it sends come from :mod:`edge.mqtt.topics`, :mod:`edge.mqtt.commands` and
:mod:`edge.mqtt.discovery`. (Over 400 lines because it is one stateful class: connection, sender thread,
acknowledgements, commands and Home Assistant's birth message all share its lock and its view of the broker.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.core.events import Event
from edge.errors import MqttError, OutboxError
from edge.mqtt.commands import Rejected, SeenIds, parse_command
from edge.mqtt.const import (
    CLIENT_ID_PREFIX,
    DEFAULT_DISCOVERY_PREFIX,
    DEFAULT_PREFIX,
    DISCOVERY_STATUS_SUFFIX,
    EVENT_RECOGNIZED,
    EVENT_STATES,
    HA_ONLINE,
    PAYLOAD_OFFLINE,
    PAYLOAD_ONLINE,
    QOS,
    STATE_DOOR,
    STATE_DOOR_CHANGE,
    STATE_LAST_PERSON,
)
from edge.mqtt.discovery import discovery_messages, lock_config_topic
from edge.mqtt.topics import Topics, topic_level
from edge.storage.outbox import Outbox

log = logging.getLogger(__name__)
_paho_log = logging.getLogger("edge.mqtt.paho")  # paho's own log

_HANDED_RC = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # the client keeps the message in both cases


@dataclass(frozen=True)
class PublisherCounters:
    """Since construction: outbox messages handed to the client and acknowledged by the broker, successful
    connections, commands passed to ``on_command``, commands rejected (malformed, unknown, retained,
    disallowed, or ``on_command`` raised), and events that could not even be queued (outbox closed)."""

    sent: int = 0
    acknowledged: int = 0
    connects: int = 0
    commands: int = 0
    commands_rejected: int = 0
    unqueued: int = 0


def _default_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)


class EventPublisher:
    """Publishes door events and states over MQTT, through a durable outbox. Thread-safe.

    Args:
        host, port: the broker (TLS brokers usually listen on 8883).
        device_id: this door's id: one topic level (no ``/ + #``).
        device_name: the door's display name in Home Assistant (the config's ``[device] name``); default from the id.
        prefix: the first topic level(s) of the tree.
        username, password: broker credentials (the password is never logged).
        tls: use TLS; with no ``tls_ca`` the system's CA certificates are trusted.
        tls_ca: CA certificate file; turns TLS on. tls_cert, tls_key: client certificate and key files.
        outbox: where events wait for the broker's acknowledgement (opened and closed by the caller).
        client_factory: ``client_factory(client_id) -> paho Client`` (VERSION2 callbacks); default paho's.
        keepalive: seconds between pings; the broker sends the last will after 1.5 times this of silence.
        client_id: the MQTT client id, default ``facegate-<device_id>``.
        discovery_prefix: Home Assistant discovery prefix, or ``None`` for no discovery messages.
        commands: subscribe to the command topic. allow_unlock: accept the ``unlock`` command.
        on_command: called with the command name (on the network thread: return quickly).
        on_outbox_durable: called with the number of events moved (on the sender thread) when an outbox that was
            in memory (its file could not be opened) has opened its file at last: the sender tries it
            (:meth:`edge.storage.outbox.Outbox.reopen_file`) about once a second, the outbox at most every
            ``retry_seconds``.
        reconnect_min_s, reconnect_max_s: reconnect back-off, doubling from min to max (whole seconds);
            the max of 8 s bounds how long events wait once the broker is back.
        max_unacked: outbox messages handed to the client and not yet acknowledged, at most.

    Raises:
        MqttError: a bad topic level or an unusable TLS file.
    """

    def __init__(self, *, host: str, port: int = 1883, device_id: str, device_name: str | None = None,
                 prefix: str = DEFAULT_PREFIX,
                 username: str | None = None, password: str | None = None, tls: bool = False, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, outbox: Outbox,
                 client_factory: Callable[[str], mqtt.Client] | None = None, keepalive: int = 30,
                 client_id: str | None = None, discovery_prefix: str | None = DEFAULT_DISCOVERY_PREFIX,
                 commands: bool = False, allow_unlock: bool = False,
                 on_command: Callable[[str], None] | None = None, reconnect_min_s: int = 1,
                 reconnect_max_s: int = 8, max_unacked: int = 100,
                 on_outbox_durable: Callable[[int], None] | None = None):
        self.topics = Topics.for_device(prefix, device_id)
        self.device_id = device_id
        self.host, self.port, self.keepalive = host, port, keepalive
        self.discovery_prefix = discovery_prefix
        self.commands_enabled = commands
        self.allow_unlock = allow_unlock
        self._announces_lock = commands and allow_unlock
        # a lock entity an earlier run announced (with unlock commands) is removed when this one has none
        self._stale_lock_topic = (lock_config_topic(discovery_prefix, device_id)
                                  if discovery_prefix is not None and not self._announces_lock else None)
        self.max_unacked = max_unacked
        self._outbox = outbox
        self._on_command = on_command
        self._on_outbox_durable = on_outbox_durable
        self.device_name = device_name
        self._seen_commands = SeenIds()

        self._lock = threading.Lock()  # a leaf lock: never held while calling paho or the outbox writes
        self._cond = threading.Condition(self._lock)
        self._state_lock = threading.Lock()  # orders the retained state messages (taken before paho's locks)
        self._connected = False
        self._started = self._stopped = self._stopping = False
        self._wake_sender = False
        self._cursor = 0  # seq of the last outbox message handed to the client
        self._handed: set[str] = set()  # event ids handed to the client, not yet acknowledged
        self._mids: dict[int, str | None] = {}  # message id -> event id (None: not an outbox message)
        self._early_acks: set[int] = set()  # PUBACKs that arrived before publish() returned their mid
        self._states: dict[str, str] = {}
        self._counts = dict.fromkeys(PublisherCounters.__dataclass_fields__, 0)
        self._broker_down_logged = False
        self._sender: threading.Thread | None = None

        self._client = (client_factory or _default_client)(client_id or f"{CLIENT_ID_PREFIX}{device_id}")
        self._client.on_log = self._on_log
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls or tls_ca or tls_cert:
            try:
                self._client.tls_set(ca_certs=tls_ca, certfile=tls_cert, keyfile=tls_key)
            except (OSError, ValueError) as err:
                raise MqttError(f"MQTT TLS files unusable (ca={tls_ca}, cert={tls_cert}): {err}") from None
        self._client.will_set(self.topics.availability, PAYLOAD_OFFLINE, qos=QOS, retain=True)
        self._client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    # -- the interface the daemon uses -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    @property
    def counters(self) -> PublisherCounters:
        with self._lock:
            return PublisherCounters(**self._counts)

    def start(self) -> None:
        """Start connecting in the background (never blocks, even if the broker is down or unknown)."""
        with self._lock:
            if self._started:
                raise MqttError("the MQTT publisher was already started")
            self._started = True
        self._sender = threading.Thread(target=self._send_loop, name=f"mqtt-sender-{self.device_id}", daemon=True)
        self._sender.start()
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()
        log.info("MQTT: connecting to %s:%d as %s", self.host, self.port, self.topics.base)

    def publish_event(self, event: Event) -> None:
        """Write ``event`` to the outbox, then let the sender publish it. Never raises on a storage failure."""
        try:
            self._outbox.put(event.id, self.topics.events, event.to_json(), QOS, False)
        except OutboxError as err:  # the outbox is closed: the event cannot even be queued
            log.error("MQTT: event %s (%s) not queued: %s", event.id, event.type, err)
            with self._lock:
                self._counts["unqueued"] += 1
        else:
            self._wake()
        if event.type == EVENT_RECOGNIZED and event.person:
            self.set_state(STATE_LAST_PERSON, event.person)
        elif event.type in EVENT_STATES:
            _, value = EVENT_STATES[event.type]
            self.set_door_state(value, at=event.time, cause=event.detail.get("cause"),
                                person=event.detail.get("person"), event_id=event.id)

    def set_door_state(self, value: str, *, at: str, cause: str | None, person: str | None = None,
                       event_id: str | None = None) -> None:
        """``state/door`` = ``value``, and ``state/door_change`` = when (``at``, ISO-8601) and why (see
        :data:`edge.mqtt.const.STATE_DOOR_CHANGE`)."""
        change = {"state": value, "time": at, "cause": cause, "person": person, "event": event_id}
        self.set_state(STATE_DOOR_CHANGE, json.dumps(change, separators=(",", ":"), sort_keys=True))
        self.set_state(STATE_DOOR, value)

    def set_state(self, name: str, value: str) -> None:
        """Publish ``value`` retained on ``state/<name>`` now if connected, and again after every reconnect."""
        topic_level(name, "a state name")
        with self._state_lock:
            with self._lock:
                self._states[name] = str(value)
                connected = self._connected
            if connected:
                self._send(self.topics.state(name), str(value), retain=True)

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty (every event acknowledged) or ``timeout`` seconds. True if empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._outbox):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Flush (if connected), publish ``offline`` retained, disconnect. At most ~``timeout`` s; idempotent.

        What is not acknowledged by then stays in the outbox for the next start.
        """
        with self._lock:
            if not self._started or self._stopped:
                return
            self._stopped = True
            connected = self._connected
        deadline = time.monotonic() + timeout
        if connected and not self.flush(timeout):
            log.warning("MQTT: %d event(s) not acknowledged at stop; they stay in the outbox", len(self._outbox))
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(max(0.0, deadline - time.monotonic()))
        info = self._send(self.topics.availability, PAYLOAD_OFFLINE, retain=True) if self.connected else None
        while info is not None and not info.is_published() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._connected = False
        log.info("MQTT: stopped (%d event(s) left in the outbox)", len(self._outbox))

    # -- sending ---------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._wake_sender = True
            self._cond.notify_all()

    def _send(self, topic: str, payload: str | bytes, *, retain: bool, qos: int = QOS,
              event_id: str | None = None) -> mqtt.MQTTMessageInfo | None:
        """Hand one message to the client and remember its mid; None if the client refused it."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as err:
            log.error("MQTT: cannot publish to %s: %s", topic, err)
            return None
        if info.rc not in _HANDED_RC:
            log.warning("MQTT: publish to %s refused by the client: %s", topic, mqtt.error_string(info.rc))
            return None
        with self._lock:
            acked_already = info.mid in self._early_acks
            if acked_already:
                self._early_acks.discard(info.mid)
            else:
                self._mids[info.mid] = event_id
        if acked_already:
            self._acknowledged(event_id)
        return info

    def _send_loop(self) -> None:
        """The only thread that hands outbox messages to the client: oldest first, at most max_unacked."""
        def ready() -> bool:
            return self._stopping or (self._wake_sender and self._connected and len(self._handed) < self.max_unacked)

        while True:
            self._retry_outbox_file()
            with self._cond:
                if not self._cond.wait_for(ready, timeout=1.0):
                    continue
                if self._stopping:
                    return
                self._wake_sender = False
                room = self.max_unacked - len(self._handed)
                after = self._cursor
            entries = self._outbox.pending(room, after=after)
            for entry in entries:
                with self._lock:
                    if not self._connected or self._stopping:
                        break  # the rest waits for the next connection (nothing is handed twice)
                    self._handed.add(entry.event_id)
                info = self._send(entry.topic, entry.payload, qos=entry.qos, retain=entry.retain,
                                  event_id=entry.event_id)
                with self._lock:
                    if info is None:
                        self._handed.discard(entry.event_id)
                        break
                    self._cursor = entry.seq
                    self._counts["sent"] += 1
            if len(entries) == room:  # there may be more: look again once there is room
                self._wake()

    def _retry_outbox_file(self) -> None:
        """An outbox in memory tries its file again (when due); the owner hears when it has become durable."""
        if self._outbox.durable:
            return
        moved = self._outbox.reopen_file()
        if moved is not None and self._on_outbox_durable is not None:
            try:
                self._on_outbox_durable(moved)
            except Exception:  # never let a reporting bug stop the sender
                log.exception("MQTT: the outbox-durable handler failed")

    def _acknowledged(self, event_id: str | None) -> None:
        if event_id is None:
            return
        with self._cond:  # outbox and counters change together: flush() never sees one without the other
            self._outbox.ack(event_id)
            self._handed.discard(event_id)
            self._counts["acknowledged"] += 1
            self._cond.notify_all()

    # -- paho callbacks (network thread) ---------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT: %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        self._send_discovery()
        with self._state_lock:  # no set_state between the snapshot and its sending: the newest value wins
            with self._lock:
                self._connected = True
                self._broker_down_logged = False
                self._counts["connects"] += 1
                states = dict(self._states)
            self._send_states(states)
        # subscriptions before 'online': the broker handles one connection's packets in order, so a command sent by
        # whoever has seen the door online reaches it
        if self.commands_enabled:
            client.subscribe(self.topics.command, qos=QOS)
        if self.discovery_prefix is not None:  # Home Assistant's birth message: announce again when it restarts
            client.subscribe(f"{self.discovery_prefix}/{DISCOVERY_STATUS_SUFFIX}", qos=QOS)
        if self._stale_lock_topic is not None:
            client.subscribe(self._stale_lock_topic, qos=QOS)
        # online last: whoever sees this device online has already been told its true state (a retained
        # 'unlocked' of a process that crashed mid-pulse is overwritten first)
        self._send(self.topics.availability, PAYLOAD_ONLINE, retain=True)
        log.info("MQTT: connected to %s:%d (%d event(s) pending)", self.host, self.port, len(self._outbox))
        self._wake()

    def _send_discovery(self) -> None:
        if self.discovery_prefix is None:
            return
        for topic, config in discovery_messages(self.topics, self.device_id, self.discovery_prefix,
                                                device_name=self.device_name, lock=self._announces_lock):
            self._send(topic, json.dumps(config, sort_keys=True), retain=True)

    def _home_assistant_status(self, payload: bytes) -> None:
        """Home Assistant came (back) online: its discovery configs and the states again, then availability."""
        if payload.strip() != HA_ONLINE.encode():
            return
        log.info("MQTT: Home Assistant is online: announcing the door again")
        self._send_discovery()
        with self._state_lock:
            with self._lock:
                states = dict(self._states)
            self._send_states(states)
        self._send(self.topics.availability, PAYLOAD_ONLINE, retain=True)

    def _send_states(self, states: dict[str, str]) -> None:
        for name, value in states.items():
            self._send(self.topics.state(name), value, retain=True)

    def _on_log(self, client, userdata, level, buf) -> None:
        """paho's own log, under ``edge.mqtt.paho``; its per-retry 'not connected' errors as debug."""
        if level == mqtt.MQTT_LOG_ERR and "not connected" not in buf:
            _paho_log.error("%s", buf)
        elif level == mqtt.MQTT_LOG_WARNING:
            _paho_log.warning("%s", buf)
        else:
            _paho_log.debug("%s", buf)

    def _on_connect_fail(self, client, userdata) -> None:
        with self._lock:
            first, self._broker_down_logged = not self._broker_down_logged, True
        (log.warning if first else log.debug)("MQTT: cannot reach %s:%d; retrying with back-off", self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was, self._connected = self._connected, False
            stopping = self._stopped
        if was and not stopping:
            log.warning("MQTT: connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT: the broker refused message %d: %s", mid, reason_code)
        with self._lock:
            if mid not in self._mids:
                self._early_acks.add(mid)
                return
            event_id = self._mids.pop(mid)
        self._acknowledged(event_id)

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self._stale_lock_topic:
            if message.retain and message.payload:  # an empty retained message removes it from Home Assistant
                log.info("MQTT: removing the lock entity an earlier run announced (unlock commands are off)")
                self._send(message.topic, "", retain=True)
            return
        if self.discovery_prefix is not None and message.topic == f"{self.discovery_prefix}/{DISCOVERY_STATUS_SUFFIX}":
            try:
                self._home_assistant_status(message.payload)
            except Exception:  # never raise into paho's network thread
                log.exception("MQTT: announcing to Home Assistant failed")
            return
        try:
            command = self._parse_command(message)
            if command is not None and self._on_command is not None:
                self._on_command(command)
        except Exception:  # never raise into paho's network thread
            log.exception("MQTT: command handler failed")
            self._reject_command("the handler raised")
        else:
            if command is not None:
                with self._lock:
                    self._counts["commands"] += 1

    # -- commands ----------------------------------------------------------------------------------------------

    def _reject_command(self, why: str) -> None:
        log.warning("MQTT: command ignored: %s", why)
        with self._lock:
            self._counts["commands_rejected"] += 1

    def _parse_command(self, message) -> str | None:
        """The command name of a valid, allowed command message, else None (rejected and counted)."""
        result = parse_command(message.payload, now=datetime.now(timezone.utc), retain=message.retain,
                               allow_unlock=self.allow_unlock)
        if isinstance(result, Rejected):
            self._reject_command(result.reason)
            return None
        with self._lock:
            fresh = self._seen_commands.add(result.id)
        if not fresh:
            self._reject_command(f"{result.name} {result.id}: replayed (this id was acted on already)")
            return None
        log.info("MQTT: command %s (%s)", result.name, result.id)
        return result.name
