"""The topic tree of one door, and the validation of the topic levels it is built from (no paho)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import MqttError
from edge.mqtt.const import TOPIC_AVAILABILITY, TOPIC_COMMAND, TOPIC_EVENTS, TOPIC_STATE


def topic_level(name: str, what: str) -> str:
    """``name`` if it is one non-empty topic level (no ``/ + #`` or NUL), else :class:`MqttError` about ``what``."""
    if not name or any(c in name for c in "/+#\0"):
        raise MqttError(f"{what} must be one non-empty MQTT topic level without / + #, got {name!r}")
    return name


@dataclass(frozen=True)
class Topics:
    """The topic tree of one device (see :mod:`edge.mqtt`)."""

    base: str

    @classmethod
    def for_device(cls, prefix: str, device_id: str) -> Topics:
        """The tree ``<prefix>/<device_id>``, after checking the device id and every level of the prefix.

        Raises:
            MqttError: the device id or a prefix level is not one valid topic level.
        """
        topic_level(device_id, "device_id")
        for level in prefix.split("/"):
            topic_level(level, "every level of the prefix")
        return cls(f"{prefix}/{device_id}")

    @property
    def events(self) -> str:
        return f"{self.base}/{TOPIC_EVENTS}"

    @property
    def availability(self) -> str:
        return f"{self.base}/{TOPIC_AVAILABILITY}"

    @property
    def command(self) -> str:
        return f"{self.base}/{TOPIC_COMMAND}"

    def state(self, name: str) -> str:
        return f"{self.base}/{TOPIC_STATE}/{name}"
