"""The badge+face door's 1:1 threshold, measured: FNIR (the right badge with the right face refused), impostor
pairs (the right badge with another enrolled person's face let in) and strangers holding each enrolled badge.

    .venv/bin/python benchmarks/bench_verify_threshold.py [--faces ../shared/faces] [--target-fpir 0.005]

Through the door's own face pipeline (int8 FaceNet, short-range BlazeFace, margin 0.1, aligned): the celebrity
train photos (weights/photos/celebrity/train) are the templates, their val photos the probes; then the same with
the FACES/johns people added (the first ``--enrol`` photos of each enrolled, the rest probes). The strangers are
FACES/strangers (304 portraits, none of them in the model's reference strangers). The threshold is derived as the
door derives it (edge.eval.verify_threshold: the 1:N rule at N = 1 on the model's reference strangers), next to the
1:N threshold for the same people. Intervals are exact (Clopper-Pearson) 95%. Prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.core.recognition import FaceModel  # noqa: E402
from edge.eval.photos import PhotoFaces, analyse_photos, image_files, labelled_photos  # noqa: E402
from edge.eval.verify_threshold import verification_report  # noqa: E402


def rate(record: dict) -> str:
    low, high = record["interval"]
    return (f"{record['count']}/{record['total']} = {100 * (record['rate'] or 0):.2f}% "
            f"(95% CI {100 * low:.2f}-{100 * high:.2f}%)")


def joined(a: PhotoFaces, b: PhotoFaces) -> PhotoFaces:
    import numpy as np

    return PhotoFaces(np.concatenate([a.crops, b.crops]), a.labels + b.labels, a.paths + b.paths,
                      np.concatenate([a.vectors, b.vectors]), a.skipped + b.skipped)


def split(faces: PhotoFaces, first: int) -> tuple[PhotoFaces, PhotoFaces]:
    seen: dict[str, int] = {}
    enrol = []
    for label in faces.labels:
        seen[label] = seen.get(label, 0) + 1
        enrol.append(seen[label] <= first)
    pick = [[i for i, e in enumerate(enrol) if e == want] for want in (True, False)]
    return tuple(PhotoFaces(faces.crops[idx], [faces.labels[i] for i in idx], [faces.paths[i] for i in idx],
                            faces.vectors[idx]) for idx in pick)  # type: ignore[return-value]


def show(title: str, report: dict) -> None:
    t, n = report["threshold"], report["one_to_n"]
    print(f"{title}: {report['people']} people, FPIR target {100 * report['target_fpir']:g}% per badge presented")
    note = f"; {t['note']}" if t["note"] else ""
    print(f"  1:1 threshold {t['value']:.3f} ({t['source']}, {t['comparisons']} comparisons{note})")
    print(f"  1:N threshold {n['value']:.3f} for the same people ({n['source']})")
    print(f"  right badge, right face refused (FNIR): {rate(report['fnir'])}; farthest genuine {report['genuine_max']}")
    print(f"  right badge, another enrolled face let in: {rate(report['impostor_pairs'])}; closest "
          f"{report['impostor_min']}; pairs let in: {report['pairs_let_in'] or 'none'}")
    if "strangers" in report:
        s = report["strangers"]
        print(f"  a stranger with an enrolled badge let in: {rate(s)} ({s['photos']} strangers x {report['people']} "
              f"badges); closest {s['closest']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    parser.add_argument("--enrol", type=int, default=3)
    parser.add_argument("--target-fpir", type=float, default=0.005)
    args = parser.parse_args()
    weights = REPO / "weights"
    model = FaceModel.from_files(weights / "facenet_int8.tflite", weights / "face_detection_short_range.tflite",
                                 num_threads=2)
    card = model.encoder.card
    train = analyse_photos(labelled_photos(weights / "photos" / "celebrity" / "train"), model)
    val = analyse_photos(labelled_photos(weights / "photos" / "celebrity" / "val"), model)
    strangers = None
    if (args.faces / "strangers").is_dir():
        strangers = analyse_photos([(p.stem, p) for p in image_files(args.faces / "strangers")], model)
    options = {"reference": card.reference_strangers(), "card_threshold": float(card.threshold),
               "target_fpir": args.target_fpir, "strangers": strangers}
    show("celebrities", verification_report(train, val, **options))
    if (args.faces / "johns").is_dir():
        johns = analyse_photos(labelled_photos(args.faces / "johns"), model)
        enrolled, probes = split(johns, args.enrol)
        show(f"celebrities + johns ({args.enrol} photos each enrolled)",
             verification_report(joined(train, enrolled), joined(val, probes), **options))
    print("(a set of n cannot show a rate below 1/n: 0 of 304 strangers is an upper bound of 1.2%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
