"""Home Assistant MQTT discovery: the retained config messages that announce a door's entities (pure: no client).

One device per door, with the door's availability topic, and its entities: ``binary_sensor`` ``door`` (device
class ``lock``: on = unlocked), ``sensor`` ``last_person``, ``event`` ``events`` and, only when the door accepts
``unlock`` commands, ``lock`` ``lock`` (its state is the retained door state; unlock sends ``unlock`` and lock
sends ``lock``, each with a fresh id and Home Assistant's time, as :mod:`edge.mqtt.commands` requires). A door
without unlock commands that finds a lock config of its own retained (announced by an earlier run) replaces it
with an empty retained message, which removes the entity (:func:`lock_config_topic`; the publisher does that).

Why one config per entity (``<prefix>/<component>/<node>/<object>/config``) and not one device-based config
(``<prefix>/device/<node>/config`` with a ``cmps`` map, as the current docs recommend): Home Assistant reads the
device-based form only since 2024.11 (core PR 118757, documented on 2024-10-31; a first version was reverted in
the 2024.6 beta). 2024.3.3, the release tests/test_home_assistant.py runs, matches discovery topics against
``<component>/[<node>/]<object>/config`` and logs "Integration device is not supported" for a device-based config,
creating nothing (tried). Per-entity configs are read by every release, the newer ones too, so they are what the
door sends. Sending both forms would announce each entity twice to a newer Home Assistant (one ``unique_id`` from
two discovery topics: a duplicate it refuses with an error, at best), so only one is sent.
"""

from __future__ import annotations

import re
from typing import Any

from edge.core.events import EVENT_TYPES
from edge.mqtt.const import (
    COMMAND_LOCK,
    COMMAND_UNLOCK,
    DISCOVERY_MANUFACTURER,
    DISCOVERY_MODEL,
    DISCOVERY_NODE_PREFIX,
    PAYLOAD_LOCKED,
    PAYLOAD_OFFLINE,
    PAYLOAD_ONLINE,
    PAYLOAD_UNLOCKED,
    QOS,
    STATE_DOOR,
    STATE_DOOR_CHANGE,
    STATE_LAST_PERSON,
)
from edge.mqtt.topics import Topics

#: Home Assistant's template that turns an event's JSON into an ``event`` entity's state and attributes.
# The door's own time and detail travel with every event: events queued in the outbox during an outage fire in
# Home Assistant when they arrive, and its state (the arrival) would otherwise be all it shows.
_EVENT_TEMPLATE = ("{{ {'event_type': value_json.type, 'person': value_json.person, "
                   "'distance': value_json.distance, 'event_id': value_json.id, 'time': value_json.time, "
                   "'detail': value_json.detail} | to_json }}")
#: Home Assistant's template that turns the lock's ``payload_lock`` / ``payload_unlock`` (``value``) into a command
#: :func:`edge.mqtt.commands.parse_command` accepts: a fresh id (from the time, to the microsecond) and the time.
_COMMAND_TEMPLATE = ("{{ {'command': value, 'id': 'ha-' ~ (now().timestamp() | string | replace('.', '-')), "
                     "'time': now().isoformat()} | to_json }}")


def _version() -> str:
    """facegate's installed version, for the ``origin`` block (``"unknown"`` from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("facegate")
    except PackageNotFoundError:
        return "unknown"


def node_id(device_id: str) -> str:
    """The discovery ``<node>`` of a device: ``facegate_<device_id>`` with anything outside ``A-Za-z0-9_-`` as _."""
    return DISCOVERY_NODE_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


def config_topic(discovery_prefix: str, component: str, device_id: str, obj: str) -> str:
    """The discovery topic of one entity: ``<prefix>/<component>/<node>/<obj>/config``."""
    return f"{discovery_prefix}/{component}/{node_id(device_id)}/{obj}/config"


def lock_config_topic(discovery_prefix: str, device_id: str) -> str:
    """The discovery topic of the door's lock entity (announced only when unlock commands are allowed)."""
    return config_topic(discovery_prefix, "lock", device_id, "lock")


def discovery_messages(topics: Topics, device_id: str, discovery_prefix: str, *, device_name: str | None = None,
                       lock: bool = False) -> list[tuple[str, dict]]:
    """(config topic, config) for each entity, to be published retained: the lock's only with ``lock`` (the door
    accepts ``unlock`` commands)."""
    node = node_id(device_id)
    common: dict[str, Any] = {
        "availability_topic": topics.availability,
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "device": {"identifiers": [node], "name": device_name or f"facegate {device_id}",
                   "manufacturer": DISCOVERY_MANUFACTURER, "model": DISCOVERY_MODEL},
        "origin": {"name": "facegate", "sw_version": _version()},
        "qos": QOS,  # Home Assistant subscribes (and sends the lock's commands) at QoS 1, as the door publishes
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "door", {"name": "Door", "state_topic": topics.state(STATE_DOOR),
                                   "payload_on": PAYLOAD_UNLOCKED, "payload_off": PAYLOAD_LOCKED,
                                   "device_class": "lock",
                                   "json_attributes_topic": topics.state(STATE_DOOR_CHANGE)}),
        ("sensor", "last_person", {"name": "Last person", "state_topic": topics.state(STATE_LAST_PERSON),
                                   "icon": "mdi:account"}),
        ("event", "events", {"name": "Door event", "state_topic": topics.events,
                             "event_types": list(EVENT_TYPES), "value_template": _EVENT_TEMPLATE}),
    ]
    if lock:
        entities.append(("lock", "lock", {
            "name": "Lock", "state_topic": topics.state(STATE_DOOR), "state_locked": PAYLOAD_LOCKED,
            "state_unlocked": PAYLOAD_UNLOCKED, "command_topic": topics.command, "command_template": _COMMAND_TEMPLATE,
            "payload_unlock": COMMAND_UNLOCK, "payload_lock": COMMAND_LOCK, "optimistic": False, "retain": False,
            "json_attributes_topic": topics.state(STATE_DOOR_CHANGE)}))
    return [(config_topic(discovery_prefix, component, device_id, obj),
             {**common, **config, "unique_id": f"{node}_{obj}"}) for component, obj, config in entities]
