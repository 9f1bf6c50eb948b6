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
    from edge.core.recognition import FaceModel

    return FaceModel.from_files(int8_model, blazeface_short, num_threads=2)


@pytest.fixture(scope="session")
def celebrity_db(face_model, photos_dir: Path) -> dict:
    """``name -> (k, d)`` encodings of every train photo with a detectable face (the course's dict)."""
    from edge.core.recognition import img_to_encoding
    from edge.errors import NoFaceError

    db: dict[str, list] = {}
    for person, path in photo_paths(photos_dir, "train"):
        try:
            db.setdefault(person, []).append(img_to_encoding(path, face_model))
        except NoFaceError:
            continue
    import numpy as np

    return {name: np.stack(encs) for name, encs in db.items()}


# -- the encoding store's tests (tests/test_store*.py) ------------------------------------------------------


@pytest.fixture
def rng():
    """A seeded numpy generator: the same made-up encodings in every run."""
    import numpy as np

    return np.random.default_rng(7)


@pytest.fixture
def filled(tmp_path, rng):
    """A closed store file with three people, 3 + 2 + 1 encodings; returns (path, {name: encodings})."""
    from tests.store_helpers import open_store, unit

    path = tmp_path / "store.db"
    data = {"Ann": unit(rng, 3), "José Ñúñez": unit(rng, 2), "李小龍": unit(rng, 1)}
    with open_store(path) as store:
        for name, enc in data.items():
            store.add(name, enc, sources=[f"{name}/{i}.jpg" for i in range(len(enc))],
                      qualities=[10.0 + i for i in range(len(enc))])
    return path, data


# -- the config's tests (tests/test_config*.py) -----------------------------------------------------------


@pytest.fixture
def base_text(int8_model: Path, blazeface_short: Path, photos_dir: Path) -> str:
    """A valid door config with the real model files (its line numbers: see tests/config_helpers.py)."""
    from tests.config_helpers import BASE

    return BASE.format(encoder=int8_model, detector=blazeface_short, photos=photos_dir / "val")
