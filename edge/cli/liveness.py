"""``facegate liveness PHOTO...``: is each photo's face a live person, or a print or a screen held up?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.cli.context import CliEnv, default_models_dir, worst
from edge.errors import ExitCode, FacegateError, NoFaceError


def add_liveness_options(parser: argparse.ArgumentParser) -> None:
    """The options of the liveness commands: the models' card, the detector, the threshold, the output."""
    g = parser.add_argument_group("liveness models")
    g.add_argument("--card", type=Path, default=None,
                   help="the liveness card (default: liveness.card.json in $FACEGATE_MODELS or the "
                        "checkout's weights/)")
    g.add_argument("--range", choices=("short", "full"), default="short",
                   help="BlazeFace model: short (faces within ~2 m, default) or full (~5 m)")
    g.add_argument("--detector", type=Path, help="a BlazeFace .tflite file (overrides --range)")
    g.add_argument("--threshold", type=float, default=None,
                   help="live if the fused live probability (0..1) is at least this (default: the card's)")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all)")
    g.add_argument("--json", action="store_true", help="machine-readable output: one JSON object per line")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("liveness", help="is each photo a live face or a presentation attack?",
                       description="For each photo: the largest face's liveness score (the two MiniFASNet models' "
                       "mean live probability) and the verdict at the threshold. A photo of a photo is what these "
                       "models are trained to refuse: web photos of real people score low too. Exit 3 when some "
                       "photo is called an attack.")
    p.add_argument("photos", nargs="+", type=Path)
    add_liveness_options(p)
    p.set_defaults(func=run)
    return p


def open_liveness(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(pipeline, liveness model)`` from the options: a detect-only :class:`edge.core.pipeline.FacePipeline` and
    the :class:`edge.core.liveness.LivenessModel` of the card."""
    from edge.core.detect import FaceDetector
    from edge.core.liveness import LIVENESS_CARD, LivenessModel
    from edge.core.pipeline import FacePipeline

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise FacegateError(f"--threshold must be within 0..1, got {args.threshold}")
    models = default_models_dir()
    detector = FaceDetector(args.detector or models / f"face_detection_{args.range}_range.tflite",
                            num_threads=args.threads)
    model = LivenessModel.from_card(args.card or models / LIVENESS_CARD, num_threads=args.threads,
                                    threshold=args.threshold)
    return FacePipeline(detector), model


def score_photo(pipeline: Any, model: Any, photo: Path) -> tuple[Any, Any]:
    """``(face, LivenessScore)`` of the photo's largest face.

    Raises:
        NoFaceError: no face in it. ImageError: it cannot be read.
    """
    from edge.core.crop import largest_face

    rgb, faces = pipeline.faces(photo)
    face = largest_face(faces)
    if face is None:
        raise NoFaceError("no face found")
    return face, model.score(rgb, face)


def run(args: argparse.Namespace, env: CliEnv) -> int:
    pipeline, model = open_liveness(args)
    codes = []
    for photo in args.photos:
        try:
            face, score = score_photo(pipeline, model, photo)
        except FacegateError as exc:
            env.emit({"photo": str(photo), "live": None, "error": str(exc)}, f"{photo}: error: {exc}")
            codes.append(ExitCode.ERROR)
            continue
        live = model.is_live(score.live)
        record = {"photo": str(photo), "live": live, **score.as_dict(), "threshold": model.threshold,
                  "box": [round(float(v), 1) for v in face.box]}
        verdict = "live" if live else "presentation attack"
        env.emit(record, f"{photo}: {verdict} (score {score.live:.3f}, threshold {model.threshold:.2f})")
        codes.append(ExitCode.OK if live else ExitCode.REFUSED)
    return worst(codes)
