"""x86 against arm64, side by side: ``facegate identify --json``, the encodings and the door demo's decisions.

    python compare.py X86_DIR ARM64_DIR --report weights/report.json [--tolerance L2] [--unlocks 20 --unknown 5]

Each folder holds what ``tests/arm64/pi_check.sh`` made on one machine with the same photos, models and store
recipe: ``identify.jsonl`` (``facegate identify --json`` on the 25 val photos), ``encodings.jsonl``
(``encodings.py`` on the same photos), ``demo.txt`` (what ``facegate run`` printed on the demo's visits), and on
arm64 ``crop-encodings.jsonl`` (``encodings.py --crops``: FaceNet alone on the crops x86 made). It prints a table
per photo and one line per check, and exits 1 when a check fails:

- every photo gets the same identity on both machines;
- the encodings of each photo differ by at most the tolerance (L2 distance between the two unit vectors; the
  largest difference is printed). By default it is the int8 model's own largest difference from the Keras model
  it was converted from, on these same photos (``cosine_min`` in ``--report``, the build's report.json): the
  machines may disagree by no more than the quantization the model card's threshold was measured with;
- FaceNet gives the same encodings on the same crops, to the bit: a difference there would be the int8 kernels'
  (what is left of the photos' difference is then the detector's float arithmetic, which moves the crop);
- the demo takes the same decisions in the same order (recognized / unknown / door_unlocked /
  presentation_attack, with their person), its ``stopped`` counters are equal, and it unlocked ``--unlocks``
  times and reported ``--unknown`` unknown faces.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

DECISIONS = ("recognized", "unknown", "door_unlocked", "presentation_attack")
_STOPPED = re.compile(r"^stopped after (\d+) frames: (\d+) unlocks, (\d+) unknown reports")


def read_jsonl(path: Path) -> dict[str, dict]:
    """Records by photo, ``<person>/<file>`` (the folders differ between the machines)."""
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records["/".join(Path(record["photo"]).parts[-2:])] = record
    return records


def demo_events(path: Path) -> tuple[list[dict], dict[str, str], tuple[int, int, int]]:
    """The events ``facegate run`` printed (type, person, distance), the ``stopped`` event's counters and the
    final line's ``(frames, unlocks, unknown reports)``."""
    events, counters, final = [], {}, None
    for line in path.read_text().splitlines():
        if found := _STOPPED.match(line):
            final = tuple(int(g) for g in found.groups())
            continue
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) < 2 or not re.fullmatch(r"\d\d:\d\d:\d\d\.\d+", parts[0]):
            continue
        event: dict = {"type": parts[1], "person": None, "distance": None}
        for part in parts[2:]:
            if part.startswith("distance "):
                event["distance"] = float(part.split()[1])
            elif "=" in part:
                event["detail"] = dict(item.split("=", 1) for item in part.split())
            else:
                event["person"] = part
        events.append(event)
        if event["type"] == "stopped":
            counters = event.get("detail", {})
    if final is None:
        raise SystemExit(f"{path}: no 'stopped after ... frames' line: the daemon did not finish")
    return events, counters, final


