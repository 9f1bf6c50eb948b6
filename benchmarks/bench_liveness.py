"""Liveness cost: the presentation-attack models beside FaceNet, per face, and the door daemon with liveness off,
report and enforce on the demo's camera-like visits. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_liveness.py [--repeats 5] [--threads 1]

Per face: the two MiniFASNets (both crops and both models) against FaceNet int8's encode of the same face, timed
in turns in this one process, so the ratio holds across machines. At the door the models run only on the frames
of an approach that would unlock (2 or 3 frames), never on frames of nobody or of strangers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.cli import main as facegate  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.core.liveness import LIVENESS_CARD, LivenessModel  # noqa: E402
from edge.core.recognition import FaceModel  # noqa: E402
from edge.daemon.runner import run_door  # noqa: E402


def per_face(weights: Path, repeats: int, threads: int) -> None:
    model = FaceModel.from_files(weights / "facenet_int8.tflite", weights / "face_detection_short_range.tflite",
                                 num_threads=threads)
    live = LivenessModel.from_card(weights / LIVENESS_CARD, num_threads=threads)
    faces = []
    for photo in sorted((weights / "photos" / "celebrity" / "val").glob("*/*")):
        analysis = model.analyse(photo, encode=False)
        if analysis.face is not None:
            faces.append((analysis.image, analysis.face, analysis.crop))
    encode, liveness = [], []
    for _ in range(repeats):
        for rgb, face, crop in faces:
            t0 = time.perf_counter()
            model.pipeline.encoder.encode(crop)
            t1 = time.perf_counter()
            live.score(rgb, face)
            t2 = time.perf_counter()
            encode.append((t1 - t0) * 1000)
            liveness.append((t2 - t1) * 1000)
    e, v = statistics.median(encode), statistics.median(liveness)
    print(f"per face, {len(faces)} faces x {repeats}, {threads} thread(s), median ms: FaceNet int8 encode {e:.2f}, "
          f"liveness (2 crops + 2 models) {v:.2f}: liveness/encode = {v / e:.2f}")


def door_runs(weights: Path) -> None:
    spec = importlib.util.spec_from_file_location("demo_visits", REPO / "examples" / "demo_visits.py")
    assert spec is not None and spec.loader is not None
    visits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(visits)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "visits").mkdir()
        visits.camera(weights / "photos" / "celebrity" / "val", root / "visits")
        for person in ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna"):
            photos = [str(p) for p in sorted((weights / "photos" / "celebrity" / "train" / person).iterdir())]
            with contextlib.redirect_stdout(io.StringIO()):
                facegate(["enroll", person, *photos, "--store", str(root / "people.sqlite"), "--json"])
        text = (REPO / "examples" / "demo.toml").read_text().replace("$FACEGATE_DEMO", str(root))
        text = text.replace('"../weights/', f'"{weights}/').replace("pulse_seconds = 0.3", "pulse_seconds = 0.1")
        for mode in ("off", "report", "enforce"):
            config_file = root / f"{mode}.toml"
            config_file.write_text(text.replace('mode = "report"', f'mode = "{mode}"'))
            config = load_config(config_file)
            t0 = time.perf_counter()
            counters = run_door(config, echo=None, handle_signals=False)
            seconds = time.perf_counter() - t0
            total = counters.timings_ms.get("total", [])
            print(f"door, liveness {mode:7s}: {counters.frames} frames in {seconds:.2f} s "
                  f"({seconds / counters.frames * 1000:.1f} ms a frame, pipeline p50 {statistics.median(total):.1f} "
                  f"ms), {counters.unlocks} unlocks, {counters.unknown} unknown, {counters.attacks} frames held back "
                  "or flagged")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    weights = REPO / "weights"
    per_face(weights, args.repeats, args.threads)
    door_runs(weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
