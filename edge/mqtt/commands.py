"""Parsing a message from the command topic: the command to act on, or why not (pure: no client, no logging).

A command is JSON ``{"command": "<name>", "id": "<unique, 1-64 of A-Z a-z 0-9 _ ->", "time": "<ISO-8601 with a
time zone>"}``. It is refused when retained, stale (``time`` more than :data:`edge.mqtt.const.COMMAND_MAX_AGE_SECONDS`
from the door's clock) or replayed (an ``id`` seen before, :class:`SeenIds`): a recorded ``unlock`` sent again
opens nothing.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from edge.mqtt.const import (
    COMMAND_IDS_REMEMBERED,
    COMMAND_KEY,
    COMMAND_MAX_AGE_SECONDS,
    COMMAND_QUOTE_BYTES,
    COMMAND_UNLOCK,
    COMMANDS,
)

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Rejected:
    """A command message that is not acted on, and why (one line, for the log)."""

    reason: str


@dataclass(frozen=True)
class Command:
    """A command that may be acted on: its ``name``, ``id`` and ``time`` (aware datetime)."""

    name: str
    id: str
    time: datetime


class SeenIds:
    """The ids of the last :data:`edge.mqtt.const.COMMAND_IDS_REMEMBERED` commands acted on (not thread-safe)."""

    def __init__(self, size: int = COMMAND_IDS_REMEMBERED):
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, command_id: str) -> bool:
        """Remember ``command_id``; ``False`` if it was seen before (a replay)."""
        if command_id in self._ids:
            return False
        self._ids[command_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def parse_command(payload: bytes | str, *, now: datetime, retain: bool = False, allow_unlock: bool = False,
                  max_age_seconds: float = COMMAND_MAX_AGE_SECONDS) -> Command | Rejected:
    """The command in ``payload`` (see the module docstring) if it may be acted on at ``now``, else
    :class:`Rejected`.

    Rejected: a retained message (it would be acted on again at every reconnect), a payload that is not JSON,
    a name not in :data:`edge.mqtt.const.COMMANDS`, ``unlock`` unless ``allow_unlock``, a missing or malformed
    ``id`` or ``time``, and a ``time`` more than ``max_age_seconds`` from ``now`` (an aware datetime). Replays
    are the caller's to refuse (:class:`SeenIds`).
    """
    if retain:
        return Rejected("retained commands are not acted on")
    quoted = payload[:COMMAND_QUOTE_BYTES]
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return Rejected(f"not JSON: {quoted!r}")
    command = doc.get(COMMAND_KEY) if isinstance(doc, dict) else None
    if command not in COMMANDS:
        return Rejected(f"unknown command in {quoted!r}; known: {', '.join(COMMANDS)}")
    if command == COMMAND_UNLOCK and not allow_unlock:
        return Rejected("unlock is not allowed on this device")
    command_id, sent = doc.get("id"), doc.get("time")
    if not isinstance(command_id, str) or not _ID.fullmatch(command_id):
        return Rejected(f"{command}: no valid id (1-64 of A-Z a-z 0-9 _ -) in {quoted!r}")
    try:
        when = datetime.fromisoformat(sent) if isinstance(sent, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return Rejected(f"{command} {command_id}: no valid time (ISO-8601 with a time zone) in {quoted!r}")
    age = (now - when).total_seconds()
    if abs(age) > max_age_seconds:
        return Rejected(f"{command} {command_id}: stale, sent {age:+.0f} s from now (at most {max_age_seconds:g})")
    return Command(command, command_id, when)
