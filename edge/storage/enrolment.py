"""Enrolment: every photo through the quality gate (:mod:`edge.core.quality`), the ones that pass encoded and
added to the store under one name, all in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.core.names import check_name
from edge.core.quality import MIN_FACE_PX, MIN_SHARPNESS, PhotoCheck, check_photo

log = logging.getLogger(__name__)


@dataclass
class EnrolResult:
    """What :func:`enrol` did: the photos stored (with their store ids) and the ones refused, with why."""

    name: str
    added: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def enrol(store: Any, name: str, photos: list, model: Any, *, force: bool = False, min_face_px: float = MIN_FACE_PX,
          min_sharpness: float = MIN_SHARPNESS, progress: Callable[[int], None] | None = None) -> EnrolResult:
    """Check every photo, encode the ones that pass and add them to ``store`` under ``name`` at once.

    All accepted encodings are added in one transaction: either all of them are stored or none.
    """
    name = check_name(name)  # a bad name fails before any photo is read
    result = EnrolResult(name)
    accepted: list[PhotoCheck] = []
    for photo in photos:
        check = check_photo(photo, model, min_face_px=min_face_px, min_sharpness=min_sharpness, force=force)
        if check.reason is None:
            accepted.append(check)
        else:
            result.rejected.append((check.source, check.reason))
        if progress:
            progress(1)
    if accepted:
        encodings = model.encoder.encode(np.stack([c.crop for c in accepted if c.crop is not None]))
        ids = store.add(name, encodings, sources=[c.source for c in accepted],
                        qualities=[c.sharpness for c in accepted])
        result.added = [(c.source, i) for c, i in zip(accepted, ids, strict=True)]
    return result
