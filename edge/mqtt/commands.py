"""Parsing a message from the command topic: the command to act on, or why not (pure: no client, no logging)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edge.mqtt.const import COMMAND_KEY, COMMAND_QUOTE_BYTES, COMMAND_UNLOCK, COMMANDS


@dataclass(frozen=True)
class Rejected:
    """A command message that is not acted on, and why (one line, for the log)."""

    reason: str


def parse_command(payload: bytes | str, *, retain: bool = False, allow_unlock: bool = False) -> str | Rejected:
    """The command name in ``payload`` (JSON ``{"command": "<name>"}``) if it may be acted on, else :class:`Rejected`.

    Rejected: a retained message (it would be acted on again at every reconnect), a payload that is not JSON,
    a name not in :data:`edge.mqtt.const.COMMANDS`, and ``unlock`` unless ``allow_unlock``.
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
    return command
