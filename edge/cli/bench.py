"""``facegate bench``: how long each stage of the door's pipeline takes on this machine, and peak memory.

Frames are made from real photos: each photo scaled to fit a 640x480 camera frame (kept in proportion,
the rest black) and JPEG-encoded in memory, so decoding is measured as a camera's MJPEG stream needs it.
Only frames in which the detector finds a face are used, so every frame runs every stage:

========  ===============================================================================
decode    :func:`edge.images.load_image` on the JPEG bytes (cv2.imdecode, BGR -> RGB)
detect    BlazeFace on the whole frame
crop      the largest face cut out, eyes levelled (``--no-align``: not), 160x160
encode    FaceNet on that one crop (prewhiten, model, L2 normalisation)
search    1:N :func:`edge.recognition.nearest` over ``--people`` x 5 random unit vectors
frame     all of the above, one after the other (the sum of the stage times of that frame)
========  ===============================================================================

The models are opened anew for each thread count (the TFLite runtime fixes its threads when a model is
opened). Times are wall-clock milliseconds, median (p50) and 95th percentile (p95).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge.cli import EXIT_OK, default_models_dir
from edge.crop import largest_face
from edge.errors import FacegateError, ImageError
from edge.images import load_image
from edge.photoset import IMAGE_SUFFIXES
from edge.progress import Progress
from edge.recognition import FaceModel, nearest
from edge.timing import percentiles

log = logging.getLogger(__name__)

#: Camera frame ``(width, height)`` in pixels.
FRAME_SIZE = (640, 480)
JPEG_QUALITY = 90
#: Stored encodings per synthetic person (several pictures per person, as the seed asks).
ENCODINGS_PER_PERSON = 5
STAGES = ("decode", "detect", "crop", "encode", "search", "frame")
#: Environment variables that set numpy's BLAS threads. They matter here: idle BLAS threads spin for a while
#: after the search's matrix product and can take a core from a multi-threaded encoder.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The target: a whole frame at most this many times one face's encoding (p50).
FRAME_TO_ENCODE_BAR = 1.4


def add_parsers(sub) -> list[argparse.ArgumentParser]:
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
                   help=f"synthetic database size for search: people x {ENCODINGS_PER_PERSON} encodings "
                   "(default 1000)")
    b.add_argument("--warmup", type=int, default=3, help="untimed frames before timing each count (default 3)")
    b.set_defaults(func=run_bench)
    return [b]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def photo_files(root: Path) -> list[Path]:
    """Image files anywhere under ``root``, sorted."""
    if not root.is_dir():
        raise ImageError(f"photo folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"photo folder {root} has no images")
    return files


def to_frame(rgb: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 scaled to fit ``size`` = ``(width, height)``, centred on black: (h, w, 3) uint8 RGB."""
    width, height = size
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    w, h = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    resized = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    frame[top:top + h, left:left + w] = resized
    return frame


def camera_frames(paths: list[Path], model: FaceModel, *, size: tuple[int, int] = FRAME_SIZE) -> list[bytes]:
    """JPEG bytes of each photo as a camera frame (:func:`to_frame`), keeping only frames with a face."""
    frames = []
    for path in paths:
        try:
            frame = to_frame(load_image(path), size)
        except ImageError as exc:
            log.warning("skipped %s: %s", path, exc)
            continue
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise FacegateError(f"could not encode a frame of {path} as JPEG")
        jpeg = data.tobytes()
        if model.faces(jpeg)[1]:
            frames.append(jpeg)
        else:
            log.info("no face in the frame made from %s: not used", path)
    if not frames:
        raise FacegateError("no photo gave a frame with a detectable face")
    return frames


