"""The one face pipeline: picture -> faces -> largest face -> crop -> encoding -> nearest enrolled person.

Every part of facegate that turns a picture into a decision runs :meth:`FacePipeline.analyse`: the door daemon on
each camera frame, ``facegate identify``, ``enroll``, ``calibrate`` and ``evaluate``, ``facegate bench`` (which
times exactly this call, stage by stage) and the converter (which stops after the crop to calibrate the int8
model). There is no second copy of these steps anywhere.

=========  ====================================================================================================
stage      what
=========  ====================================================================================================
decode     the picture as ``(H, W, 3)`` uint8 RGB (:func:`edge.core.images.load_image`); an RGB array from a
           camera is taken as it is, so this stage is ~0 at the door
detect     BlazeFace on the whole picture (:class:`edge.core.detect.FaceDetector`)
crop       the largest face (by box area) cut out as a square, eyes levelled (:func:`edge.core.crop.crop_face`)
encode     FaceNet on that one crop: prewhiten, model, L2 normalisation (:class:`edge.core.encoder.FaceEncoder`)
search     1:N over every stored encoding (:func:`edge.core.gallery.nearest`), when a database is given
total      the whole call
=========  ====================================================================================================

Timings are wall-clock milliseconds (``time.perf_counter``). A stage that did not run (no face, no encoder,
no database) has no entry.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.core.crop import crop_face, largest_face
from edge.core.detect import Face, FaceDetector, check_image
from edge.core.encoder import FaceEncoder
from edge.core.gallery import database_matrix, nearest
from edge.core.images import load_image
from edge.core.timing import timed

log = logging.getLogger(__name__)

#: The pipeline's stages, in order (see the module docstring).
STAGES = ("decode", "detect", "crop", "encode", "search", "total")
#: Side of the crop when there is no encoder to ask (the converter's int8 calibration): FaceNet's input.
DEFAULT_CROP_SIZE = 160


@dataclass
class Analysis:
    """What the pipeline found in one picture.

    Attributes:
        image: the picture as ``(H, W, 3)`` uint8 RGB.
        faces: every face found, best detection score first (empty: none).
        face: the largest of them, the one cropped and encoded (``None``: no face).
        crop: ``(S, S, 3)`` uint8 RGB crop of ``face`` (``None`` without a face).
        encoding: ``(d,)`` float32 of L2 norm 1 (``None`` without a face or without an encoder).
        distance, closest: the L2 distance to the nearest stored encoding and its person (``None`` when
            nothing was searched; ``(100.0, None)`` for an empty database).
        timings_ms: milliseconds per stage that ran, and ``total``.
    """

    image: np.ndarray
    faces: list[Face]
    face: Face | None = None
    crop: np.ndarray | None = None
    encoding: np.ndarray | None = None
    distance: float | None = None
    closest: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class FacePipeline:
    """The detector, the crop settings and (optionally) the encoder, run as one pipeline.

    Args:
        detector: the BlazeFace detector.
        encoder: the FaceNet encoder; ``None`` stops the pipeline after the crop.
        margin: crop margin as a fraction of the face box's larger side (see :func:`edge.core.crop.crop_face`).
        align: rotate each face so the eyes are level before cropping.
        crop_size: side of the crop in pixels; default the encoder's input size (160 without an encoder).
    """

    detector: FaceDetector
    encoder: FaceEncoder | None = None
    margin: float = 0.1
    align: bool = True
    crop_size: int | None = None

    def __post_init__(self) -> None:
        if self.crop_size is None:
            self.crop_size = self.encoder.input_size[0] if self.encoder is not None else DEFAULT_CROP_SIZE

    def faces(self, image: Any) -> tuple[np.ndarray, list[Face]]:
        """Load ``image`` and detect its faces: ``(RGB array, faces best first)``."""
        rgb = _rgb(image)
        return rgb, self.detector.detect(rgb)

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The encoder's input crop of one face: ``(S, S, 3)`` uint8 RGB, ``S`` = :attr:`crop_size`."""
        return crop_face(rgb, face, margin=self.margin, size=int(self.crop_size or DEFAULT_CROP_SIZE),
                         align=self.align)

    def analyse(self, image: Any, *, database: Any = None, encode: bool = True,
                timings: MutableMapping[str, float] | None = None) -> Analysis:
        """Run the pipeline on one picture (see the module docstring for the stages).

        Args:
            image: a path, encoded bytes, or an ``(H, W, 3)`` uint8 RGB array (a camera frame: not copied).
            database: search the encoding among these (see :mod:`edge.core.gallery`); ``None``: no search.
            encode: ``False`` stops after the crop (the quality gate, the converter).
            timings: also record the stage timings here as they happen, so they survive an exception.

        Raises:
            ImageError: the picture cannot be read. ModelError: a model failed to run.
        """
        ms: MutableMapping[str, float] = timings if timings is not None else {}
        with timed(ms, "total"):
            with timed(ms, "decode"):
                rgb = _rgb(image)
            with timed(ms, "detect"):
                faces = self.detector.detect(rgb)
                face = largest_face(faces)
            result = Analysis(rgb, faces, face)
            if face is not None:
                with timed(ms, "crop"):
                    result.crop = self.crop(rgb, face)
                if encode and self.encoder is not None:
                    with timed(ms, "encode"):
                        result.encoding = self.encoder.encode(result.crop)[0]
                    if database is not None:
                        with timed(ms, "search"):
                            result.distance, result.closest = nearest(result.encoding, *database_matrix(database))
        result.timings_ms = dict(ms)
        return result

    def encode_faces(self, image: Any) -> list[tuple[Face, np.ndarray]]:
        """Every face in ``image`` with its ``(d,)`` encoding, best detection first (``identify --all-faces``)."""
        if self.encoder is None:
            raise ValueError("this pipeline has no encoder")
        rgb, faces = self.faces(image)
        if not faces:
            return []
        encodings = self.encoder.encode(np.stack([self.crop(rgb, f) for f in faces]))
        return list(zip(faces, encodings, strict=True))


def _rgb(image: Any) -> np.ndarray:
    """A camera's RGB frame as it is; anything else through :func:`edge.core.images.load_image`."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return check_image(image)
    return load_image(image)
