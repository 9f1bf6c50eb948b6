"""Labelled photo folders (one sub-folder per person) turned into face crops.

Used to calibrate the int8 model, to measure thresholds and to evaluate recognition: every photo goes
through the same detector, alignment and crop as a camera frame at the door.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.crop import crop_face, largest_face
from edge.errors import FacegateError, ImageError
from edge.images import load_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


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


@dataclass
class FaceCrops:
    """Face crops of a photo set: ``crops[i]`` (H, W, 3) uint8 RGB shows ``labels[i]``, from ``paths[i]``.

    ``skipped`` lists ``(path, reason)`` for each photo no crop was made from.
    """

    crops: np.ndarray
    labels: list[str]
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def crop_photos(
    photos: list[tuple[str, Path]],
    detector,
    *,
    margin: float = 0.1,
    align: bool = True,
    size: int = 160,
    progress: Callable[[int], None] | None = None,
) -> FaceCrops:
    """Detect the largest face of each photo and crop it.

    Args:
        photos: ``(person, path)`` pairs, e.g. from :func:`labelled_photos`.
        detector: an :class:`edge.detect.FaceDetector`.
        margin, align, size: as :func:`edge.crop.crop_face`.
        progress: called with 1 after each photo.

    A photo that cannot be read or shows no face is skipped and listed in ``skipped`` with the reason;
    deciding whether that is an error is the caller's business.
    """
    crops, labels, paths, skipped = [], [], [], []
    for person, path in photos:
        try:
            image = load_image(path)
            face = largest_face(detector.detect(image))
            if face is None:
                skipped.append((path, "no face found"))
            else:
                crops.append(crop_face(image, face, margin=margin, size=size, align=align))
                labels.append(person)
                paths.append(path)
        except FacegateError as exc:
            skipped.append((path, str(exc)))
        if progress:
            progress(1)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    array = np.stack(crops) if crops else np.empty((0, size, size, 3), np.uint8)
    return FaceCrops(array, labels, paths, skipped)
