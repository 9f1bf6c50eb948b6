"""The open-set development measurement, through the CLI exactly as a site runs it: strangers let in (FPIR) and
enrolled people turned away (FNIR) at the shipped settings, beside the card's fixed threshold.

    .venv/bin/python benchmarks/bench_open_set.py [--faces ../shared/faces] [--old-threshold 1.058]

Into a temporary store, ``facegate enroll`` (one process a person, the quality gate as it ships) enrols the
celebrity train photos (weights/photos/celebrity/train) and the first ``--enrol`` photos (sorted) of each person
in FACES/johns/. ``facegate identify --json`` then probes with the celebrity val photos and the remaining johns
photos (genuine: identified as themselves or a miss) and the photos of FACES/strangers/ (one person each, nobody
enrolled: let in or not). Once with the shipped settings (the threshold derived for the default target FPIR),
once with ``--threshold OLD`` (the card's fixed threshold, the old rule); ``facegate people list`` shows the
threshold in force. FPIR counts strangers with a face (a photo without one never reaches the door's decision);
FNIR counts every genuine photo, a photo without a face as a miss. Intervals are exact (Clopper-Pearson) 95%.
Prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.eval.evaluation import binomial_interval  # noqa: E402
from edge.eval.photos import image_files, labelled_photos  # noqa: E402


def facegate(*argv: object, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """One ``facegate`` process from this checkout; raises if it exits with a code not in ``ok``."""
    done = subprocess.run([sys.executable, "-m", "edge.cli", *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True)
    if done.returncode not in ok:
        raise SystemExit(f"facegate {' '.join(map(str, argv[:2]))} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def json_lines(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def enrol(store: Path, name: str, photos: list[Path], options: list[str]) -> tuple[int, list[str]]:
    """``facegate enroll``: ``(photos added, reasons of those rejected)`` (exit 3 means some were rejected)."""
    records = json_lines(facegate("enroll", name, *photos, "--store", store, "--json", *options, ok=(0, 3)))
    return sum(r["added"] for r in records), [f"{r['photo']}: {r['reason']}" for r in records if not r["added"]]


def identify(store: Path, photos: list[Path], options: list[str]) -> dict[str, dict]:
    """``facegate identify --json``: the record of each photo by path (exit 3: someone not in the database, 1: a
    photo without a face)."""
    records = json_lines(facegate("identify", *photos, "--store", store, "--json", *options, ok=(0, 1, 3)))
    by_photo = {r["photo"]: r for r in records}
    missing = [p for p in photos if str(p) not in by_photo]
    if missing:
        raise SystemExit(f"identify answered nothing for {len(missing)} photos, e.g. {missing[0]}")
    return by_photo


def rate(count: int, total: int) -> str:
    low, high = binomial_interval(count, total)
    return f"{count}/{total} = {100 * count / max(total, 1):.2f}% (95% CI {100 * low:.2f}%-{100 * high:.2f}%)"


def measure(store: Path, genuine: list[tuple[str, Path]], strangers: list[Path], options: list[str]) -> dict:
    """FPIR and FNIR of one setting, with the threshold each answer quoted."""
    answers = identify(store, [p for _, p in genuine] + strangers, options)
    faced = [answers[str(p)] for p in strangers if "error" not in answers[str(p)]]
    let_in = [r for r in faced if r["identity"] is not None]
    wrong = farther = no_face = 0
    missed = []
    for person, path in genuine:
        r = answers[str(path)]
        if "error" in r:
            no_face += 1
            missed.append(f"{path.parent.name}/{path.name}: {r['error']}")
            continue
        if r["identity"] is None:
            farther += 1
        elif r["identity"] != person:
            wrong += 1
        else:
            continue
        missed.append(f"{path.parent.name}/{path.name}: {r['identity'] or 'not in the database'} "
                      f"(closest {r['closest']} at {r['distance']:.3f})")
    thresholds = {(r["threshold"], r["threshold_source"]) for r in answers.values() if "threshold" in r}
    return {"let_in": let_in, "strangers": len(faced), "stranger_no_face": len(strangers) - len(faced),
            "misses": wrong + farther + no_face, "wrong": wrong, "farther": farther, "no_face": no_face,
            "genuine": len(genuine), "missed": missed, "thresholds": sorted(thresholds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces",
                        help="the development faces: johns/<person>/*.jpg and strangers/*.jpg (default %(default)s)")
    parser.add_argument("--celebrity", type=Path, default=REPO / "weights" / "photos" / "celebrity",
                        help="train/ and val/ of the celebrity set (default: this checkout's weights/photos/...)")
    parser.add_argument("--enrol", type=int, default=3, help="johns photos enrolled per person (default 3)")
    parser.add_argument("--old-threshold", type=float, default=1.058,
                        help="the fixed threshold to compare with (default %(default)s: the int8 card's)")
    parser.add_argument("--variant", default="int8", help="which built FaceNet (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the models (default 2)")
    args = parser.parse_args()
    options = ["--variant", args.variant, "--threads", str(args.threads)]
    johns = labelled_photos(args.faces / "johns")
    strangers = image_files(args.faces / "strangers")
    celebrity_train = labelled_photos(args.celebrity / "train")
    celebrity_val = labelled_photos(args.celebrity / "val")
    enrolment: dict[str, list[Path]] = {}
    genuine: list[tuple[str, Path]] = list(celebrity_val)
    for person, path in celebrity_train:
        enrolment.setdefault(person, []).append(path)
    for person in sorted({p for p, _ in johns}):
        photos = sorted(path for p, path in johns if p == person)
        enrolment[person] = photos[:args.enrol]
        genuine += [(person, path) for path in photos[args.enrol:]]

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.db"
        added, rejected = 0, []
        for person, photos in enrolment.items():
            n, why = enrol(store, person, photos, options)
            added += n
            rejected += why
        listed = facegate("people", "list", "--store", store, *options).stdout.strip().splitlines()
        shipped = measure(store, genuine, strangers, options)
        old = measure(store, genuine, strangers, [*options, "--threshold", str(args.old_threshold)])
    elapsed = time.perf_counter() - start

    photos = sum(len(p) for p in enrolment.values())
    print(f"open-set development measurement: facegate enroll / identify --json into a temporary store "
          f"({args.variant}, short range, {args.threads} threads; {elapsed:.0f} s)")
    print(f"enrolled: {len(enrolment)} people ({len({p for p, _ in celebrity_train})} celebrity: every train photo; "
          f"{len({p for p, _ in johns})} johns: the first {args.enrol} photos each), {photos} photos: {added} added, "
          f"{len(rejected)} rejected by the quality gate")
    for why in rejected:
        print(f"  rejected {why}")
    print(f"probes: {len(genuine)} genuine ({len(celebrity_val)} celebrity val, {len(genuine) - len(celebrity_val)} "
          f"johns), {len(strangers)} strangers ({args.faces / 'strangers'})")
    print(f"facegate people list: {listed[-1] if listed else '(nothing)'}")
    print()
    print(f"{'setting':<46}{'FPIR: strangers let in':<40}FNIR: genuine photos not identified")
    for label, m in (("shipped (--target-fpir default)", shipped),
                     (f"--threshold {args.old_threshold} (card's fixed threshold)", old)):
        print(f"{label:<46}{rate(len(m['let_in']), m['strangers']):<40}{rate(m['misses'], m['genuine'])}")
    for label, m in (("shipped", shipped), (f"--threshold {args.old_threshold}", old)):
        quoted = ", ".join(f"{value:.4f} ({source})" for value, source in m["thresholds"])
        print(f"  {label}: threshold {quoted}; FNIR: {m['wrong']} as someone else, {m['farther']} not in the "
              f"database, {m['no_face']} without a face; strangers let in: "
              + (", ".join(f"{Path(r['photo']).stem} as {r['identity']} ({r['distance']:.3f})" for r in m["let_in"])
                 or "none"))
        for miss in m["missed"]:
            print(f"    not identified: {miss}")
    print(f"{shipped['stranger_no_face']} of {len(strangers)} strangers without a face (left out of FPIR); "
          f"{shipped['strangers']} strangers cannot show a rate below 1/{shipped['strangers']} "
          f"({100 / max(shipped['strangers'], 1):.2f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
