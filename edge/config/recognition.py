"""``[recognition]``: how a face becomes a decision to unlock.

Why ``min_face_px`` defaults to 80: the 25 celebrity val photos were shrunk so their face box was S px and
matched against the train photos (int8 FaceNet, threshold 1.058 from its card). Every photo was still
recognised down to S = 32 (24/25 at 24-28, 14/25 at 16), but the genuine distance grows as faces shrink:
median 0.59-0.61 at 64-96 px, 0.67-0.68 at 40-48, 0.73 at 32, 0.80 at 24, so the margin to the threshold is
widest from about 64 px up. 80 px keeps that margin, and is a person about 1 m from a 640x480 camera with a
62 degree field of view (a 16 cm wide face): someone at the door, not passing by.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from edge.config.types import Section


class RecognitionSection(Section):
    """How a face becomes a decision (see :class:`edge.core.decision.DoorDecider`)."""

    threshold: Annotated[float, Field(gt=0, le=2)] | None = Field(
        None, description="L2 distance (0..2) at or below which a face is that person (its template), used as "
                          "it is. Default: derived at the door from the model's reference strangers for "
                          "target_fpir at the number of people enrolled, never above the model card's.")
    fuse_frames: bool = Field(True, description="Before an unlock, fuse the frames that voted (the mean of their "
                                                "encodings) and match once more: the door opens only if the fused "
                                                "face is that person too.")
    report_closest_match: bool = Field(False, description="Name, in 'unknown' events, the enrolled person an "
                                                         "unknown face is nearest to. Off: it tells whoever reads "
                                                         "the events whom a stranger could impersonate.")
    target_fpir: float = Field(0.005, gt=0, lt=0.2,
                               description="Share of strangers the door may let in (0.005 = 0.5%): the 1:N "
                                           "threshold is derived for it at the number of people enrolled and "
                                           "tightens as the store grows (see edge.core.openset).")
    margin: float = Field(0.1, ge=0, le=1, description="Crop margin around the face box, as a fraction of its size. "
                                                       "Must match the one the store's encodings were made with.")
    align: bool = Field(True, description="Rotate each face so the eyes are level before encoding "
                                          "(must match the store's encodings).")
    min_face_px: float = Field(80.0, ge=16, le=2000,
                               description="Faces smaller than this (box's larger side, px) never count for "
                                           "unlocking. 80: about 1 m from a 640x480 camera; recognition margin "
                                           "shrinks below ~64 px (measured; see the edge.config.recognition "
                                           "docstring).")
    votes_needed: int = Field(2, ge=1, le=30, description="k: unlock when the same person wins k of the last "
                                                          "votes_window frames.")
    votes_window: int = Field(3, ge=1, le=30, validate_default=True,
                              description="n: how many recent frames vote; at least votes_needed.")
    window_seconds: float = Field(2.0, gt=0, le=60, description="The k winning frames must be within this many "
                                                                "seconds.")
    cooldown_seconds: float = Field(10.0, ge=0, le=3600, description="After an unlock, the same person does not "
                                                                     "unlock again for this many seconds.")
    unknown_report_interval_seconds: float = Field(10.0, ge=0, le=3600,
                                                   description="At most one 'unknown' event per this many seconds.")

    @field_validator("votes_window")
    @classmethod
    def _window_holds_votes(cls, value: int, info: ValidationInfo) -> int:
        needed = info.data.get("votes_needed")
        if needed is not None and value < needed:
            raise ValueError(f"votes_window ({value}) must be at least votes_needed ({needed})")
        return value
