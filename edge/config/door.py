"""``[door]``: the optional door contact and exit button."""

from __future__ import annotations

from pydantic import Field

from edge.config.types import GpioPin, Section


class DoorSection(Section):
    """Optional door sensors."""

    contact_pin: GpioPin | None = Field(None, description="GPIO of the door contact (reed switch), if any.")
    exit_pin: GpioPin | None = Field(None, description="GPIO of the inside exit button, if any.")
    held_open_seconds: float = Field(30.0, gt=0, le=3600, description="Report the door as held open after this "
                                                                      "many seconds.")
