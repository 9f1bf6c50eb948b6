"""Face verification (1:1) and recognition (1:K): the seed's ``verify`` and ``who_is_it`` over numpy.

A tiny public API in the spirit of face_recognition::

    model = FaceModel.from_files("weights/facenet_int8.tflite", "weights/face_detection_short_range.tflite")
    encoding = img_to_encoding("alice.jpg", model)            # (d,) float32, L2 norm 1
    dist, door_open = verify("probe.jpg", "alice", database, model)
    min_dist, identity = who_is_it("probe.jpg", database, model)   # identity None: not in the database

Images are a path, encoded bytes, or a ``(H, W, 3)`` uint8 **RGB** array (see :func:`edge.core.images.load_image`).
A picture with several faces: the largest face (by box area) is the one encoded, verified or identified;
:meth:`FaceModel.encode_faces` returns every face. Distances are Euclidean (L2, ``np.linalg.norm``, not its
square) between L2-normalised encodings, so they lie in 0..2.

``database`` is either a mapping ``name -> encoding(s)`` (``(d,)`` or ``(k, d)``: several pictures per
person, compared against all of them) or an :class:`edge.storage.store.EncodingStore` (anything with a
``matrix() -> (names, (n, d) array)`` method), see :mod:`edge.core.gallery`. Every picture goes through the one
face pipeline, :mod:`edge.core.pipeline`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.detect import Face, FaceDetector
from edge.core.encoder import FaceEncoder
from edge.core.gallery import START_DISTANCE, database_matrix, nearest
from edge.core.openset import DEFAULT_TARGET_FPIR, OpenSetGallery
from edge.core.pipeline import Analysis, FacePipeline
from edge.errors import ModelCardError, NoFaceError, UnknownPersonError

__all__ = ["START_DISTANCE", "FaceModel", "database_matrix", "img_to_encoding", "nearest", "verify", "who_is_it"]

log = logging.getLogger(__name__)


@dataclass
class FaceModel:
    """What turns a picture into encodings and decisions: the face pipeline and the distance threshold.

    Args:
        encoder: the FaceNet TFLite model with its card.
        detector: the BlazeFace detector.
        margin: crop margin as a fraction of the face box (see :func:`edge.core.crop.crop_face`).
        align: rotate each face so the eyes are level before cropping.
        threshold: distance threshold for verify / who_is_it; ``None`` takes the one measured for the
            model and written in its card.
    """

    encoder: FaceEncoder
    detector: FaceDetector
    margin: float = 0.1
    align: bool = True
    threshold: float | None = None
    pipeline: FacePipeline = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.threshold is None:
            self.threshold = self.encoder.card.threshold
        if self.threshold is None:
            raise ModelCardError(f"{self.encoder.card.path.name} records no threshold: pass one")
        self.pipeline = FacePipeline(self.detector, self.encoder, margin=self.margin, align=self.align)

    @classmethod
    def from_files(cls, model_path: str | Path, detector_path: str | Path, *, num_threads: int | None = None,
                   runtime: str | None = None, **options: Any) -> FaceModel:
        """Open the encoder and the detector from their files; ``options`` as the class takes them."""
        encoder = FaceEncoder(model_path, num_threads=num_threads, runtime=runtime)
        detector = FaceDetector(detector_path, num_threads=num_threads, runtime=runtime)
        return cls(encoder, detector, **options)

    @property
    def model_sha256(self) -> str:
        """The encoder's sha256: encodings are only comparable with encodings of the same model."""
        return self.encoder.card.sha256

    @property
    def embedding_size(self) -> int:
        return self.encoder.embedding_size

    @property
    def crop_size(self) -> int:
        """Side of the face crops in pixels (the encoder's input)."""
        return int(self.pipeline.crop_size or self.encoder.input_size[0])

    def analyse(self, image: Any, **options: Any) -> Analysis:
        """The face pipeline on one picture: :meth:`edge.core.pipeline.FacePipeline.analyse`."""
        return self.pipeline.analyse(image, **options)

    def faces(self, image: Any) -> tuple[np.ndarray, list[Face]]:
        """Load ``image`` and detect its faces: ``(RGB array, faces best first)``."""
        return self.pipeline.faces(image)

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The encoder's input crop of one face: ``(H, W, 3)`` uint8 RGB at the model's input size."""
        return self.pipeline.crop(rgb, face)

    def encode_faces(self, image: Any) -> list[tuple[Face, np.ndarray]]:
        """Every face in ``image`` with its ``(d,)`` encoding, best detection first."""
        return self.pipeline.encode_faces(image)

    def accepts(self, distance: float | None) -> bool:
        """Whether a 1:N match at ``distance`` is close enough: ``distance <= threshold`` (who_is_it's rule)."""
        return distance is not None and self.threshold is not None and distance <= self.threshold

    def open_set(self, database: Any, *, target_fpir: float = DEFAULT_TARGET_FPIR,
                 override: float | None = None) -> OpenSetGallery:
        """``database``'s people as templates, with the 1:N threshold in force for ``target_fpir`` (see
        :mod:`edge.core.openset`): the store's site calibration while it holds for the people enrolled now and this
        model, else derived from this model's reference strangers; ``override`` replaces both."""
        return OpenSetGallery.for_card(database, self.encoder.card, target_fpir=target_fpir, override=override)

    def verifies(self, distance: float) -> bool:
        """Whether a 1:1 comparison at ``distance`` accepts the claimed person: ``distance < threshold`` (verify's)."""
        return self.threshold is not None and distance < self.threshold


def img_to_encoding(image: Any, model: FaceModel) -> np.ndarray:
    """Encode the largest face of ``image``: ``(d,)`` float32 of L2 norm 1.

    Loads the picture, finds the faces, crops the largest one (margin, eye alignment, 160x160), applies the
    preprocessing the weights expect (prewhiten), runs the model and L2-normalises the result.

    Raises:
        ImageError: the picture cannot be read. NoFaceError: no face was found in it.
    """
    analysis = model.analyse(image)
    if analysis.encoding is None:
        raise NoFaceError(f"no face found in {_describe(image)}")
    return analysis.encoding


def verify(image: Any, identity: str, database: Any, model: FaceModel) -> tuple[float, bool]:
    """Face verification (1:1): is the person in ``image`` the claimed ``identity``?

    Returns:
        ``(dist, door_open)``: the smallest L2 distance between the picture's encoding and the stored
        encodings of ``identity``, and whether it is below ``model.threshold`` (``dist < threshold``).

    Raises:
        UnknownPersonError: ``identity`` is not in the database. NoFaceError, ImageError: as
        :func:`img_to_encoding`.
    """
    names, matrix = database_matrix(database)
    rows = [i for i, n in enumerate(names) if n == identity]
    if not rows:
        raise UnknownPersonError(f"{identity!r} is not enrolled")
    encoding = img_to_encoding(image, model)
    dist = float(np.min(np.linalg.norm(matrix[rows] - encoding, axis=1)))
    return dist, model.verifies(dist)


def who_is_it(image: Any, database: Any, model: FaceModel) -> tuple[float, str | None]:
    """Face recognition (1:K): who, of everyone enrolled, is the person in ``image``?

    Returns:
        ``(min_dist, identity)``: the L2 distance to the closest stored encoding and its name, or
        ``None`` as the identity when ``min_dist`` is above ``model.threshold`` ("not in the database").
        An empty database gives ``(100.0, None)``.

    Raises:
        NoFaceError, ImageError: as :func:`img_to_encoding`.
    """
    analysis = model.analyse(image, database=database)
    if analysis.encoding is None:
        raise NoFaceError(f"no face found in {_describe(image)}")
    distance = START_DISTANCE if analysis.distance is None else analysis.distance
    if not model.accepts(distance):
        return distance, None
    return distance, analysis.closest


def _describe(image: Any) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"the {image.shape[1]}x{image.shape[0]} image"
    return "the image"
