"""Does the access log's retention purge hold up the door? Frame -> decision with and without a purge of 100,000 rows.

    .venv/bin/python benchmarks/bench_access_log.py [--frames 300] [--rows 100000] [--threads 2]

The door's per-frame work, as the daemon does it: the celebrity val photos in 640x480 frames through the face
pipeline (int8 FaceNet, short-range BlazeFace) against a real store of four enrolled people, then the access
decision of edge.daemon.access (the policy evaluated on the store's access data, and one access log record written,
fsynced: synchronous=FULL). Every frame writes a record here, far more than a door does (a few a minute): the worst
case for contention with the purge. Measured in turns: without a purge, with the purge thread deleting ``--rows``
records older than the retention (200 a transaction, 50 ms apart, as it ships), and without again. The frames of
the purge run are those while the purge was going on. Prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_daemon import frames_640x480  # noqa: E402
from edge.cli import main as facegate  # noqa: E402
from edge.core.access import DoorPolicy  # noqa: E402
from edge.core.images import load_image  # noqa: E402
from edge.core.recognition import FaceModel  # noqa: E402
from edge.daemon.access import AccessControl  # noqa: E402
from edge.storage.access_data import AccessReader  # noqa: E402
from edge.storage.access_log import PURGE_BATCH, AccessLog, utc_text  # noqa: E402
from edge.storage.store import EncodingStore  # noqa: E402

WEIGHTS = REPO / "weights"
NOW = datetime(2025, 3, 3, 12, tzinfo=timezone.utc)
CUTOFF = utc_text(NOW - timedelta(days=30))  # the retention's end: older records are purged


def fill(path: Path, rows: int) -> None:
    """``rows`` records 40 days old (past the 30-day retention), in one transaction."""
    AccessLog(path).close()
    old = utc_text(NOW - timedelta(days=40))
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO access_log (time, door, person, mode, result, reason, distance) "
                         "VALUES (?, 'bench', ?, 'face', 'granted', 'granted', 0.6)",
                         ((old, f"p{k % 50}") for k in range(rows)))


def remaining(path: Path, cutoff: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM access_log WHERE time < ?", (cutoff,)).fetchone()[0])


def frames(images: list, model, gallery, access: AccessControl, count: int, until=None) -> list[float]:
    """Frame -> decision milliseconds of ``count`` frames (and on while ``until()`` is true)."""
    times: list[float] = []
    k = 0
    while k < count or (until is not None and until()):
        image = images[k % len(images)]
        start = time.perf_counter()
        analysis = model.analyse(image, database=gallery)
        if analysis.encoding is not None:
            if gallery.accepts(analysis.distance):
                access.on_recognised(analysis.closest, analysis.distance, now=float(k))
            else:
                access.on_unknown(analysis.distance, now=float(k))
        times.append(1000 * (time.perf_counter() - start))
        k += 1
    return times


def summary(label: str, ms: list[float]) -> str:
    series = sorted(ms)
    p95 = series[int(0.95 * (len(series) - 1))]
    return f"  {label:30s} {len(ms):5d} frames   p50 {statistics.median(series):6.2f} ms   p95 {p95:6.2f} ms"


def door(root: Path) -> list:
    """The frames (as RGB arrays) and a store of four enrolled people in ``root``, as bench_daemon makes them."""
    photos = WEIGHTS / "photos" / "celebrity"
    for person in ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna"):
        with contextlib.redirect_stdout(io.StringIO()):
            facegate(["enroll", person, *map(str, sorted((photos / "train" / person).iterdir())), "--store",
                      str(root / "people.sqlite"), "--json"])
    (root / "frames").mkdir()
    frames_640x480(photos / "val", root / "frames")
    return [load_image(p) for p in sorted((root / "frames").glob("*.jpg"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, default in (("--frames", 300), ("--rows", 100_000), ("--threads", 2)):
        parser.add_argument(option, type=int, default=default)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = door(root)
        model = FaceModel.from_files(WEIGHTS / "facenet_int8.tflite", WEIGHTS / "face_detection_short_range.tflite",
                                     num_threads=args.threads)
        store = EncodingStore(root / "people.sqlite", model_sha256=model.model_sha256, embedding_size=128)
        gallery = model.open_set(store)
        frames(images, model, gallery, AccessControl(device_id="warm", policy=DoorPolicy(), access=store.access,
                                                     access_log=None, gallery=gallery), 30)  # warm the interpreters
        results = []
        for run, purge in (("no purge", False), (f"purging {args.rows:,} rows", True), ("no purge, again", False)):
            log_path = root / f"log-{len(results)}.sqlite"
            if purge:
                fill(log_path, args.rows)
            access = AccessControl(device_id="bench", policy=DoorPolicy(), access=AccessReader(store.path),
                                   access_log=AccessLog(log_path), gallery=gallery, wall=lambda: NOW)
            started = time.perf_counter()
            if purge:
                access.start()  # the purge thread, as the daemon starts it
                ms = frames(images, model, gallery, access, 1, until=lambda p=log_path: remaining(p, CUTOFF) > 0)
                took = time.perf_counter() - started
                results.append(summary(run, ms))
                batches = -(-args.rows // PURGE_BATCH)
                results.append(f"  {'':30s} purge done in {took:.1f} s ({batches} transactions of {PURGE_BATCH} "
                               f"rows); {remaining(log_path, CUTOFF)} old rows left")
            else:
                results.append(summary(run, frames(images, model, gallery, access, args.frames)))
            access.close()
        store.close()
    print(f"frame -> access decision (pipeline + policy + one fsynced access-log record), 640x480, int8, "
          f"{args.threads} threads")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
