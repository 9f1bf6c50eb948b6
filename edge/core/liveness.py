"""Presentation-attack detection: is the face at the camera a live person, or a print or a screen held up?

Two MiniFASNet models (Minivision's Silent-Face-Anti-Spoofing, Apache-2.0, shipped in ``weights/pad/`` and
converted to TFLite by ``facegate-convert build``) each look at the face with more or less of its surroundings
(the face box scaled 2.7 and 4.0 times) and say how likely it is to be live. Their softmax outputs are
averaged, as the original does; :mod:`edge.core.presentation` fuses that score again over the frames of one
approach and adds a still-image check that needs no model.

The crop the models were trained on (from the original code):

- the face box of the original's detector (a RetinaFace trained on WIDER FACE, whose boxes outline the face
  from forehead to chin), scaled ``crop_scale`` times about its centre, the scale capped so the region fits the
  image, then *shifted* (not cut) to stay inside it, and resized to 80x80, aspect not kept;
- BGR, float 0..255, not normalised; the TFLite models take NHWC ``(1, 80, 80, 3)``;
- 3 logits; softmax; index 1 is "live".

BlazeFace's boxes are not RetinaFace's: they are wider and sit lower on the face. The card's
``box_correction`` maps a BlazeFace box to the face's outline, measured by the build with MediaPipe's face
mesh on real photos (``convert/liveness.py``), so the models see the framing they were trained with.

Coordinates are ``(x, y)`` pixels, x right, y down, as in :mod:`edge.core.detect`.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.core.detect import Face, check_image
from edge.core.modelcard import CHECKSUM_KEY, MAX_DEPTH, CardChecker, nesting_depth, read_sealed_card
from edge.errors import ModelCardError, ModelError
from edge.files import sha256_file

log = logging.getLogger(__name__)

#: The liveness card's format (``liveness.card.json`` beside the models).
LIVENESS_CARD_FORMAT = 1
#: The card's file name in the models folder.
LIVENESS_CARD = "liveness.card.json"
#: Side of the models' square input, pixels.
INPUT_SIZE = 80
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[A-Za-z0-9_.-]{1,64}\.tflite")


@dataclass(frozen=True)
class BoxCorrection:
    """How a BlazeFace box becomes the face outline the models were trained on.

    Attributes:
        width, height: the outline's width and height as multiples of the BlazeFace box's.
        shift_up: how far the outline's centre lies above the box's, as a fraction of the box height.
    """

    width: float = 1.0
    height: float = 1.0
    shift_up: float = 0.0

    def apply(self, face: Face) -> tuple[float, float, float, float]:
        """The corrected box of ``face`` as ``(left, top, width, height)`` in pixels."""
        cx, cy = face.center
        w, h = face.width * self.width, face.height * self.height
        cy -= self.shift_up * face.height
        return cx - w / 2.0, cy - h / 2.0, w, h


def crop_region(image_size: tuple[int, int], box: tuple[float, float, float, float],
                scale: float) -> tuple[int, int, int, int]:
    """The original's crop region: ``box`` ``(left, top, width, height)`` scaled ``scale`` times about its centre
    (the scale capped so the region fits), shifted to stay inside an image of ``(width, height)`` pixels.

    Returns:
        ``(left, top, right, bottom)``, integer pixels, inclusive (the region is ``[top:bottom+1, left:right+1]``).
    """
    img_w, img_h = image_size
    left, top, box_w, box_h = box
    if not (box_w > 0 and box_h > 0):
        raise ValueError(f"empty face box {box}")
    scale = min((img_h - 1) / box_h, (img_w - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = left + box_w / 2.0, top + box_h / 2.0
    x0, y0, x1, y1 = cx - new_w / 2.0, cy - new_h / 2.0, cx + new_w / 2.0, cy + new_h / 2.0
    if x0 < 0:
        x1, x0 = x1 - x0, 0.0
    if y0 < 0:
        y1, y0 = y1 - y0, 0.0
    if x1 > img_w - 1:
        x0, x1 = x0 - (x1 - img_w + 1), img_w - 1.0
    if y1 > img_h - 1:
        y0, y1 = y0 - (y1 - img_h + 1), img_h - 1.0
    return int(x0), int(y0), int(x1), int(y1)


def liveness_crop(rgb: np.ndarray, box: tuple[float, float, float, float], scale: float,
                  size: int = INPUT_SIZE) -> np.ndarray:
    """One model's input: ``(size, size, 3)`` uint8 **BGR** of the region :func:`crop_region` picks in the
    ``(H, W, 3)`` uint8 RGB ``rgb`` (bilinear resize, aspect not kept, as the models were trained)."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = crop_region((width, height), box, scale)
    region = rgb[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1]
    if region.size == 0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    resized = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized[:, :, ::-1])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class LivenessModelSpec:
    """One model of the card: its file, sha256 and the crop scale it was trained with."""

    name: str
    file: str
    sha256: str
    crop_scale: float