def l2(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok: bool, text: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'}  {text}")
        if not ok:
            self.failed.append(text)


def compare_identify(x86: Path, arm: Path, tolerance: float, check: Checks) -> None:
    ids_x, ids_a = read_jsonl(x86 / "identify.jsonl"), read_jsonl(arm / "identify.jsonl")
    enc_x, enc_a = read_jsonl(x86 / "encodings.jsonl"), read_jsonl(arm / "encodings.jsonl")
    photos = sorted(ids_x)
    check(bool(photos) and sorted(ids_a) == photos == sorted(enc_x) == sorted(enc_a),
          f"the same {len(photos)} photos identified and encoded on both machines")
    print(f"\n{'photo':44s} {'x86':16s} {'arm64':16s} {'dist x86':>9s} {'arm64':>7s} {'|enc diff|':>10s}")
    same = correct_x = correct_a = 0
    diffs: list[tuple[float, str]] = []
    for photo in photos:
        rx, ra = ids_x[photo], ids_a.get(photo, {})
        ex, ea = enc_x.get(photo, {}).get("encoding"), enc_a.get(photo, {}).get("encoding")
        diff = l2(ex, ea) if ex is not None and ea is not None else math.nan
        if not math.isnan(diff):
            diffs.append((diff, photo))
        same += rx.get("identity") == ra.get("identity") and "error" not in rx and "error" not in ra
        truth = photo.split("/")[0]
        correct_x += rx.get("identity") == truth
        correct_a += ra.get("identity") == truth
        print(f"{photo[:44]:44s} {rx.get('identity') or '-':16s} {ra.get('identity') or '-':16s} "
              f"{rx.get('distance', math.nan):9.4f} {ra.get('distance', math.nan):7.4f} {diff:10.5f}")
    print()
    check(same == len(photos), f"identities equal on x86 and arm64 for {same}/{len(photos)} photos "
                               f"(right person: x86 {correct_x}/{len(photos)}, arm64 {correct_a}/{len(photos)})")
    distances = [abs(ids_x[p]["distance"] - ids_a[p]["distance"]) for p in photos
                 if "distance" in ids_x[p] and "distance" in ids_a.get(p, {})]
    if distances:
        mean = sum(distances) / len(distances)
        print(f"      identify distances: largest difference {max(distances):.4f} (mean {mean:.4f})")
    check(len(diffs) == len(photos), f"an encoding of every photo on both machines ({len(diffs)}/{len(photos)})")
    if diffs:
        worst, where = max(diffs)
        mean = sum(d for d, _ in diffs) / len(diffs)
        check(worst <= tolerance, f"encodings within {tolerance:g} (L2) of x86's: largest difference {worst:.5f} "
                                  f"({where}), mean {mean:.5f}, cosine >= {1 - worst ** 2 / 2:.6f}")
        crops = arm / "crop-encodings.jsonl"
        if crops.exists():
            same = read_jsonl(crops)
            exact = [p for p in photos if same.get(p, {}).get("encoding") == enc_x[p]["encoding"]]
            largest = max((l2(same[p]["encoding"], enc_x[p]["encoding"]) for p in photos if p in same
                           and None not in (same[p]["encoding"], enc_x[p]["encoding"])), default=math.nan)
            check(len(exact) == len(photos), f"FaceNet on x86's crops: the same encoding to the bit for "
                                             f"{len(exact)}/{len(photos)} photos (largest L2 difference {largest:.2e})")
        runtimes = {r.get("runtime") for r in enc_a.values()}, {r.get("machine") for r in enc_a.values()}
        ms_x = sorted(r["ms"] for r in enc_x.values())
        ms_a = sorted(r["ms"] for r in enc_a.values())
        print(f"      arm64 side: runtime {', '.join(sorted(map(str, runtimes[0])))}, machine "
              f"{', '.join(sorted(map(str, runtimes[1])))}; ms a photo (decode+detect+encode) median x86 "
              f"{ms_x[len(ms_x) // 2]:.0f}, emulated arm64 {ms_a[len(ms_a) // 2]:.0f} (emulation: not a Pi's time)")


def compare_demo(x86: Path, arm: Path, unlocks: int | None, unknown: int | None, check: Checks) -> None:
    events_x, counters_x, final_x = demo_events(x86 / "demo.txt")
    events_a, counters_a, final_a = demo_events(arm / "demo.txt")
    decided_x = [(e["type"], e["person"]) for e in events_x if e["type"] in DECISIONS]
    decided_a = [(e["type"], e["person"]) for e in events_a if e["type"] in DECISIONS]
    print(f"\ndemo, x86:   {' '.join(f'{k}={v}' for k, v in counters_x.items())}")
    print(f"demo, arm64: {' '.join(f'{k}={v}' for k, v in counters_a.items())}")
    first = next((i for i, (a, b) in enumerate(zip(decided_x, decided_a, strict=False)) if a != b),
                 min(len(decided_x), len(decided_a)))
    where = (f" (arm64 has {len(decided_a)}; first difference at #{first}: x86 {decided_x[first:first + 1]}, "
             f"arm64 {decided_a[first:first + 1]})")
    check(decided_x == decided_a, f"the same {len(decided_x)} decisions in the same order"
          + ("" if decided_x == decided_a else where))
    check(counters_x == counters_a and bool(counters_x), "the same 'stopped' counters")
    skipped = "" if final_a[0] >= final_x[0] else (" (arm64 skipped frames: a frame took longer than the slowed "
                                                    "replay's interval; raise PI_CHECK_SLOWDOWN)")
    check(final_x == final_a, f"frames, unlocks, unknown reports: x86 {final_x}, arm64 {final_a}{skipped}")
    for name, want, got in (("unlocks", unlocks, final_a[1]), ("unknown reports", unknown, final_a[2])):
        if want is not None:
            check(got == want, f"arm64 demo: {got} {name} (expected {want})")
    pairs = [(ex["distance"], ea["distance"]) for ex, ea in zip(events_x, events_a, strict=False)
             if ex["type"] == ea["type"] == "recognized" and None not in (ex["distance"], ea["distance"])]
    if pairs:
        print(f"      demo distances: largest difference {max(abs(a - b) for a, b in pairs):.3f} over "
              f"{len(pairs)} recognitions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("x86", type=Path)
    parser.add_argument("arm64", type=Path)
    parser.add_argument("--report", type=Path, help="the build's report.json (the default tolerance)")
    parser.add_argument("--tolerance", type=float, help="largest L2 difference of an encoding (default: the int8 "
                        "model's largest difference from Keras in --report)")
    parser.add_argument("--unlocks", type=int, default=None, help="unlocks the demo must give")
    parser.add_argument("--unknown", type=int, default=None, help="unknown reports the demo must give")
    args = parser.parse_args(argv)
    if args.tolerance is None:
        if args.report is None:
            parser.error("give --tolerance or --report")
        cosine = next(v["cosine_min"] for v in json.loads(args.report.read_text())["variants"] if v["name"] == "int8")
        args.tolerance = math.sqrt(2 - 2 * cosine)
        print(f"tolerance: {args.tolerance:.4f} (L2), the int8 model's largest difference from Keras on the val photos "
              f"(cosine {cosine:.5f}, {args.report})")
    check = Checks()
    compare_identify(args.x86, args.arm64, args.tolerance, check)
    compare_demo(args.x86, args.arm64, args.unlocks, args.unknown, check)
    print(f"\n{'all checks passed' if not check.failed else f'{len(check.failed)} check(s) failed'}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
