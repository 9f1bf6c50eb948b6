"""Face detection with MediaPipe's BlazeFace models on the TFLite runtime (numpy in, numpy out).

Two models are supported, told apart by their input size:

* ``face_detection_short_range.tflite``: 128x128 input, faces within about 2 m of the camera;
* ``face_detection_full_range.tflite``: 192x192 input, faces within about 5 m.

Pipeline (following MediaPipe's face detection graphs): the RGB image is letterboxed (resized keeping its
aspect ratio, centred, padded with black) to the model input, scaled to [-1, 1], run, decoded against
SSD anchors, filtered by score and merged with a score-weighted non-maximum suppression, and finally mapped
back to the pixels of the original image.

Coordinates: ``(x, y)`` with x to the right and y down, in pixels of the original image, continuous
convention: the image covers ``[0, width] x [0, height]`` and pixel ``(i, j)`` (column, row) has its centre
at ``(i + 0.5, j + 0.5)``. Boxes are not clipped: a face cut by the image border has a box that reaches
past it (:func:`edge.core.crop.crop_face` pads such regions).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.core.runtime import TFLiteModel
from edge.errors import ImageError, ModelError

log = logging.getLogger(__name__)

#: Keypoint names in the models' output order. "right"/"left" are the subject's own sides, so for a face
#: looking at the camera the right eye is on the image's left (smaller x).
KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH, RIGHT_EAR, LEFT_EAR = range(len(KEYPOINTS))

#: SSD anchor grids per model input size: ``(range name, ((stride, anchors per cell), ...))``. MediaPipe
#: lists layers (short range: strides 8, 16, 16, 16 with 2 anchors each; full range: one stride-4 layer with
#: 1 anchor) and merges layers of equal stride into one grid. Anchors have a fixed size of 1 (the whole
#: input), so every anchor of a cell is the cell centre (anchor offset 0.5).
ANCHOR_GRIDS: dict[int, tuple[str, tuple[tuple[int, int], ...]]] = {
    128: ("short", ((8, 2), (16, 6))),
    192: ("full", ((4, 1),)),
}

#: Raw score logits are clipped to +-this before the sigmoid, as MediaPipe does.
SCORE_CLIP = 100.0
NUM_KEYPOINTS = len(KEYPOINTS)
NUM_COORDS = 4 + 2 * NUM_KEYPOINTS


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in pixels of the image given to :meth:`FaceDetector.detect`.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels, x right and y down (continuous coordinates: the
            image spans ``[0, width] x [0, height]``). May reach past the image border.
        keypoints: ``(6, 2)`` float32 array of ``(x, y)`` pixels, read-only, in the order of
            :data:`KEYPOINTS`: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
            tragion (the subject's right and left: the right eye is on the image's left side).
        score: detection confidence in ``0..1``.

    Faces compare by identity (the keypoints are an array).
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    def __post_init__(self) -> None:
        points = np.array(self.keypoints, dtype=np.float32).reshape(NUM_KEYPOINTS, 2)
        points.setflags(write=False)
        object.__setattr__(self, "keypoints", points)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The box's larger side, ``max(width, height)``, in pixels (BlazeFace boxes are nearly square)."""
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(x, y)`` in pixels."""
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return f"Face(box=({box}), score={self.score:.3f})"


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as an array if it is a non-empty ``(H, W, 3)`` uint8 image, else raise ImageError."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"expected a non-empty image, got shape {image.shape}")
    return image


def anchor_centres(input_size: int, grids: tuple[tuple[int, int], ...]) -> np.ndarray:
    """SSD anchor centres ``(n, 2)`` float32 ``(x, y)`` in input pixels, in the models' output order.

    For each ``(stride, anchors per cell)`` grid: cells row by row, each cell's anchors in a row, all at
    the cell centre ``((col + 0.5) * stride, (row + 0.5) * stride)``.
    """
    parts = []
    for stride, per_cell in grids:
        cells = math.ceil(input_size / stride)
        centres = (np.arange(cells, dtype=np.float32) + 0.5) * stride
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        parts.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square model input: ``input = original * scale + offset``.

    ``scale`` and ``offset`` are ``(x, y)`` pairs (pixels of the input per pixel of the original, and
    input pixels); x and y scales differ only by the rounding of the resized size.
    """

    scale: tuple[float, float]
    offset: tuple[float, float]

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` ``(x, y)`` input pixels back to original-image pixels (float32)."""
        scale = np.asarray(self.scale, np.float32)
        offset = np.asarray(self.offset, np.float32)
        return ((np.asarray(points, np.float32) - offset) / scale).astype(np.float32)


def halve_to(image: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Average 2x2 blocks while the image's larger side is at least ``2 * size`` pixels.

    OpenCV's area resize is fast for exact halving and slow for other factors, so the bulk of a large
    downscale is done by halving. An odd last row or column is dropped first, so pixel ``(i, j)`` of the
    result is exactly the mean of the ``factor x factor`` block at ``(i * factor, j * factor)``.
    Returns the smaller image and ``factor`` (a power of two; 1 if nothing was done).
    """
    factor = 1
    while max(image.shape[:2]) >= 2 * size and min(image.shape[:2]) >= 2:
        height, width = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[: 2 * height, : 2 * width], (width, height), interpolation=cv2.INTER_AREA)
        factor *= 2
    return image, factor


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit an ``(H, W, 3)`` uint8 image into ``size x size`` keeping its aspect ratio, centred, black padding.

    Downscaling averages pixels (exact 2x2 halving, then area interpolation: no aliasing), upscaling is
    bilinear. Returns the ``(size, size, 3)`` uint8 image and the :class:`Letterbox` that maps its
    coordinates back. When halving drops an odd last row or column (at most ``factor - 1`` pixels of the
    bottom or right edge), the mapping stays exact for the rest.
    """
    small, factor = halve_to(image, size)
    height, width = small.shape[:2]
    ratio = size / max(width, height)
    new_w = min(size, max(1, round(width * ratio)))
    new_h = min(size, max(1, round(height * ratio)))
    interpolation = cv2.INTER_AREA if ratio < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(small, (new_w, new_h), interpolation=interpolation)
    left = (size - new_w) // 2
    top = (size - new_h) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    scale = (new_w / (width * factor), new_h / (height * factor))
    return canvas, Letterbox(scale=scale, offset=(float(left), float(top)))


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU ``(n,)`` of one ``(4,)`` box with ``(n, 4)`` boxes, all ``(left, top, right, bottom)``."""
    left = np.maximum(box[0], boxes[:, 0])
    top = np.maximum(box[1], boxes[:, 1])
    right = np.minimum(box[2], boxes[:, 2])
    bottom = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, *, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression.

    Repeatedly takes the best remaining detection and every remaining one overlapping it by more than
    ``iou_threshold`` (IoU); their boxes ``(n, 4)`` and keypoints ``(n, 6, 2)`` are averaged with the scores
    as weights, the group keeps the best score, and the group is removed. Returns ``(box (4,), keypoints
    (6, 2), score)`` tuples, best score first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.arange(len(scores))
    merged = []
    while remaining.size:
        best = remaining[0]
        overlap = iou(boxes[best], boxes[remaining]) > iou_threshold
        overlap[0] = True
        group = remaining[overlap]
        weights = scores[group] / scores[group].sum()
        box = np.tensordot(weights, boxes[group], axes=1)
        points = np.tensordot(weights, keypoints[group], axes=1)
        merged.append((box.astype(np.float32), points.astype(np.float32), float(scores[best])))
        remaining = remaining[~overlap]
    return merged


class FaceDetector:
    """BlazeFace face detector: ``detector.detect(rgb_image) -> [Face, ...]``.

    Args:
        model_path: ``face_detection_short_range.tflite`` (128x128 input) or
            ``face_detection_full_range.tflite`` (192x192 input); the range is read from the input size.
        min_score: faces scoring below this (0..1) are dropped.
        iou_threshold: detections overlapping the best one by more than this IoU are merged into it.
        num_threads: CPU threads for the interpreter (``None``: the runtime's default).
        runtime: force a TFLite runtime by name (see :data:`edge.core.runtime.RUNTIMES`).

    Attributes:
        input_size: the model's square input side in pixels (128 or 192).
        range: ``"short"`` or ``"full"``.

    Not thread-safe (one interpreter): use one detector per thread.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        num_threads: int | None = None,
        runtime: str | None = None,
    ):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.min_score = float(min_score)
        self.iou_threshold = float(iou_threshold)
        self.model = TFLiteModel(model_path, num_threads=num_threads, runtime=runtime)
        shape = self.model.input.shape
        if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3:
            raise ModelError(f"{self.model.path.name} is not a BlazeFace model: input shape {shape}")
        if shape[1] not in ANCHOR_GRIDS:
            raise ModelError(
                f"{self.model.path.name}: no BlazeFace anchor layout for a {shape[1]}x{shape[1]} input "
                f"(known: {', '.join(str(s) for s in ANCHOR_GRIDS)})"
            )
        self.input_size = int(shape[1])
        self.range, grids = ANCHOR_GRIDS[self.input_size]
        self._anchors = anchor_centres(self.input_size, grids)
        self._regressor_index, self._score_index = self._output_indices()
        log.debug(
            "face detector %s: %s range, %d anchors", self.model.path.name, self.range, len(self._anchors)
        )

    def _output_indices(self) -> tuple[int, int]:
        """Positions of the regressor ``(1, n, 16)`` and score ``(1, n, 1)`` outputs, found by shape."""
        n = len(self._anchors)
        found = {spec.shape[-1]: i for i, spec in enumerate(self.model.outputs) if spec.shape[:2] == (1, n)}
        if NUM_COORDS not in found or 1 not in found:
            shapes = [spec.shape for spec in self.model.outputs]
            raise ModelError(
                f"{self.model.path.name}: expected outputs (1, {n}, {NUM_COORDS}) and (1, {n}, 1), "
                f"got {shapes}"
            )
        return found[NUM_COORDS], found[1]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Find the faces in one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB image (convert OpenCV's BGR first).

        Returns:
            The faces, best score first (empty if none); boxes and keypoints in pixels of ``image``.

        Raises:
            ImageError: ``image`` is not a non-empty ``(H, W, 3)`` uint8 array.
        """
        check_image(image)
        fitted, fit = letterbox(image, self.input_size)
        x = fitted.astype(np.float32)[None] / np.float32(127.5) - np.float32(1.0)
        outputs = self.model(x)
        raw = outputs[self._regressor_index][0]
        logits = outputs[self._score_index][0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIP, SCORE_CLIP)))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        boxes, keypoints = self._decode(raw[keep], self._anchors[keep])
        merged = weighted_nms(boxes, keypoints, scores[keep], iou_threshold=self.iou_threshold)
        faces = []
        for box, points, score in merged:
            corners = fit.to_original(box.reshape(2, 2)).ravel()
            faces.append(Face(box=tuple(corners), keypoints=fit.to_original(points), score=score))
        log.debug("detected %d face(s) in a %dx%d image", len(faces), image.shape[1], image.shape[0])
        return faces

    @staticmethod
    def _decode(raw: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Regressors ``(n, 16)`` -> boxes ``(n, 4)`` (left, top, right, bottom) and keypoints ``(n, 6, 2)``.

        The regressors are ``[cx, cy, w, h, x0, y0, ..., x5, y5]`` in input pixels, the centre and keypoints
        relative to the anchor centre (anchors have the fixed size of the whole input, so MediaPipe's
        ``value / input_size * anchor_size * input_size`` is the raw value itself).
        """
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
        return boxes.astype(np.float32), keypoints.astype(np.float32)
