"""``[device]``: who this door is."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.types import Section


class DeviceSection(Section):
    """Who this door is."""

    id: str = Field(..., pattern=r"^[a-z0-9_-]{1,64}$",
                    description="This door's id: 1-64 of a-z 0-9 _ -. In every event and MQTT topic.")
    name: str | None = Field(None, min_length=1, max_length=200,
                             description="Display name (Home Assistant, logs); default: the id.")

    @model_validator(mode="after")
    def _default_name(self) -> DeviceSection:
        if self.name is None:
            self.name = self.id
        return self
