"""Face verification (1:1) and recognition (1:K): the seed's ``verify`` and ``who_is_it`` over numpy.

A tiny public API in the spirit of face_recognition::

    model = FaceModel.from_files("weights/facenet_int8.tflite", "weights/face_detection_short_range.tflite")
    encoding = img_to_encoding("alice.jpg", model)            # (d,) float32, L2 norm 1
    dist, door_open = verify("probe.jpg", "alice", database, model)
    min_dist, identity = who_is_it("probe.jpg", database, model)   # identity None: not in the database

Images are a path, encoded bytes, or a ``(H, W, 3)`` uint8 **RGB** array (see :func:`edge.images.load_image`).
A picture with several faces: the largest face (by box area) is the one encoded, verified or identified;
:meth:`FaceModel.encode_faces` returns every face. Distances are Euclidean (L2, ``np.linalg.norm``, not its
square) between L2-normalised encodings, so they lie in 0..2.

``database`` is either a mapping ``name -> encoding(s)`` (``(d,)`` or ``(k, d)``: several pictures per
person, compared against all of them) or an :class:`edge.store.EncodingStore` (anything with a
``matrix() -> (names, (n, d) array)`` method).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.crop import crop_face, largest_face
from edge.detect import Face, FaceDetector
from edge.encoder import FaceEncoder
from edge.errors import FacegateError, NoFaceError
from edge.images import load_image

log = logging.getLogger(__name__)

#: who_is_it's starting distance: larger than any distance between unit vectors (at most 2).
START_DISTANCE = 100.0


class UnknownPersonError(FacegateError):
    """verify was asked about a name that is not enrolled."""


@dataclass
class FaceModel:
    """What turns a picture into encodings: the face detector, the crop settings and the encoder.

    Args:
        encoder: the FaceNet TFLite model with its card.
        detector: the BlazeFace detector.
        margin: crop margin as a fraction of the face box (see :func:`edge.crop.crop_face`).
        align: rotate each face so the eyes are level before cropping.
        threshold: distance threshold for verify / who_is_it; ``None`` takes the one measured for the
            model and written in its card.
    """

    encoder: FaceEncoder
    detector: FaceDetector
    margin: float = 0.1
    align: bool = True
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is None:
            self.threshold = self.encoder.card.threshold
        if self.threshold is None:
            raise FacegateError(f"{self.encoder.card.path.name} records no threshold: pass one")

    @classmethod
    def from_files(cls, model_path: str | Path, detector_path: str | Path, *, num_threads: int | None = None,
                   runtime: str | None = None, **options) -> FaceModel:
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

    def faces(self, image) -> tuple[np.ndarray, list[Face]]:
        """Load ``image`` and detect its faces: ``(RGB array, faces best first)``."""
        rgb = load_image(image)
        return rgb, self.detector.detect(rgb)

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The encoder's input crop of one face: ``(H, W, 3)`` uint8 RGB at the model's input size."""
        return crop_face(rgb, face, margin=self.margin, size=self.encoder.input_size[0], align=self.align)

    def encode_faces(self, image) -> list[tuple[Face, np.ndarray]]:
        """Every face in ``image`` with its ``(d,)`` encoding, best detection first."""
        rgb, faces = self.faces(image)
        if not faces:
            return []
        encodings = self.encoder.encode(np.stack([self.crop(rgb, f) for f in faces]))
        return list(zip(faces, encodings, strict=True))


def img_to_encoding(image, model: FaceModel) -> np.ndarray:
    """Encode the largest face of ``image``: ``(d,)`` float32 of L2 norm 1.

    Loads the picture, finds the faces, crops the largest one (margin, eye alignment, 160x160), applies the
    preprocessing the weights expect (prewhiten), runs the model and L2-normalises the result.

    Raises:
        ImageError: the picture cannot be read. NoFaceError: no face was found in it.
    """
    rgb, faces = model.faces(image)
    face = largest_face(faces)
    if face is None:
        raise NoFaceError(f"no face found in {_describe(image)}")
    return model.encoder.encode(model.crop(rgb, face))[0]


def database_matrix(database) -> tuple[list[str], np.ndarray]:
    """All encodings of ``database`` as ``(names per row, (n, d) float32)``."""
    if hasattr(database, "matrix"):
        names, matrix = database.matrix()
        return list(names), np.asarray(matrix, np.float32)
    if not isinstance(database, Mapping):
        raise TypeError("database must be a mapping name -> encoding(s) or have a matrix() method")
    names: list[str] = []
    rows = []
    for name, encodings in database.items():
        block = np.atleast_2d(np.asarray(encodings, np.float32))
        names += [name] * len(block)
        rows.append(block)
    if not rows:
        return [], np.empty((0, 0), np.float32)
    return names, np.concatenate(rows)


def nearest(encoding: np.ndarray, names: list[str], matrix: np.ndarray) -> tuple[float, str | None]:
    """The stored encoding closest to ``encoding``: ``(L2 distance, name)``; ``(100.0, None)`` if empty.

    One vectorised step over all rows picks the winner (``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``); its
    distance is then computed exactly as ``np.linalg.norm(a - b)``, so the result equals the seed's loop
    (ties between rows equal to within float rounding may pick either).
    """
    if len(names) == 0:
        return START_DISTANCE, None
    e = np.asarray(encoding, np.float32).reshape(-1)
    if matrix.shape[1] != e.shape[0]:
        raise FacegateError(f"encoding has {e.shape[0]} values, the database {matrix.shape[1]}")
    # einsum, not ``matrix @ e``: a BLAS matrix-vector product wakes OpenBLAS's thread pool, which then
    # spins on the cores the encoder needs (measured: a 2-thread encode went from 22 to 44 ms).
    squared = np.einsum("ij,ij->i", matrix, matrix) - 2.0 * np.einsum("ij,j->i", matrix, e) + float(np.dot(e, e))
    k = int(np.argmin(squared))
    dist = float(np.linalg.norm(e - matrix[k]))
    if dist >= START_DISTANCE:
        return START_DISTANCE, None
    return dist, names[k]


def verify(image, identity: str, database, model: FaceModel) -> tuple[float, bool]:
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
    return dist, dist < model.threshold


def who_is_it(image, database, model: FaceModel) -> tuple[float, str | None]:
    """Face recognition (1:K): who, of everyone enrolled, is the person in ``image``?

    Returns:
        ``(min_dist, identity)``: the L2 distance to the closest stored encoding and its name, or
        ``None`` as the identity when ``min_dist`` is above ``model.threshold`` ("not in the database").
        An empty database gives ``(100.0, None)``.

    Raises:
        NoFaceError, ImageError: as :func:`img_to_encoding`.
    """
    encoding = img_to_encoding(image, model)
    min_dist, identity = nearest(encoding, *database_matrix(database))
    if min_dist > model.threshold:
        return min_dist, None
    return min_dist, identity


def _describe(image) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"the {image.shape[1]}x{image.shape[0]} image"
    return "the image"
