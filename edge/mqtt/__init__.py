"""MQTT event delivery from the door, through the durable :class:`edge.storage.outbox.Outbox` (paho-mqtt 2.x).

Topic tree (``<prefix>`` defaults to ``facegate``, ``<device>`` is the door's id; every message QoS 1):

==========================================  ========  ==========================================================
topic                                       retained  payload
==========================================  ========  ==========================================================
``<prefix>/<device>/events``                no        every :class:`edge.core.events.Event` as JSON (``Event.to_json``)
``<prefix>/<device>/availability``          yes       ``online`` after connecting; ``offline`` on a clean stop,
                                                      and as the last will when the device dies or drops off
``<prefix>/<device>/state/door``            yes       ``locked`` / ``unlocked`` (from door_locked/door_unlocked)
``<prefix>/<device>/state/last_person``     yes       the name of the last person recognised
``<prefix>/<device>/state/door_change``     yes       JSON: the door state's last change, its time and cause
``<prefix>/<device>/state/<name>``          yes       any other state given to :meth:`.EventPublisher.set_state`
``<prefix>/<device>/command``               --        subscribed only with ``commands=True``: JSON
                                                      ``{"command": "reload_store" | "unlock" | "lock" |
                                                      "lockdown" | "end_lockdown",
                                                      "id": "<unique>", "time": "<ISO-8601>"}``; stale or
                                                      replayed: refused
``<discovery>/<component>/<node>/<obj>/config``  yes  Home Assistant MQTT discovery (``<discovery>`` defaults to
                                                      ``homeassistant``, ``<node>`` is ``facegate_<device>``)
==========================================  ========  ==========================================================

Home Assistant entities, all on one device with the availability topic: ``binary_sensor`` ``door``
(device class ``lock``: on = unlocked), ``sensor`` ``last_person``, ``event`` ``events`` (one event type per
:data:`edge.core.events.EVENT_TYPES`, with person, distance, event id, the door's time and detail as attributes),
and a ``lock`` only when ``unlock`` commands are allowed (see :mod:`edge.mqtt.discovery`, also for why these are
per-entity configs). ``lock`` switches the relay off now (ending a pulse); it is accepted whenever commands are.

Delivery: :meth:`~edge.mqtt.publisher.EventPublisher.publish_event` writes the event to the outbox first; one
sender thread hands pending outbox messages, oldest first and at most ``max_unacked`` at a time, to the paho
client while connected; the broker's PUBACK (``on_publish`` for that message id) removes the message from the
outbox. The paho client itself resends what it was handed after a reconnect, so nothing is handed twice by one
publisher; what is still in the outbox when the process ends is sent by the next one. That is at-least-once:
receivers drop duplicates by event id. Commands, if enabled, arrive on paho's network thread and are passed to
``on_command(command)``, which must return quickly; a malformed, unknown, retained or disallowed command is
logged, counted and ignored.

Modules (as in Home Assistant's own mqtt component): :mod:`edge.mqtt.const` every constant,
:mod:`edge.mqtt.topics` the topic tree, :mod:`edge.mqtt.commands` command parsing, :mod:`edge.mqtt.discovery`
the discovery messages (the last three pure), and :mod:`edge.mqtt.publisher` the paho client,
:class:`~edge.mqtt.publisher.EventPublisher`. The names in ``__all__`` are importable from here too, lazily:
``import edge.mqtt.const`` does not import paho.
"""

from __future__ import annotations

import importlib

#: The public names, and the module each one lives in (imported on first use).
_EXPORTS = {
    "EventPublisher": "edge.mqtt.publisher",
    "PublisherCounters": "edge.mqtt.publisher",
    "Topics": "edge.mqtt.topics",
    "COMMANDS": "edge.mqtt.const",
    "Rejected": "edge.mqtt.commands",
    "parse_command": "edge.mqtt.commands",
    "discovery_messages": "edge.mqtt.discovery",
}

__all__ = ["COMMANDS", "EventPublisher", "PublisherCounters", "Rejected", "Topics", "discovery_messages",
           "parse_command"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
