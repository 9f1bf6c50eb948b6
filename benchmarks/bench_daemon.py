"""Door daemon benchmark: frame -> decision latency, time from start to READY, memory.

Runs the real daemon (int8 FaceNet, short-range BlazeFace, the SQLite store, gpiozero mock pins) on the
celebrity val photos placed in 640x480 frames, and prints figures. Not a test: nothing is asserted.

    .venv/bin/python benchmarks/bench_daemon.py [--frames 150] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.cli import main as facegate  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.daemon.runner import run_door  # noqa: E402


def frames_640x480(val: Path, out: Path) -> int:
    """Each val photo centred on a grey 640x480 canvas (scaled to 360 px high), written as JPEG."""
    n = 0
    for photo in sorted(val.glob("*/*")):
        image = cv2.imread(str(photo))
        scale = 360 / image.shape[0]
        image = cv2.resize(image, None, fx=scale, fy=scale)[:, :640]
        canvas = np.full((480, 640, 3), 90, np.uint8)
        y, x = (480 - image.shape[0]) // 2, (640 - image.shape[1]) // 2
        canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
        cv2.imwrite(str(out / f"{n:03d}.jpg"), canvas)
        n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    weights = REPO / "weights"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "frames").mkdir()
        count = frames_640x480(weights / "photos" / "celebrity" / "val", tmp / "frames")
        for person in ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna"):
            photos = [str(p) for p in sorted((weights / "photos" / "celebrity" / "train" / person).iterdir())]
            with contextlib.redirect_stdout(io.StringIO()):
                facegate(["enroll", person, *photos, "--store", str(tmp / "people.sqlite"), "--json"])
        (tmp / "door.toml").write_text(f"""
[device]
id = "bench"
[models]
encoder = "{weights / 'facenet_int8.tflite'}"
detector = "{weights / 'face_detection_short_range.tflite'}"
threads = {args.threads}
[store]
path = "{tmp / 'people.sqlite'}"
[recognition]
min_face_px = 40
[camera]
type = "replay"
path = "{tmp / 'frames'}"
loop = true
[relay]
pin = 17
pulse_seconds = 0.2
pin_factory = "mock"
""")
        config = load_config(tmp / "door.toml")
        ready_at: list[float] = []
        start = time.monotonic()
        counters = run_door(config, max_frames=args.frames, echo=None, handle_signals=False,
                            extra_sink=lambda e: ready_at.append(time.monotonic()) if e.type == "started" else None)
    print(f"door daemon, {args.frames} frames of 640x480 ({count} photos looped), int8, {args.threads} threads")
    print(f"  start -> READY (models, store, relay, camera open; first frame read): {ready_at[0] - start:.2f} s")
    for stage in ("detect", "crop", "encode", "search", "total"):
        series = sorted(counters.timings_ms.get(stage, [0.0])[5:])  # the first frames warm the interpreters up
        p95 = series[int(0.95 * (len(series) - 1))]
        label = "frame -> decision" if stage == "total" else stage
        print(f"  {label:17s} p50 {statistics.median(series):7.2f} ms   p95 {p95:7.2f} ms")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"unlocks {counters.unlocks}, unknown reports {counters.unknown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