def synthetic_database(people: int, size: int, *, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``(names, (people * 5, size) float32)``: random unit vectors, 5 per made-up person."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((people * ENCODINGS_PER_PERSON, size)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    names = [f"person{i:06d}" for i in range(people) for _ in range(ENCODINGS_PER_PERSON)]
    return names, matrix


def time_frame(model: FaceModel, jpeg: bytes, names: list[str], matrix: np.ndarray) -> dict[str, float]:
    """One frame through the door's pipeline: milliseconds of each of :data:`STAGES`."""
    t0 = time.perf_counter()
    rgb = load_image(jpeg)
    t1 = time.perf_counter()
    face = largest_face(model.detector.detect(rgb))
    t2 = time.perf_counter()
    if face is None:
        raise FacegateError("no face in a benchmark frame")
    crop = model.crop(rgb, face)
    t3 = time.perf_counter()
    encoding = model.encoder.encode(crop)[0]
    t4 = time.perf_counter()
    nearest(encoding, names, matrix)
    t5 = time.perf_counter()
    marks = (t0, t1, t2, t3, t4, t5)
    times = {stage: (marks[i + 1] - marks[i]) * 1000.0 for i, stage in enumerate(STAGES[:-1])}
    times["frame"] = (t5 - t0) * 1000.0
    return times


def bench_pipeline(model: FaceModel, frames: list[bytes], names: list[str], matrix: np.ndarray, *, count: int,
                   warmup: int = 3, progress=None) -> dict[str, dict[str, float]]:
    """Time ``count`` frames (cycling through ``frames``) after ``warmup`` untimed ones.

    Returns ``{stage: {"p50": ms, "p95": ms}}`` for each of :data:`STAGES`.
    """
    for i in range(warmup):
        time_frame(model, frames[i % len(frames)], names, matrix)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for i in range(count):
        for stage, ms in time_frame(model, frames[i % len(frames)], names, matrix).items():
            samples[stage].append(ms)
        if progress:
            progress(1)
    return {stage: percentiles(times) for stage, times in samples.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def run_bench(args, env) -> int:
    if args.thread_counts:
        counts = list(dict.fromkeys(args.thread_counts))
    elif args.threads:
        counts = [args.threads]
    else:
        counts = list(dict.fromkeys([1, os.cpu_count() or 1]))
    root = args.photos or default_models_dir() / "photos" / "celebrity" / "val"
    paths = photo_files(root)
    frames: list[bytes] = []
    results = []
    with Progress(args.frames * len(counts), "bench", enabled=not env.json) as bar:
        for threads in counts:
            model = FaceModel.from_files(env.model_path(), env.detector_path(), num_threads=threads,
                                         margin=args.margin, align=args.align, threshold=args.threshold)
            if not frames:
                frames = camera_frames(paths, model)
                names, matrix = synthetic_database(args.people, model.embedding_size)
            stages = bench_pipeline(model, frames, names, matrix, count=args.frames, warmup=args.warmup,
                                    progress=bar)
            results.append({"threads": threads, "stages": stages,
                            "frame_to_encode": stages["frame"]["p50"] / stages["encode"]["p50"]})
    record = {
        "command": "bench", "photos": str(root), "frames": args.frames, "distinct_frames": len(frames),
        "frame_size": list(FRAME_SIZE), "jpeg_quality": JPEG_QUALITY,
        "database": {"people": args.people, "encodings": len(names), "size": int(matrix.shape[1])},
        "model": env.model_path().name, "detector": env.detector_path().name, "align": args.align,
        "results": results, "frame_to_encode_bar": FRAME_TO_ENCODE_BAR, "peak_rss_mb": peak_rss_mb(),
        "environment": {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES},
    }
    env.emit(record, _bench_text(record))
    return EXIT_OK


def _bench_text(r: dict) -> str:
    db = r["database"]
    lines = [f"bench: {r['frames']} frames {r['frame_size'][0]}x{r['frame_size'][1]} (JPEG q{r['jpeg_quality']}, "
             f"{r['distinct_frames']} distinct, from {r['photos']}); {r['model']}, {r['detector']}, "
             f"{'aligned' if r['align'] else 'not aligned'}; search over {db['people']} people x "
             f"{ENCODINGS_PER_PERSON} = {db['encodings']} encodings of {db['size']} values", ""]
    header = "".join(f"{_threads(x['threads']) + ' p50/p95 ms':>24}" for x in r["results"])
    lines.append(f"{'stage':<12}{header}")
    for stage in STAGES:
        cells = "".join(f"{x['stages'][stage]['p50']:>12.2f} /{x['stages'][stage]['p95']:>9.2f}" for x in r["results"])
        lines.append(f"{stage:<12}{cells}")
    lines.append("")
    for x in r["results"]:
        verdict = "within" if x["frame_to_encode"] <= r["frame_to_encode_bar"] else "ABOVE"
        lines.append(f"{_threads(x['threads'])}: whole frame / encode (p50) = {x['frame_to_encode']:.2f}x "
                     f"({verdict} the {r['frame_to_encode_bar']}x bar)")
    lines.append(f"peak RSS: {r['peak_rss_mb']:.0f} MiB (the whole process, every model opened)")
    blas = ", ".join(f"{k}={v}" for k, v in r["environment"].items() if v is not None) or "not set"
    lines.append(f"BLAS thread variables: {blas}")
    return "\n".join(lines)


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"
