"""``facegate bench``: how long each stage of the door's face pipeline takes on this machine, and peak memory.

It times :meth:`edge.core.pipeline.FacePipeline.analyse`, the call the door daemon makes for every camera frame,
on real photos turned into 640x480 JPEG frames (see :mod:`edge.eval.bench`): decode, detect, crop, encode, search
(1:N over a real store file of ``--people`` x 5 random unit vectors) and the whole call (``total``). The models
are opened anew for each thread count (the TFLite runtime fixes its threads when a model is opened). Times are
wall-clock milliseconds, median (p50) and 95th percentile (p95).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from pathlib import Path

from edge.cli.context import CliEnv, default_models_dir
from edge.errors import ExitCode

log = logging.getLogger(__name__)

#: Environment variables that set numpy's BLAS threads. They matter here: idle BLAS threads spin for a while
#: after the search's matrix product and can take a core from a multi-threaded encoder.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The target: a whole frame at most this many times one face's encoding (p50).
FRAME_TO_ENCODE_BAR = 1.4


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "bench", help="time each pipeline stage on real photos as 640x480 JPEG frames",
        description="Per-stage latency (decode, detect, crop, encode, search, whole frame; p50 and p95 in ms) "
        "on real photos turned into 640x480 JPEG frames, for each thread count; the ratio of a whole frame to "
        "one encoding; peak memory. --threads N times N threads only.")
    b.add_argument("--photos", type=Path, default=None, metavar="DIR",
                   help="photos to make frames from, searched recursively (default: photos/celebrity/val in "
                   "the models folder)")
    b.add_argument("--frames", type=_positive, default=30, help="frames timed per thread count (default 30)")
    b.add_argument("--thread-counts", type=_positive, nargs="+", default=None, metavar="N",
                   help="thread counts to compare (default: 1 and all CPUs)")
    b.add_argument("--people", type=_positive, default=1000,
                   help="synthetic database size for search: people x 5 encodings "
                   "(default 1000)")
    b.add_argument("--warmup", type=int, default=3, help="untimed frames before timing each count (default 3)")
    b.set_defaults(func=run)
    return b


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.core.pipeline import STAGES
    from edge.core.recognition import FaceModel
    from edge.eval.bench import FRAME_SIZE, JPEG_QUALITY, bench_pipeline, camera_frames, peak_rss_mb, synthetic_store
    from edge.eval.photos import image_files
    from edge.eval.progress import Progress

    if args.thread_counts:
        counts = list(dict.fromkeys(args.thread_counts))
    elif args.threads:
        counts = [args.threads]
    else:
        counts = list(dict.fromkeys([1, os.cpu_count() or 1]))
    root = args.photos or default_models_dir() / "photos" / "celebrity" / "val"
    paths = image_files(root)
    frames: list[bytes] = []
    results = []
    with tempfile.TemporaryDirectory(prefix="facegate-bench-") as tmp, contextlib.ExitStack() as stack, \
            Progress(args.frames * len(counts), "bench", enabled=not env.json) as bar:
        database = None
        for threads in counts:
            model = FaceModel.from_files(env.model_path(), env.detector_path(), num_threads=threads,
                                         margin=args.margin, align=args.align, threshold=args.threshold)
            if database is None:
                frames = camera_frames(paths, model)
                database = stack.enter_context(synthetic_store(Path(tmp) / "store.db", args.people,
                                                               model_sha256=model.model_sha256,
                                                               size=model.embedding_size))
            stages = bench_pipeline(model, frames, database, count=args.frames, warmup=args.warmup, progress=bar)
            results.append({"threads": threads, "stages": stages,
                            "frame_to_encode": stages["total"]["p50"] / stages["encode"]["p50"]})
        if database is None:  # no thread count: argparse asks for at least one
            raise ValueError("no thread count to time")
        names, matrix = database.matrix()
    record = {
        "command": "bench", "photos": str(root), "frames": args.frames, "distinct_frames": len(frames),
        "frame_size": list(FRAME_SIZE), "jpeg_quality": JPEG_QUALITY,
        "database": {"people": args.people, "encodings": len(names), "size": int(matrix.shape[1])},
        "model": env.model_path().name, "detector": env.detector_path().name, "align": args.align,
        "results": results, "frame_to_encode_bar": FRAME_TO_ENCODE_BAR, "peak_rss_mb": peak_rss_mb(),
        "environment": {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}, "stages": list(STAGES),
    }
    env.emit(record, _bench_text(record))
    return ExitCode.OK


def _bench_text(r: dict) -> str:
    db = r["database"]
    per_person = db["encodings"] // max(db["people"], 1)
    lines = [f"bench: {r['frames']} frames {r['frame_size'][0]}x{r['frame_size'][1]} (JPEG q{r['jpeg_quality']}, "
             f"{r['distinct_frames']} distinct, from {r['photos']}); {r['model']}, {r['detector']}, "
             f"{'aligned' if r['align'] else 'not aligned'}; search over {db['people']} people x "
             f"{per_person} = {db['encodings']} encodings of {db['size']} values", ""]
    header = "".join(f"{_threads(x['threads']) + ' p50/p95 ms':>24}" for x in r["results"])
    lines.append(f"{'stage':<12}{header}")
    for stage in r["stages"]:
        cells = "".join(f"{x['stages'][stage]['p50']:>12.2f} /{x['stages'][stage]['p95']:>9.2f}" for x in r["results"])
        lines.append(f"{stage:<12}{cells}")
    lines.append("")
    for x in r["results"]:
        verdict = "within" if x["frame_to_encode"] <= r["frame_to_encode_bar"] else "ABOVE"
        lines.append(f"{_threads(x['threads'])}: whole frame (total) / encode (p50) = {x['frame_to_encode']:.2f}x "
                     f"({verdict} the {r['frame_to_encode_bar']}x bar)")
    lines.append(f"peak RSS: {r['peak_rss_mb']:.0f} MiB (the whole process, every model opened)")
    blas = ", ".join(f"{k}={v}" for k, v in r["environment"].items() if v is not None) or "not set"
    lines.append(f"BLAS thread variables: {blas}")
    return "\n".join(lines)


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"