@dataclass(frozen=True)
class LivenessCard:
    """The parsed ``liveness.card.json``: the models, the box correction, the threshold; ``data`` is the whole
    document."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> LivenessCard:
        """Read and check ``path`` (JSON, format, schema, checksum), as model cards are read.

        Raises:
            ModelError: there is no such file. ModelCardError: anything else wrong with it, in one line.
        """
        path = Path(path)
        return cls(path, read_sealed_card(path, validate_liveness_card, what="liveness card"))

    @property
    def models(self) -> list[LivenessModelSpec]:
        return [LivenessModelSpec(m["name"], m["file"], m["sha256"], float(m["crop_scale"]))
                for m in self.data["models"]]

    @property
    def box_correction(self) -> BoxCorrection:
        c = self.data["box_correction"]
        return BoxCorrection(float(c["width"]), float(c["height"]), float(c["shift_up"]))

    @property
    def threshold(self) -> float:
        """The card's default: live if the fused live probability is at least this."""
        return float(self.data["threshold"]["value"])

    @property
    def live_index(self) -> int:
        return int(self.data["output"]["live_index"])


def validate_liveness_card(data: Any, path: str | Path) -> None:
    """Check a liveness card's format and schema (not its checksum, not the models' sha256).

    Raises:
        ModelCardError: one line, ``<card>: <key>: <reason>``, for the first problem found.
    """
    check = CardChecker(Path(path))
    if nesting_depth(data) > MAX_DEPTH or not isinstance(data, dict):
        raise ModelCardError(f"{path}: not a facegate liveness card (a JSON object nested at most {MAX_DEPTH} deep)")
    fmt = check.get(data, "format", "")
    if fmt != LIVENESS_CARD_FORMAT or isinstance(fmt, bool):
        raise check.error("format", f"{fmt!r} is not a liveness card format this facegate reads "
                                    f"({LIVENESS_CARD_FORMAT}): rebuild with facegate-convert build")
    check.string(data, CHECKSUM_KEY, pattern=_HEX64, expect="a sha256 (64 lowercase hex digits)")
    models = check.get(data, "models", "")
    if not isinstance(models, list) or not 1 <= len(models) <= 4 or not all(isinstance(m, dict) for m in models):
        raise check.error("models", "must be a list of 1 to 4 model objects")
    for i, model in enumerate(models):
        where = f"models[{i}]"
        check.string(model, "name", where)
        check.string(model, "file", where, pattern=_FILE, expect="a .tflite file name beside the card")
        check.string(model, "sha256", where, pattern=_HEX64, expect="a sha256 (64 lowercase hex digits)")
        check.number(model, "crop_scale", where, low=1.0, high=8.0)
    tensor = check.object(data, "input")
    shape = check.shape(tensor, "shape", "input", 4)
    if shape != [1, INPUT_SIZE, INPUT_SIZE, 3]:
        raise check.error("input.shape", f"{shape} is not [1, {INPUT_SIZE}, {INPUT_SIZE}, 3]")
    if tensor.get("colour") != "BGR":
        raise check.error("input.colour", "must be \"BGR\" (what the models were trained on)")
    output = check.object(data, "output")
    classes = check.integer(output, "classes", "output", 2, 16)
    check.integer(output, "live_index", "output", 0, classes - 1)
    correction = check.object(data, "box_correction")
    for key in ("width", "height"):
        check.number(correction, key, "box_correction", low=0.5, high=2.0)
    check.number(correction, "shift_up", "box_correction", low=-0.5, high=0.5)
    check.number(check.object(data, "threshold"), "value", "threshold", low=0.0, high=1.0)


