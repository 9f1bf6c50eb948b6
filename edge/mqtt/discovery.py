"""Home Assistant MQTT discovery: the retained config messages that announce a door's entities (pure: no client).

One device per door, with the door's availability topic, and three entities: ``binary_sensor`` ``door``
(device class ``lock``: on = unlocked), ``sensor`` ``last_person`` and ``event`` ``events``.
"""

from __future__ import annotations

import re
from typing import Any

from edge.core.events import EVENT_TYPES
from edge.mqtt.const import (
    DISCOVERY_MANUFACTURER,
    DISCOVERY_MODEL,
    DISCOVERY_NODE_PREFIX,
    PAYLOAD_LOCKED,
    PAYLOAD_OFFLINE,
    PAYLOAD_ONLINE,
    PAYLOAD_UNLOCKED,
    QOS,
    STATE_DOOR,
    STATE_LAST_PERSON,
)
from edge.mqtt.topics import Topics

#: Home Assistant's template that turns an event's JSON into an ``event`` entity's state and attributes.
# The door's own time and detail travel with every event: events queued in the outbox during an outage fire in
# Home Assistant when they arrive, and its state (the arrival) would otherwise be all it shows.
_EVENT_TEMPLATE = ("{{ {'event_type': value_json.type, 'person': value_json.person, "
                   "'distance': value_json.distance, 'event_id': value_json.id, 'time': value_json.time, "
                   "'detail': value_json.detail} | to_json }}")


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


def discovery_messages(topics: Topics, device_id: str, discovery_prefix: str, *,
                       device_name: str | None = None) -> list[tuple[str, dict]]:
    """(config topic, config) for the door, last person and events entities, to be published retained."""
    node = node_id(device_id)
    common: dict[str, Any] = {
        "availability_topic": topics.availability,
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "device": {"identifiers": [node], "name": device_name or f"facegate {device_id}",
                   "manufacturer": DISCOVERY_MANUFACTURER, "model": DISCOVERY_MODEL},
        "origin": {"name": "facegate", "sw_version": _version()},
        "qos": QOS,  # Home Assistant subscribes at QoS 1, as the door publishes
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "door", {"name": "Door", "state_topic": topics.state(STATE_DOOR),
                                   "payload_on": PAYLOAD_UNLOCKED, "payload_off": PAYLOAD_LOCKED,
                                   "device_class": "lock"}),
        ("sensor", "last_person", {"name": "Last person", "state_topic": topics.state(STATE_LAST_PERSON),
                                   "icon": "mdi:account"}),
        ("event", "events", {"name": "Door event", "state_topic": topics.events,
                             "event_types": list(EVENT_TYPES), "value_template": _EVENT_TEMPLATE}),
    ]
    return [(f"{discovery_prefix}/{component}/{node}/{obj}/config",
             {**common, **config, "unique_id": f"{node}_{obj}"})
            for component, obj, config in entities]
