"""What every ``facegate`` command shares: the common options, where the models and the store are, the output.

Nothing heavy is imported here: the face model and the store are opened on first use, inside the command that
needs them, so a command that needs neither (``relay-off``) starts without numpy or OpenCV.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge.errors import ExitCode

_REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
#: Where a door keeps its models and store: the service's StateDirectory= (systemd/facegate.service, and the
#: Ansible role's facegate_state_dir), so an operator on the device needs no flag.
DEVICE_STATE_DIR = Path("/var/lib/facegate")


def default_models_dir() -> Path:
    """``$FACEGATE_MODELS``; else this source checkout's ``weights/``; else a door's ``/var/lib/facegate/models``."""
    if os.environ.get("FACEGATE_MODELS"):
        return Path(os.environ["FACEGATE_MODELS"])
    if _REPO_WEIGHTS.is_dir() or not (DEVICE_STATE_DIR / "models").is_dir():
        return _REPO_WEIGHTS
    return DEVICE_STATE_DIR / "models"


def default_store() -> Path:
    """``$FACEGATE_STORE``; else a door's ``/var/lib/facegate/people.sqlite`` if there is one; else
    ``./facegate-store.db``."""
    if os.environ.get("FACEGATE_STORE"):
        return Path(os.environ["FACEGATE_STORE"])
    door = DEVICE_STATE_DIR / "people.sqlite"
    return door if door.is_file() else Path("facegate-store.db")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The model, store and output options of the commands that recognise faces."""
    g = parser.add_argument_group("model and store")
    g.add_argument("--variant", choices=("int8", "float32", "float16", "dynamic"), default="int8",
                   help="which built FaceNet to use (default: %(default)s)")
    g.add_argument("--model", type=Path, help="a FaceNet .tflite file with its card (overrides --variant)")
    g.add_argument("--range", choices=("short", "full"), default="short",
                   help="BlazeFace model: short (faces within ~2 m, default) or full (~5 m)")
    g.add_argument("--detector", type=Path, help="a BlazeFace .tflite file (overrides --range)")
    g.add_argument("--store", type=Path, default=None, help="the encoding store (default: $FACEGATE_STORE or "
                   "./facegate-store.db)")
    g.add_argument("--threshold", type=float, help="distance threshold, used as it is (default for 1:N: the store's "
                   "site calibration while it holds, see 'facegate calibrate --site', else derived from the model's "
                   "reference strangers for --target-fpir at the number enrolled; for 1:1 and enrolment: the model "
                   "card's)")
    g.add_argument("--target-fpir", type=float, default=0.005, metavar="RATE",
                   help="1:N: share of strangers that may be let in, 0..0.2 (default %(default)s = 0.5%%)")
    g.add_argument("--margin", type=float, default=0.1, help="face crop margin (default 0.1)")
    g.add_argument("--no-align", dest="align", action="store_false", help="do not level the eyes")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all)")
    g.add_argument("--json", action="store_true", help="machine-readable output: one JSON object per line")


@dataclass
class CliEnv:
    """What a command needs, opened on first use: the face model, the store, the output."""

    args: argparse.Namespace
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    _model: Any = None
    _store: Any = None

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def model_path(self) -> Path:
        """The FaceNet model chosen; a clear error naming the variable and the flag when it is not there."""
        path = self.args.model or default_models_dir() / f"facenet_{self.args.variant}.tflite"
        if not self.args.model and not path.is_file():
            from edge.errors import ModelError

            raise ModelError(f"no model at {path}: set FACEGATE_MODELS to the folder holding facenet_<variant>.tflite "
                             "and its card (a door's is /var/lib/facegate/models), or pass --model FILE")
        return path

    def detector_path(self) -> Path:
        return self.args.detector or default_models_dir() / f"face_detection_{self.args.range}_range.tflite"

    def face_model(self) -> Any:
        """The :class:`edge.core.recognition.FaceModel` chosen by the common options (opened once)."""
        if self._model is None:
            from edge.core.recognition import FaceModel

            self._model = FaceModel.from_files(
                self.model_path(), self.detector_path(), num_threads=self.args.threads,
                margin=self.args.margin, align=self.args.align, threshold=self.args.threshold)
        return self._model

    def store(self, *, create: bool = False) -> Any:
        """The :class:`edge.storage.store.EncodingStore`, stamped with the model in use (opened once)."""
        if self._store is None:
            from edge.storage.store import EncodingStore

            card = self.card()
            store = self.args.store if self.args.store is not None else default_store()
            self._store = EncodingStore(store, model_sha256=card.sha256, embedding_size=card.embedding_size,
                                        create=create)
        return self._store

    def card(self) -> Any:
        """The :class:`edge.core.modelcard.ModelCard` of the model in use (of the opened model, if any)."""
        if self._model is not None:
            return self._model.encoder.card
        from edge.core.modelcard import ModelCard

        return ModelCard.for_model(self.model_path())

    def open_set(self) -> Any:
        """The store's people as templates, with the 1:N threshold in force (:mod:`edge.core.openset`): --threshold,
        else the store's site calibration while it holds for the people enrolled now, else the reference strangers."""
        from edge.core.openset import OpenSetGallery

        if not 0 < self.args.target_fpir < 0.2:
            from edge.errors import FacegateError

            raise FacegateError(f"--target-fpir must be above 0 and below 0.2, got {self.args.target_fpir}")
        return OpenSetGallery.for_card(self.store(), self.card(), target_fpir=self.args.target_fpir,
                                       override=self.args.threshold)

    def emit(self, record: dict, text: str) -> None:
        """One result: a JSON line with ``--json``, else the human-readable ``text``."""
        print(json.dumps(record, default=_jsonable) if self.json else text, file=self.stdout, flush=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def worst(codes: Iterable[int]) -> ExitCode:
    """The exit code of several answers: errors outrank refusals, refusals outrank success."""
    found = set(codes)
    for code in (ExitCode.ERROR, ExitCode.REFUSED):
        if code in found:
            return code
    return ExitCode.OK


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
