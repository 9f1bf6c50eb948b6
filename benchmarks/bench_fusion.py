"""Strangers per approach, not per photo: the door daemon on replayed approaches of 3 frames, fusion on and off.

    .venv/bin/python benchmarks/bench_fusion.py [--faces ../shared/faces]

The development gallery (the celebrity train photos and the first 3 photos of each person of faces/johns/) is
enrolled through ``facegate enroll`` into a temporary store. Every probe becomes one *approach*: 3 frames made
from its photo as a camera would see a person walking up (the photo; brighter and 5% smaller; darker and shifted
sideways by 4% of its width), followed by 3 empty frames so that no vote carries over to the next approach.
The real daemon (``facegate run`` on a replay camera with mock pins, cooldown 0) then runs over them, once with
``fuse_frames = true`` (the shipped setting) and once without. Per photo: the share of single frames whose
nearest template is within the threshold (what a one-frame rule would let in). Per approach: the share of
approaches that unlocked the door. Strangers: faces/strangers/ (304); genuine: the celebrity val photos and the
other johns photos. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.cli import main as facegate  # noqa: E402
from edge.core.images import load_image  # noqa: E402

FRAMES_PER_APPROACH = 6  # 3 frames of the photo, 3 empty ones


def approach_frames(photo: Path) -> list[np.ndarray]:
    """3 frames (BGR, for cv2.imwrite) of one photo: as it is; brighter and 5% smaller; darker, shifted by 4%."""
    rgb = load_image(photo)
    h, w = rgb.shape[:2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    small = cv2.resize(cv2.convertScaleAbs(bgr, alpha=1.0, beta=15), (round(w * 0.95), round(h * 0.95)))
    shifted = cv2.warpAffine(cv2.convertScaleAbs(bgr, alpha=1.0, beta=-15), np.float32([[1, 0, 0.04 * w], [0, 1, 0]]),
                             (w, h), borderMode=cv2.BORDER_REPLICATE)
    return [bgr, small, shifted]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    args = parser.parse_args()
    weights = REPO / "weights"
    celebrity = weights / "photos" / "celebrity"
    johns = sorted(p for p in (args.faces / "johns").iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "people.sqlite"
        genuine: list[tuple[str, Path]] = []
        for person in sorted(p for p in (celebrity / "train").iterdir() if p.is_dir()):
            quiet_enroll(person.name, sorted(person.iterdir()), store)
            genuine += [(person.name, p) for p in sorted((celebrity / "val" / person.name).iterdir())]
        for person in johns:
            photos = sorted(person.iterdir())
            quiet_enroll(person.name, photos[:3], store)
            genuine += [(person.name, p) for p in photos[3:]]
        strangers = [("", p) for p in sorted((args.faces / "strangers").iterdir())]
        results = {}
        for kind, probes in (("strangers", strangers), ("genuine", genuine)):
            frames = tmp / f"frames-{kind}"
            frames.mkdir()
            blank = np.zeros((240, 240, 3), np.uint8)
            for n, (_, photo) in enumerate(probes):
                for k, frame in enumerate(approach_frames(photo) + [blank] * (FRAMES_PER_APPROACH - 3)):
                    cv2.imwrite(str(frames / f"{n:04d}_{k}.png"), frame)
            for fuse in (True, False):
                results[(kind, fuse)] = run_daemon(tmp, frames, store, weights, fuse=fuse)
        th = subprocess.run([sys.executable, "-m", "edge.cli", "people", "list", "--store", str(store)],
                            capture_output=True, text=True, cwd=REPO).stdout.strip().splitlines()[-1]
    print(f"gallery: {th}")
    print(f"{'':10s} {'approaches':>10s} {'frames matched':>18s} {'let in, fused':>18s} {'let in, not fused':>18s}")
    for kind, probes in (("strangers", strangers), ("genuine", genuine)):
        n, row = len(probes), []
        for fuse in (True, False):
            doc = results[(kind, fuse)]
            if kind == "strangers":
                let_in = len({approach for _, approach in doc["unlocks"]})
            else:  # the right person, in that person's own approach
                let_in = len({a for person, a in doc["unlocks"] if person == probes[a][0]})
            row.append(_pct(let_in, n))
        counters = results[(kind, True)]["counters"]
        print(f"{kind:10s} {n:10d} {_pct(counters['matched'], counters['faces']):>18s} {row[0]:>18s} {row[1]:>18s}"
              f"   (fusion refused {counters['fusion_refused']})")
    print("frames matched: single frames within the threshold of someone (what a one-frame rule would let in); "
          "let in: approaches that unlocked the door (for genuine ones, as the right person)")
    return 0


def quiet_enroll(name: str, photos: list[Path], store: Path) -> None:
    """``facegate enroll`` with its output dropped (refused photos are fine here: the gate decides, as at a site)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        facegate(["enroll", name, *map(str, photos), "--store", str(store), "--json"])


def run_daemon(tmp: Path, frames: Path, store: Path, weights: Path, *, fuse: bool) -> dict:
    """The daemon over ``frames``: its counters, and ``(person, approach)`` of every unlock."""
    config = tmp / "door.toml"
    config.write_text(f"""
[device]
id = "bench-fusion"
[models]
encoder = "{weights / 'facenet_int8.tflite'}"
detector = "{weights / 'face_detection_short_range.tflite'}"
threads = 2
[store]
path = "{store}"
[recognition]
min_face_px = 40
window_seconds = 30
cooldown_seconds = 0
unknown_report_interval_seconds = 0
fuse_frames = {str(fuse).lower()}
[camera]
type = "replay"
path = "{frames}"
[relay]
pin = 17
pulse_seconds = 0.1
pin_factory = "mock"
""")
    code = ("import json, sys\nfrom edge.config import load_config\nfrom edge.daemon.runner import run_door\n"
            "events = []\nrun_door(load_config(sys.argv[1]), echo=None, extra_sink=events.append)\n"
            "print(json.dumps({'unlocks': [(e.person, e.detail['frame']) for e in events if e.type == 'recognized'], "
            "'counters': [e.detail for e in events if e.type == 'stopped'][-1]}))")
    out = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.strip().splitlines()[-1]
    doc = json.loads(out)
    doc["unlocks"] = [(person, (frame - 1) // FRAMES_PER_APPROACH) for person, frame in doc["unlocks"]]
    return doc


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} = {100 * k / max(n, 1):.1f}%"


if __name__ == "__main__":
    sys.exit(main())
