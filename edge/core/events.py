"""Door events: what the daemon reports to the office dashboard (over MQTT) and to its log.

Every event has a unique id, so a receiver can drop the duplicates that at-least-once delivery (QoS 1,
and resending from the outbox after a crash) may bring.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

#: Every event type, in the order a door usually sees them.
EVENT_TYPES = (
    "started",  # the daemon is up: camera, relay, store and model open
    "recognized",  # an enrolled person was recognised (and the door unlocked unless in cooldown)
    "unknown",  # a face that is not in the database (rate-limited)
    "denied",  # the door's access policy refused someone (not in group, outside hours, badge/face mismatch, ...)
    "presentation_attack",  # a photo, a screen or a still picture held up as an enrolled person (rate-limited)
    "door_unlocked",  # the relay was switched on
    "door_locked",  # the relay was switched off again
    "alarm",  # door held open or forced (door contact), or another condition needing a person
    "camera_fault",  # the camera returned nothing, timed out, a corrupt frame, or the same picture over and over
    "stopped",  # the daemon shut down cleanly
)


@dataclass(frozen=True)
class Event:
    """One event. ``time`` is ISO-8601 UTC; ``distance`` the L2 distance of the decision, if any.

    ``timings_ms`` holds the per-stage milliseconds of the frame that led to it (decode, detect, crop,
    encode, search, total); ``detail`` anything else worth knowing (e.g. an alarm's reason).
    """

    type: str
    device: str
    person: str | None = None
    distance: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}; one of {', '.join(EVENT_TYPES)}")

    def to_json(self) -> str:
        """The MQTT payload: a JSON object with every field (``None`` as ``null``)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, payload: str | bytes) -> Event:
        return cls(**json.loads(payload))
