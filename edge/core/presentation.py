"""Presentation attacks over one approach: the liveness score fused over its frames, and a still-image check.

The door asks only when it would otherwise unlock (:class:`edge.core.decision.DoorDecider` calls its
``confirm`` with the frames that voted), so frames of nobody, of strangers and of people still far away cost
nothing extra. Two checks, each a reason to call the approach an attack:

- ``liveness_score``: the MiniFASNet score (:mod:`edge.core.liveness`) of each voting frame, averaged over the
  frames, is below the threshold;
- ``still_image``: the voting frames, cropped at the *same* box (the last frame's face), are identical or nearly
  so: a photo on a replay camera, or a frozen camera. A live person in front of a real sensor never gives two
  equal frames: sensor noise alone (sigma 0.5-2 grey levels) makes the mean absolute difference 0.24-1.0, while
  the same frame twice gives 0 and a JPEG re-encode of it about 0.05. Cropping each frame at its own detected
  box would add 0.4-3.8 of jitter and hide that difference, hence one box for all. The still check needs two
  frames or more (``votes_needed`` >= 2).

A frozen camera is also a camera fault: :class:`FrozenCameraWatch` watches every frame, face or not.

Pure: no clock and no I/O; times are passed in (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.core.decision import Sighting
from edge.core.detect import Face

#: The liveness modes of ``[liveness] mode``.
MODES = ("off", "report", "enforce")
#: Reasons an approach is called a presentation attack.
REASON_SCORE = "liveness_score"
REASON_STILL = "still_image"
#: Side of the grey crop the still check compares, pixels.
STILL_CROP = 64
#: Side of the grey thumbnail :class:`FrozenCameraWatch` compares, pixels.
THUMBNAIL = 32


def grey_crop(rgb: np.ndarray, face: Face, size: int = STILL_CROP) -> np.ndarray:
    """The square around ``face``'s box (its larger side) in the ``(H, W, 3)`` uint8 RGB ``rgb``, grey,
    resized to ``(size, size)`` float32 grey levels 0..255 (outside the image: black)."""
    cx, cy = face.center
    half = face.size / 2.0
    scale = size / (2.0 * half)
    matrix = np.array([[scale, 0.0, (half - cx) * scale], [0.0, scale, (half - cy) * scale]])
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT).astype(np.float32)


def still_difference(frames: Sequence[np.ndarray], face: Face) -> float | None:
    """How much the face region changes between consecutive frames: the largest, over consecutive pairs, of the
    mean absolute grey-level difference (0..255) of the frames cropped at ``face``'s box.

    ``None`` with fewer than two frames. 0: every frame is the same picture.
    """
    if len(frames) < 2:
        return None
    crops = [grey_crop(f, face) for f in frames]
    return max(float(np.mean(np.abs(a - b))) for a, b in zip(crops, crops[1:], strict=False))


@dataclass(frozen=True)
class Assessment:
    """What the presentation-attack checks say of one approach.

    Attributes:
        live: no check found an attack.
        score: the liveness score fused over the frames (``None``: no model).
        frame_scores: each voting frame's score, oldest first.
        still_difference: see :func:`still_difference` (``None``: fewer than two frames).
        reasons: why it is an attack (:data:`REASON_SCORE`, :data:`REASON_STILL`); empty when live.
    """

    live: bool
    score: float | None
    frame_scores: tuple[float, ...]
    still_difference: float | None
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"live": self.live, "score": None if self.score is None else round(self.score, 4),
                "frame_scores": [round(s, 4) for s in self.frame_scores],
                "still_difference": None if self.still_difference is None else round(self.still_difference, 3),
                "reasons": list(self.reasons)}


@dataclass
class PresentationCheck:
    """The presentation-attack checks of one door.

    Args:
        model: a :class:`edge.core.liveness.LivenessModel` (``None``: only the still check runs).
        mode: ``"report"`` (say so, decide as before) or ``"enforce"`` (refuse the unlock); see :data:`MODES`.
        threshold: live if the fused score is at least this (default: the model's).
        still_max_difference: frames whose :func:`still_difference` is at most this are a still image.
        still_check: run the still-image check at all.
        report_interval_seconds: at most one report per person per this many seconds (an attacker holding a
            photo up triggers the check on every frame).
    """

    model: Any = None
    mode: str = "enforce"
    threshold: float | None = None
    still_max_difference: float = 0.12
    still_check: bool = True
    report_interval_seconds: float = 10.0
    _scores: dict[int, tuple[Sighting, float]] = field(default_factory=dict, repr=False)
    _last_report: dict[str | None, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES[1:]:
            raise ValueError(f"mode {self.mode!r} is not one of {MODES[1:]} (no check at all: pass no check)")
        if self.threshold is None and self.model is not None:
            self.threshold = self.model.threshold

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    def assess(self, votes: Sequence[Sighting]) -> Assessment:
        """Check the frames that voted for one unlock (each with its ``frame`` and ``face``), oldest first.

        A frame without its picture cannot be checked: the approach is then not live (never unlock on what
        was not looked at).
        """
        usable = [v for v in votes if v.frame is not None and v.face is not None]
        if not usable or len(usable) != len(votes):
            return Assessment(False, None, (), None, (REASON_SCORE,))
        reasons: list[str] = []
        scores: tuple[float, ...] = ()
        fused = None
        if self.model is not None:
            scores = tuple(self._score(v) for v in usable)
            fused = float(np.mean(scores))
            if not fused >= float(self.threshold or 0.0):
                reasons.append(REASON_SCORE)
        last_face = usable[-1].face
        assert last_face is not None
        still = (still_difference([v.frame for v in usable if v.frame is not None], last_face)
                 if self.still_check else None)
        if still is not None and still <= self.still_max_difference:
            reasons.append(REASON_STILL)
        return Assessment(not reasons, fused, scores, still, tuple(reasons))

    def _score(self, sighting: Sighting) -> float:
        """A frame's score, computed once however many approaches it votes in."""
        cached = self._scores.get(id(sighting))
        if cached is not None and cached[0] is sighting:
            return cached[1]
        assert sighting.frame is not None and sighting.face is not None
        score = self.model.score(sighting.frame, sighting.face).live
        if len(self._scores) > 64:  # only the last few frames can vote again
            self._scores.clear()
        self._scores[id(sighting)] = (sighting, score)
        return score

    def should_report(self, person: str | None, now: float) -> bool:
        """Whether to send a ``presentation_attack`` event for ``person`` now (rate-limited per person)."""
        last = self._last_report.get(person, float("-inf"))
        if now - last < self.report_interval_seconds:
            return False
        self._last_report[person] = now
        return True


class FrozenCameraWatch:
    """Notices a camera that keeps delivering the same picture (a frozen sensor, a stuck driver, a replayed
    still) from a tiny grey thumbnail of every frame.

    Args:
        after_seconds: frames identical (mean absolute thumbnail difference at most ``max_difference``) for at
            least this long, over at least ``min_frames`` frames, make the camera frozen.
    """

    def __init__(self, *, after_seconds: float = 5.0, min_frames: int = 5, max_difference: float = 0.05):
        self.after_seconds = after_seconds
        self.min_frames = min_frames
        self.max_difference = max_difference
        self._last: np.ndarray | None = None
        self._since: float | None = None
        self._count = 0
        self.frozen = False

    def observe(self, rgb: np.ndarray, now: float) -> str | None:
        """Take one ``(H, W, 3)`` uint8 RGB frame; returns ``"camera_frozen"`` when the camera has just been found
        frozen, ``"camera_recovered"`` when a frozen camera delivers a new picture, else ``None``."""
        thumb = cv2.resize(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), (THUMBNAIL, THUMBNAIL),
                           interpolation=cv2.INTER_AREA).astype(np.float32)
        same = self._last is not None and float(np.mean(np.abs(thumb - self._last))) <= self.max_difference
        self._last = thumb
        if not same:
            self._since, self._count = now, 1
            if self.frozen:
                self.frozen = False
                return "camera_recovered"
            return None
        self._count += 1
        assert self._since is not None
        if not self.frozen and self._count >= self.min_frames and now - self._since >= self.after_seconds:
            self.frozen = True
            return "camera_frozen"
        return None
