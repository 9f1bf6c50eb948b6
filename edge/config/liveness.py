"""``[liveness]``: is the face at the camera a live person, or a photo or a screen held up to it?

``mode``:

- ``"enforce"`` (the default): an approach the checks call an attack does not unlock; a ``presentation_attack``
  event says why (scores, still-image difference), at most once per ``report_interval_seconds`` per person.
- ``"report"``: the same event, and the door decides as if there were no check (to measure a door first).
- ``"off"``: no check.

The checks run only when the door would otherwise unlock (see :mod:`edge.core.presentation`). The model's
threshold (0.5, the original's rule) is a starting point: four labelled samples are not an evaluation, so set
the door's own with ``facegate evaluate-liveness`` on photos from its camera.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.types import ExistingFile, Section


class LivenessSection(Section):
    """Presentation-attack checks (see :mod:`edge.core.presentation`)."""

    mode: Literal["off", "report", "enforce"] = Field(
        "enforce", description="enforce: an attack does not unlock and is reported; report: reported only; off.")
    card: ExistingFile | None = Field(
        None, description="The liveness models' card (liveness.card.json, built by facegate-convert build); "
                          "default: beside [models] encoder.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Live if the models' fused live probability (0..1) is at least this; default "
                                      "the card's (0.5). Set it at the door with 'facegate evaluate-liveness'.")
    still_max_difference: float = Field(
        0.12, ge=0, le=50, description="The frames of one approach whose face region differs by at most this mean "
                                       "grey level (0..255) between frames are a still image (a photo on a replay "
                                       "camera, a frozen camera): identical 0, a JPEG re-encode ~0.05, sensor noise "
                                       "alone 0.24-1.0. 0 checks only for identical frames.")
    still_check: bool = Field(True, description="Run the still-image check (it needs votes_needed >= 2).")
    report_interval_seconds: float = Field(
        10.0, ge=0, le=3600, description="At most one presentation_attack event per person per this many seconds.")
    frozen_camera_seconds: float = Field(
        5.0, gt=0, le=3600, description="Whole frames identical for this long: a 'camera_frozen' alarm.")
