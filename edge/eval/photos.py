"""Labelled photo folders (one sub-folder per person) through the face pipeline: crops and encodings.

Used to calibrate the int8 model (crops only), to measure thresholds and to evaluate recognition: every photo
goes through :meth:`edge.core.pipeline.FacePipeline.analyse`, the same detector, alignment, crop and encoder
as a camera frame at the door.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.images import IMAGE_SUFFIXES
from edge.errors import FacegateError, ImageError

log = logging.getLogger(__name__)


def labelled_photos(root: str | Path) -> list[tuple[str, Path]]:
    """``(person, path)`` for every image file in ``root/<person>/``, sorted by person then file name."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"photo folder {root} does not exist")
    photos = sorted(
        (p.parent.name, p)
        for p in root.glob("*/*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.parent.name.startswith(".")
    )
    if not photos:
        raise ImageError(f"photo folder {root} has no images in per-person sub-folders (<person>/<photo>.jpg)")
    return photos


def image_files(root: str | Path) -> list[Path]:
    """Image files anywhere under ``root``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"photo folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"photo folder {root} has no images")
    return files


@dataclass
class PhotoFaces:
    """The largest face of each photo of a set: ``crops[i]`` ((S, S, 3) uint8 RGB) shows ``labels[i]``, from
    ``paths[i]``; ``encodings[i]`` ((d,) float32, L2 norm 1) is its encoding, or ``encodings`` is ``None`` when
    the photos were only cropped. ``skipped`` lists ``(path, reason)`` for each photo no crop was made from.
    """

    crops: np.ndarray
    labels: list[str]
    paths: list[Path]
    encodings: np.ndarray | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def vectors(self) -> np.ndarray:
        """:attr:`encodings`, which must be there: ``(n, d)`` float32."""
        if self.encodings is None:
            raise ValueError("these photos were cropped, not encoded (analyse_photos(..., encode=False))")
        return self.encodings


def analyse_photos(
    photos: list[tuple[str, Path]],
    pipeline: Any,
    *,
    encode: bool = True,
    progress: Callable[[int], None] | None = None,
) -> PhotoFaces:
    """Run the face pipeline on each photo and keep its largest face's crop (and encoding).

    Args:
        photos: ``(person, path)`` pairs, e.g. from :func:`labelled_photos`.
        pipeline: an :class:`edge.core.pipeline.FacePipeline` or :class:`edge.core.recognition.FaceModel`.
        encode: also encode each crop (needs a pipeline with an encoder).
        progress: called with 1 after each photo.

    A photo that cannot be read or shows no face is skipped and listed in ``skipped`` with the reason;
    deciding whether that is an error is the caller's business.
    """
    crops, encodings, labels, paths, skipped = [], [], [], [], []
    for person, path in photos:
        try:
            analysis = pipeline.analyse(path, encode=encode)
        except FacegateError as exc:
            skipped.append((path, str(exc)))
        else:
            if analysis.crop is None:
                skipped.append((path, "no face found"))
            else:
                crops.append(analysis.crop)
                encodings.append(analysis.encoding)
                labels.append(person)
                paths.append(path)
        if progress:
            progress(1)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    size = int(pipeline.crop_size)
    array = np.stack(crops) if crops else np.empty((0, size, size, 3), np.uint8)
    encoded = None
    if encode:
        encoded = np.stack(encodings) if encodings else np.empty((0, 0), np.float32)
    return PhotoFaces(array, labels, paths, encoded, skipped)


def people_of(labels: list[str]) -> list[str]:
    """The distinct people of ``labels``, sorted."""
    return sorted(set(labels))


def require_two_people(labels: list[str], where: Path) -> None:
    """Refuse a photo set of fewer than 2 people: false accepts cannot be measured on it."""
    people = people_of(labels)
    if len(people) < 2:
        found = f"{len(people)} ({', '.join(people)})" if people else "none"
        raise FacegateError(f"{where}: needs photos of at least 2 people (one sub-folder each) to measure "
                            f"false accepts; found {found}")


def skipped_records(skipped: list[tuple[Path, str]]) -> list[dict]:
    """``[{"photo", "reason"}]`` of skipped photos, for reports."""
    return [{"photo": str(path), "reason": reason} for path, reason in skipped]

