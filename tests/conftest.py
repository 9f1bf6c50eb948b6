"""Shared fixtures: the real fetched model files and the real labelled photos.

Tests use the real pretrained weights and photos fetched by ``facegate-convert fetch`` (the README's test
command does that first). They are looked up in ``$FACEGATE_WEIGHTS`` or ``weights/`` of this checkout;
a missing file is a test error that says how to get it, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _weights_dir() -> Path:
    return Path(os.environ.get("FACEGATE_WEIGHTS", REPO / "weights"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'facegate-convert fetch' (the README's test command does)")
    return path


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return _weights_dir()


@pytest.fixture(scope="session")
def facenet_h5(weights_dir: Path) -> Path:
    return _require(weights_dir / "facenet_keras.h5")


@pytest.fixture(scope="session")
def blazeface_short(weights_dir: Path) -> Path:
    return _require(weights_dir / "face_detection_short_range.tflite")


@pytest.fixture(scope="session")
def blazeface_full(weights_dir: Path) -> Path:
    return _require(weights_dir / "face_detection_full_range.tflite")


@pytest.fixture(scope="session")
def photos_dir(weights_dir: Path) -> Path:
    """The celebrity photo set: ``train/<person>/*.jpg`` (93 photos) and ``val/<person>/*.jpg`` (25)."""
    return _require(weights_dir / "photos" / "celebrity")


def photo_paths(root: Path, split: str) -> list[tuple[str, Path]]:
    """``(person, path)`` for every photo of one split, sorted for a stable order."""
    return sorted((p.parent.name, p) for p in (root / split).glob("*/*") if p.is_file())


@pytest.fixture(scope="session")
def int8_model(weights_dir: Path) -> Path:
    """The full-integer FaceNet built by ``facegate-convert build`` (with its card beside it)."""
    return _require(weights_dir / "facenet_int8.tflite")


@pytest.fixture(scope="session")
def face_model(int8_model: Path, blazeface_short: Path):
    """The door's default pipeline: int8 FaceNet, short-range BlazeFace, margin 0.1, aligned crops."""
    from edge.recognition import FaceModel

    return FaceModel.from_files(int8_model, blazeface_short, num_threads=2)


@pytest.fixture(scope="session")
def celebrity_db(face_model, photos_dir: Path) -> dict:
    """``name -> (k, d)`` encodings of every train photo with a detectable face (the course's dict)."""
    from edge.errors import NoFaceError
    from edge.recognition import img_to_encoding

    db: dict[str, list] = {}
    for person, path in photo_paths(photos_dir, "train"):
        try:
            db.setdefault(person, []).append(img_to_encoding(path, face_model))
        except NoFaceError:
            continue
    import numpy as np

    return {name: np.stack(encs) for name, encs in db.items()}
