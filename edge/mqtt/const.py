"""Every constant of the MQTT adapter: QoS, topic suffixes, payloads, command names and default prefixes.

Pure values (no paho, no I/O), so any module may import this one without pulling in the client.
"""

from __future__ import annotations

#: The QoS of every message facegate publishes or subscribes to.
QOS = 1

#: The first topic level(s) of a door's tree, and Home Assistant's discovery prefix.
DEFAULT_PREFIX = "facegate"
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
#: The default MQTT client id is this followed by the device id.
CLIENT_ID_PREFIX = "facegate-"

#: Topic suffixes below ``<prefix>/<device>``.
TOPIC_EVENTS = "events"
TOPIC_AVAILABILITY = "availability"
TOPIC_COMMAND = "command"
TOPIC_STATE = "state"

#: Availability payloads (``offline`` is the last will as well).
PAYLOAD_ONLINE = "online"
PAYLOAD_OFFLINE = "offline"
#: Door state payloads.
PAYLOAD_LOCKED = "locked"
PAYLOAD_UNLOCKED = "unlocked"

#: State names published on ``state/<name>``.
STATE_DOOR = "door"
STATE_LAST_PERSON = "last_person"
#: Retained JSON beside ``state/door``: the door's last change, ``{"state", "time", "cause", "person", "event"}``
#: (``cause``: face, badge+face, exit_button, command, or start: the relay driven off when the door started). Home
#: Assistant shows it as the door's and the lock's attributes.
STATE_DOOR_CHANGE = "door_change"

#: The event type whose person becomes :data:`STATE_LAST_PERSON`.
EVENT_RECOGNIZED = "recognized"
#: The door states an event implies: event type -> (state name, value).
EVENT_STATES = {
    "door_unlocked": (STATE_DOOR, PAYLOAD_UNLOCKED),
    "door_locked": (STATE_DOOR, PAYLOAD_LOCKED),
}

#: Commands understood on the command topic.
COMMAND_RELOAD_STORE = "reload_store"
COMMAND_UNLOCK = "unlock"
#: Relay off now (a pulse ends early): harmless, so accepted whenever commands are (Home Assistant's lock button).
COMMAND_LOCK = "lock"
#: A lockdown (nothing unlocks but the exit button) starts / ends: restricts the door, so accepted whenever
#: commands are; whoever may write the command topic (its broker ACL) may set it.
COMMAND_LOCKDOWN = "lockdown"
COMMAND_END_LOCKDOWN = "end_lockdown"
COMMANDS = (COMMAND_RELOAD_STORE, COMMAND_UNLOCK, COMMAND_LOCK, COMMAND_LOCKDOWN, COMMAND_END_LOCKDOWN)
#: The key of the command name in a command message's JSON object.
COMMAND_KEY = "command"
#: How many bytes of a rejected payload are quoted in the log.
COMMAND_QUOTE_BYTES = 80
#: A command older (or newer: a clock that is off) than this many seconds is stale and refused.
COMMAND_MAX_AGE_SECONDS = 30.0
#: Command ids remembered to refuse a replay (the oldest are forgotten first; older commands are stale anyway).
COMMAND_IDS_REMEMBERED = 1000

#: Home Assistant discovery: ``<node>`` is this followed by the device id (characters outside
#: ``A-Za-z0-9_-`` become ``_``); the device's manufacturer and model.
DISCOVERY_NODE_PREFIX = "facegate_"
DISCOVERY_MANUFACTURER = "facegate"
DISCOVERY_MODEL = "face-recognition door"
#: The topic Home Assistant announces itself on (its birth message "online"): discovery is sent again then.
DISCOVERY_STATUS_SUFFIX = "status"
HA_ONLINE = "online"
