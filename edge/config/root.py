"""The root model :class:`Config` (one field per TOML table) and its checks across sections."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from edge.config.access import AccessSection
from edge.config.camera import CameraSection
from edge.config.device import DeviceSection
from edge.config.door import DoorSection
from edge.config.liveness import LivenessSection
from edge.config.log import LogSection
from edge.config.models import ModelsSection
from edge.config.mqtt import MqttSection
from edge.config.recognition import RecognitionSection
from edge.config.relay import RelaySection
from edge.config.store import StoreSection
from edge.config.types import KeyProblem, Section, pin_key


class Config(Section):
    """The whole door config file (one field per TOML table)."""

    device: DeviceSection = Field(..., description="Who this door is.")
    models: ModelsSection = Field(..., description="The TFLite model files.")
    store: StoreSection = Field(..., description="The encoding store.")
    recognition: RecognitionSection = Field(default_factory=RecognitionSection,
                                            description="Recognition and the unlock decision.")
    liveness: LivenessSection = Field(default_factory=LivenessSection,
                                      description="Presentation-attack checks: enforce, report or off.")
    camera: CameraSection = Field(..., description="The camera: type = picamera2, opencv or replay.")
    relay: Annotated[RelaySection, BeforeValidator(RelaySection.from_table)] = Field(
        ..., description="The door-strike relay (checked in plain Python, as facegate relay-off reads it).")
    door: DoorSection | None = Field(None, description="Door contact and exit button (optional).")
    mqtt: MqttSection | None = Field(None, description="MQTT events (optional: absent = no MQTT).")
    log: LogSection = Field(default_factory=LogSection, description="Logging.")
    access: AccessSection = Field(default_factory=AccessSection, description="Who may open this door, when, and "
                                  "the access log (absent: everyone enrolled, at every hour, face alone).")

    @model_validator(mode="after")
    def _check(self) -> Config:
        pins = {("relay", "pin"): self.relay.pin}
        if self.door is not None:
            pins.update({("door", k): getattr(self.door, k) for k in ("contact_pin", "exit_pin")
                         if getattr(self.door, k) is not None})
        seen: dict[tuple[str, int], tuple[str, str]] = {}
        for where, pin in pins.items():
            key = pin_key(pin)
            if key in seen:
                raise KeyProblem(where, f"pin {pin} is already used by {'.'.join(seen[key])}")
            seen[key] = where
        if self.mqtt is not None and self.mqtt.outbox_path is None:
            self.mqtt.outbox_path = self.store.path.with_name("outbox.sqlite")
        if self.access.log_path is None:
            self.access.log_path = self.store.path.with_name("access-log.sqlite")
        return self