class LivenessModel:
    """The card's models, loaded and checked by sha256, scoring one face at a time.

    Args:
        card: a :class:`LivenessCard` (its models are the files it names beside it).
        num_threads: CPU threads for each model (``None``: the runtime's choice).
        runtime: the TFLite runtime (:func:`edge.core.runtime.interpreter_class`); default the first found.
        threshold: live if the fused probability is at least this (default: the card's).

    Raises:
        ModelError: a model is missing or does not match its sha256 in the card, or cannot be loaded.
    """

    def __init__(self, card: LivenessCard, *, num_threads: int | None = None, runtime: str | None = None,
                 threshold: float | None = None):
        from edge.core.runtime import TFLiteModel

        self.card = card
        self.correction = card.box_correction
        self.threshold = card.threshold if threshold is None else float(threshold)
        self._live = card.live_index
        self._models: list[tuple[LivenessModelSpec, Any]] = []
        for spec in card.models:
            path = card.path.parent / spec.file
            if not path.is_file():
                raise ModelError(f"liveness model {path} does not exist (build it with 'facegate-convert build')")
            actual = sha256_file(path)
            if actual != spec.sha256:
                raise ModelError(f"{path.name} does not match {card.path.name}: sha256 {actual[:16]}..., card says "
                                 f"{spec.sha256[:16]}... (a different or damaged model file)")
            self._models.append((spec, TFLiteModel(path, num_threads=num_threads, runtime=runtime)))

    @classmethod
    def from_card(cls, path: str | Path, **options: Any) -> LivenessModel:
        """Load the card at ``path`` and its models (see the class for ``options``)."""
        return cls(LivenessCard.read(path), **options)

    @property
    def names(self) -> list[str]:
        return [spec.name for spec, _ in self._models]

    def crops(self, rgb: np.ndarray, face: Face) -> list[np.ndarray]:
        """Each model's ``(80, 80, 3)`` uint8 BGR input for ``face`` in the ``(H, W, 3)`` uint8 RGB ``rgb``."""
        box = self.correction.apply(face)
        return [liveness_crop(rgb, box, spec.crop_scale) for spec, _ in self._models]

    def score_crops(self, crops: list[np.ndarray]) -> LivenessScore:
        """Score prepared crops (one per model, as :meth:`crops` makes them)."""
        per_model = {}
        for (spec, model), crop in zip(self._models, crops, strict=True):
            logits = model(crop[None].astype(np.float32))[0]
            per_model[spec.name] = float(softmax(logits.reshape(-1))[self._live])
        live = float(np.mean(list(per_model.values())))
        if not math.isfinite(live):
            raise ModelError("a liveness model returned a non-finite score")
        return LivenessScore(live, per_model)

    def score(self, rgb: np.ndarray, face: Face) -> LivenessScore:
        """How likely ``face`` in the ``(H, W, 3)`` uint8 RGB frame ``rgb`` is a live person (see the module)."""
        return self.score_crops(self.crops(check_image(rgb), face))

    def is_live(self, score: float) -> bool:
        return score >= self.threshold


@dataclass(frozen=True)
class LivenessScore:
    """One face's presentation-attack score.

    Attributes:
        live: the models' mean probability that the face is live, ``0..1``.
        per_model: each model's own probability, by name.
    """

    live: float
    per_model: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"score": round(self.live, 4), "models": {k: round(v, 4) for k, v in self.per_model.items()}}
