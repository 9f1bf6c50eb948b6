"""``facegate``: the operator's command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and ``run(args, env) -> int``;
this module holds what they share: the common options, where the model and the store are, output as
text or JSON, and the exit codes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge.errors import FacegateError

log = logging.getLogger(__name__)

#: Exit codes, the same for every command.
EXIT_OK = 0
EXIT_ERROR = 1  # bad input, missing model, store problem: the message says which
EXIT_USAGE = 2  # wrong command-line arguments (argparse)
EXIT_REFUSED = 3  # the answer is "no": not in the database, verification refused, photo rejected
EXIT_INTERRUPTED = 130

EPILOG = """exit codes: 0 done (and every answer was yes); 1 error; 2 bad arguments; 3 some answer was no
(not in the database, verification refused, photo rejected at enrolment); 130 interrupted.

environment: FACEGATE_MODELS (folder with the models, default: this checkout's weights/),
FACEGATE_STORE (the encoding store, default: ./facegate-store.db)."""

_REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def default_models_dir() -> Path:
    return Path(os.environ.get("FACEGATE_MODELS") or _REPO_WEIGHTS)


def default_store() -> Path:
    return Path(os.environ.get("FACEGATE_STORE") or "facegate-store.db")


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
        return self.args.model or default_models_dir() / f"facenet_{self.args.variant}.tflite"

    def detector_path(self) -> Path:
        return self.args.detector or default_models_dir() / f"face_detection_{self.args.range}_range.tflite"

    def face_model(self):
        """The :class:`edge.recognition.FaceModel` chosen by the common options (opened once)."""
        if self._model is None:
            from edge.recognition import FaceModel

            self._model = FaceModel.from_files(
                self.model_path(), self.detector_path(), num_threads=self.args.threads,
                margin=self.args.margin, align=self.args.align, threshold=self.args.threshold)
        return self._model

    def store(self, *, create: bool = False):
        """The :class:`edge.store.EncodingStore`, stamped with the model in use (opened once)."""
        if self._store is None:
            from edge.modelcard import ModelCard
            from edge.store import EncodingStore

            card = self._model.encoder.card if self._model is not None else ModelCard.for_model(self.model_path())
            self._store = EncodingStore(self.args.store, model_sha256=card.sha256,
                                        embedding_size=card.embedding_size, create=create)
        return self._store

    def emit(self, record: dict, text: str) -> None:
        """One result: a JSON line with ``--json``, else the human-readable ``text``."""
        print(json.dumps(record, default=_jsonable) if self.json else text, file=self.stdout, flush=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and store")
    g.add_argument("--variant", choices=("int8", "float32", "float16", "dynamic"), default="int8",
                   help="which built FaceNet to use (default: %(default)s)")
    g.add_argument("--model", type=Path, help="a FaceNet .tflite file with its card (overrides --variant)")
    g.add_argument("--range", choices=("short", "full"), default="short",
                   help="BlazeFace model: short (faces within ~2 m, default) or full (~5 m)")
    g.add_argument("--detector", type=Path, help="a BlazeFace .tflite file (overrides --range)")
    g.add_argument("--store", type=Path, default=None, help="the encoding store (default: $FACEGATE_STORE or "
                   "./facegate-store.db)")
    g.add_argument("--threshold", type=float, help="distance threshold (default: the one in the model's card)")
    g.add_argument("--margin", type=float, default=0.1, help="face crop margin (default 0.1)")
    g.add_argument("--no-align", dest="align", action="store_false", help="do not level the eyes")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all)")
    g.add_argument("--json", action="store_true", help="machine-readable output: one JSON object per line")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def command_modules() -> list:
    from edge import cmd_bench, cmd_calibrate, cmd_daemon, cmd_people, cmd_recognise, cmd_relay

    return [cmd_daemon, cmd_relay, cmd_people, cmd_recognise, cmd_calibrate, cmd_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description="Face-recognition door access: the operator's "
                                     "tools.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        for sub_parser in module.add_parsers(sub):
            _common(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "store", "") is None:
        args.store = default_store()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    env = CliEnv(args)
    try:
        return args.func(args, env)
    except FacegateError as exc:
        print(f"facegate: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("facegate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
