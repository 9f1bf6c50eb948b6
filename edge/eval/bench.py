"""Timing the door's face pipeline on this machine: camera-like frames made from photos, per-stage percentiles.

Frames are made from real photos: each photo scaled to fit a 640x480 camera frame (kept in proportion, the
rest black) and JPEG-encoded in memory, so decoding is measured as a camera's MJPEG stream needs it. Only
frames in which the detector finds a face are used, so every frame runs every stage. Each frame goes through
:meth:`edge.core.pipeline.FacePipeline.analyse`, the very call the door daemon makes for each camera frame;
the search runs over a real store file of random unit vectors (:func:`synthetic_store`). The stages are those of
:data:`edge.core.pipeline.STAGES` (``total`` is the whole call, decode included).
"""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.core.gallery import Gallery
from edge.core.images import load_image
from edge.core.pipeline import STAGES
from edge.core.timing import percentiles
from edge.errors import FacegateError, ImageError
from edge.storage.store import EncodingStore

log = logging.getLogger(__name__)

#: Camera frame ``(width, height)`` in pixels.
FRAME_SIZE = (640, 480)
JPEG_QUALITY = 90
#: Stored encodings per synthetic person (several pictures per person, as the seed asks).
ENCODINGS_PER_PERSON = 5


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


def camera_frames(paths: list[Path], pipeline, *, size: tuple[int, int] = FRAME_SIZE) -> list[bytes]:
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
        if pipeline.analyse(jpeg, encode=False).face is not None:
            frames.append(jpeg)
        else:
            log.info("no face in the frame made from %s: not used", path)
    if not frames:
        raise FacegateError("no photo gave a frame with a detectable face")
    return frames


def synthetic_database(people: int, size: int, *, seed: int = 0) -> Gallery:
    """``people`` made-up people with 5 random unit vectors of ``size`` values each (float32)."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((people * ENCODINGS_PER_PERSON, size)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    names = [f"person{i:06d}" for i in range(people) for _ in range(ENCODINGS_PER_PERSON)]
    return Gallery(names, matrix)


def synthetic_store(path: Path, people: int, *, model_sha256: str, size: int, seed: int = 0) -> EncodingStore:
    """A real encoding store file at ``path`` holding :func:`synthetic_database`: the door searches a store, and
    its search stage includes the store's check for changes by other processes (``PRAGMA data_version``)."""
    names, matrix = synthetic_database(people, size, seed=seed).matrix()
    store = EncodingStore(path, model_sha256=model_sha256, embedding_size=size, create=True)
    for start in range(0, len(names), ENCODINGS_PER_PERSON):
        store.add(names[start], matrix[start:start + ENCODINGS_PER_PERSON])
    return store


def time_frame(pipeline, jpeg: bytes, database) -> dict[str, float]:
    """One frame through the door's pipeline: milliseconds of each of :data:`STAGES`."""
    timings: dict[str, float] = {}
    analysis = pipeline.analyse(jpeg, database=database, timings=timings)
    if analysis.encoding is None:
        raise FacegateError("no face in a benchmark frame")
    return timings


def bench_pipeline(pipeline, frames: list[bytes], database, *, count: int, warmup: int = 3,
                   progress: Callable[[int], None] | None = None) -> dict[str, dict[str, float]]:
    """Time ``count`` frames (cycling through ``frames``) after ``warmup`` untimed ones.

    Returns ``{stage: {"p50": ms, "p95": ms}}`` for each of :data:`STAGES`.
    """
    for i in range(warmup):
        time_frame(pipeline, frames[i % len(frames)], database)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for i in range(count):
        for stage, ms in time_frame(pipeline, frames[i % len(frames)], database).items():
            samples[stage].append(ms)
        if progress:
            progress(1)
    return {stage: percentiles(times) for stage, times in samples.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
