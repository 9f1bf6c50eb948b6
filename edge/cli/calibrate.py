"""``facegate calibrate`` (which threshold?) and ``facegate evaluate`` (how well does it recognise?).

Both measure the model in use (variant, detector, margin, alignment: the common options) on labelled photos,
one sub-folder per person, each photo encoded through the same detector and crop as a camera frame.
Distances are L2 between unit-length encodings (0..2); a face is accepted when its distance is below the
threshold.

* ``calibrate DIR``: false accepts and false rejects over a range of thresholds, for photo *pairs* and for
  the *open set* (each photo, its person left out, against everyone else's photos: a stranger at the
  door), and the threshold to ship: the largest whose open-set stranger acceptance is at most
  ``--target-far``. Pair rates understate the door's risk: a stranger is compared with every stored
  encoding at once and gets in if *any* is close enough.
* ``evaluate DIR``: enrol ``DIR/train`` in memory, identify each ``DIR/val`` photo as ``who_is_it`` does,
  and show the seed's naive pixel baseline, an open-set check and eye alignment on and off side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import plots
from edge.cli import EXIT_OK, EXIT_REFUSED
from edge.errors import FacegateError
from edge.metrics import (
    equal_error_rate,
    identify_nearest,
    open_set_distances,
    pair_distances,
    rates_at,
    threshold_for_far,
)
from edge.photoset import crop_photos, labelled_photos
from edge.progress import Progress
from edge.recognition import FaceModel, database_matrix, nearest

log = logging.getLogger(__name__)

#: The threshold of the course the product follows (its model and preprocessing, not ours).
COURSE_THRESHOLD = 0.7
#: Thresholds of calibrate's table: 0.60, 0.65, ... 1.40 (plus the recommended, the course's and the current).
TABLE_THRESHOLDS = tuple(round(0.6 + 0.05 * k, 2) for k in range(17))
#: The naive baseline's image: face crops resized to this many pixels a side, greyscale.
PIXEL_SIDE = 64
DEFAULT_PLOTS_DIR = Path("calibration")


def add_parsers(sub) -> list[argparse.ArgumentParser]:
    c = sub.add_parser(
        "calibrate", help="measure false accepts / rejects on labelled photos and recommend a threshold",
        description="Encode the largest face of every photo in DIR/<person>/ and measure, over a range of "
        "thresholds, the pair false-accept / false-reject rates and the open-set rates (each photo as a "
        "stranger against everyone else's photos, as the door meets an unknown visitor). Recommends the "
        "largest threshold whose open-set stranger acceptance is at most --target-far. Needs at least 2 "
        "people and one person with 2 photos.")
    c.add_argument("dir", type=Path, metavar="DIR", help="labelled photos: DIR/<person>/*.jpg")
    c.add_argument("--target-far", type=_fraction, default=0.001,
                   help="highest acceptable share of strangers let in, 0..1 (default %(default)s)")
    c.add_argument("--plots", type=Path, nargs="?", const=DEFAULT_PLOTS_DIR, default=None, metavar="OUTDIR",
                   help="write roc.png and distances.png into OUTDIR (created if needed; without a value: "
                   f"./{DEFAULT_PLOTS_DIR}/). Default: no plots")
    c.set_defaults(func=run_calibrate)

    e = sub.add_parser(
        "evaluate", help="identify DIR/val against DIR/train: accuracy, pixel baseline, strangers, alignment",
        description="Enrol DIR/train/<person>/ in memory and identify each DIR/val/<person>/ photo as "
        "who_is_it does (closest stored encoding, accepted at or below the threshold). Reports per-person "
        "accuracy with every miss explained, top-1, the naive pixel baseline on the same face crops, and an "
        "open-set check (each person removed from the enrolled set, their val photos presented as "
        "strangers). Exit 0 when every val photo is identified with the options given, 3 otherwise.")
    e.add_argument("dir", type=Path, metavar="DIR", help="DIR/train/<person>/*.jpg and DIR/val/<person>/*.jpg")
    e.add_argument("--compare-align", action=argparse.BooleanOptionalAction, default=True,
                   help="also evaluate with the other alignment setting and show both columns; the exit code "
                   "follows the setting of --no-align (default: compare)")
    e.set_defaults(func=run_evaluate)
    return [c, e]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction 0 <= x < 1 (0.001 = 0.1%), got {text}")
    return value


# -- encoding labelled photos ------------------------------------------------------------------------------


@dataclass
class EncodedPhotos:
    """Labelled photos through the door's pipeline.

    ``crops[i]`` ((H, W, 3) uint8 RGB face crop) and ``encodings[i]`` ((d,) float32, L2 norm 1) show
    ``labels[i]``, from ``paths[i]``; ``skipped`` holds ``(path, reason)`` of photos without a usable face.
    """

    crops: np.ndarray
    encodings: np.ndarray
    labels: list[str]
    paths: list[Path]
    skipped: list[tuple[Path, str]]


def encode_photos(model: FaceModel, photos: list[tuple[str, Path]], *, label: str,
                  show_progress: bool = True) -> EncodedPhotos:
    """Detect, crop (the model's margin and alignment) and encode the largest face of each ``(person, path)``.

    Unreadable photos and photos without a face are skipped and listed with the reason. Progress on stderr.
    """
    with Progress(len(photos), f"{label}: finding faces", enabled=show_progress) as bar:
        found = crop_photos(photos, model.detector, margin=model.margin, align=model.align,
                            size=model.encoder.input_size[0], progress=bar)
    encodings = np.empty((len(found.labels), model.embedding_size), np.float32)
    with Progress(len(found.labels), f"{label}: encoding", enabled=show_progress) as bar:
        for i, crop in enumerate(found.crops):
            encodings[i] = model.encoder.encode(crop)[0]
            bar()
    return EncodedPhotos(found.crops, encodings, found.labels, found.paths, found.skipped)


def _people(labels) -> list[str]:
    return sorted(set(labels))


def _require_two_people(labels, where: Path) -> None:
    people = _people(labels)
    if len(people) < 2:
        found = f"{len(people)} ({', '.join(people)})" if people else "none"
        raise FacegateError(f"{where}: needs photos of at least 2 people (one sub-folder each) to measure "
                            f"false accepts; found {found}")


def _skipped(skipped: list[tuple[Path, str]]) -> list[dict]:
    return [{"photo": str(path), "reason": reason} for path, reason in skipped]


def _pct(rate: float) -> str:
    return f"{100.0 * rate:.1f}%"


def _pipeline(model: FaceModel, env) -> dict:
    return {"model": env.model_path().name, "variant": model.encoder.card.variant, "model_sha256": model.model_sha256,
            "detector": env.detector_path().name, "margin": model.margin, "align": model.align}


def _pipeline_text(p: dict) -> str:
    return (f"{p['model']}, {p['detector']}, margin {p['margin']}, "
            f"{'aligned' if p['align'] else 'not aligned'}")


# -- calibrate ---------------------------------------------------------------------------------------------


def error_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of ``accept if distance < t``: ``(thresholds, far, frr)``, thresholds increasing.

    ``far`` is the share of ``impostor`` distances accepted, ``frr`` the share of ``genuine`` refused
    (fractions 0..1); the thresholds run from 0 (accept nothing) to just above the largest distance.
    """
    genuine = np.sort(np.asarray(genuine, np.float64))
    impostor = np.sort(np.asarray(impostor, np.float64))
    values = np.unique(np.concatenate([genuine, impostor]))
    t = np.concatenate([[0.0], values, [np.nextafter(values[-1], np.inf)]]) if len(values) else np.array([0.0])
    far = np.searchsorted(impostor, t, side="left") / max(len(impostor), 1)
    frr = 1.0 - np.searchsorted(genuine, t, side="left") / max(len(genuine), 1)
    return t, far, frr


def calibration(encodings: np.ndarray, labels: list[str], *, target_far: float,
                current_threshold: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Error rates of ``encodings`` (n, d) showing ``labels`` and the threshold to ship for ``target_far``.

    Returns:
        ``(report, distances)``. ``report`` is JSON-ready: pair and open-set counts, the pair EER, the
        recommended threshold with its rates, whether ``target_far`` can be resolved with this many
        strangers (with a note if not), and a table of rates at :data:`TABLE_THRESHOLDS` plus the
        recommended, the course's 0.7 and ``current_threshold``. ``distances`` holds the 1-D arrays
        ``genuine`` and ``impostor`` (pairs), ``open_set_genuine`` and ``open_set_stranger``.

    Raises:
        FacegateError: fewer than 2 people, or nobody with 2 photos (no genuine pairs).
    """
    genuine, impostor = pair_distances(encodings, labels)
    if len(_people(labels)) < 2:
        raise FacegateError(f"calibration needs encodings of at least 2 people, got {len(_people(labels))}")
    if len(genuine) == 0:
        raise FacegateError("calibration needs at least one person with 2 usable photos (no genuine pairs)")
    os_genuine, os_stranger = open_set_distances(encodings, labels)
    eer = equal_error_rate(genuine, impostor)
    chosen = threshold_for_far(os_genuine, os_stranger, target_far)
    marks: dict[float, list[str]] = {}
    for t, name in ((chosen.threshold, "recommended"), (COURSE_THRESHOLD, "course"), (current_threshold, "current")):
        if t is not None:
            marks.setdefault(round(float(t), 6), []).append(name)
    table = []
    for t in sorted(set(TABLE_THRESHOLDS) | set(marks)):
        pair = rates_at(genuine, impostor, t)
        open_set = rates_at(os_genuine, os_stranger, t)
        table.append({"threshold": t, "pair_far": pair.far, "pair_frr": pair.frr,
                      "stranger_acceptance": open_set.far, "genuine_rejection": open_set.frr,
                      "mark": ", ".join(marks.get(t, []))})
    pair_at_chosen = rates_at(genuine, impostor, chosen.threshold)
    smallest = 1.0 / len(os_stranger)
    resolvable = target_far >= smallest
    note = None if resolvable else (
        f"{len(os_stranger)} strangers cannot show a rate below 1/{len(os_stranger)} = {_pct(smallest)}, so a "
        f"target of {_pct(target_far)} is not resolved: the recommended threshold let none of them in. "
        f"Calibrate on at least {int(np.ceil(1.0 / target_far)) if target_far > 0 else 'many more'} photos of "
        "several people to measure it.")
    report = {
        "people": len(_people(labels)), "photos": len(labels),
        "pairs": {"genuine": len(genuine), "impostor": len(impostor)},
        "open_set": {"strangers": len(os_stranger), "genuine": len(os_genuine)},
        "target_far": target_far,
        "pair_eer": {"rate": eer.far, "threshold": eer.threshold},
        "recommended": {"threshold": chosen.threshold, "stranger_acceptance": chosen.far,
                        "genuine_rejection": chosen.frr, "pair_far": pair_at_chosen.far,
                        "pair_frr": pair_at_chosen.frr},
        "resolvable": resolvable, "note": note,
        "current_threshold": current_threshold,
        "table": table,
    }
    distances = {"genuine": genuine, "impostor": impostor, "open_set_genuine": os_genuine,
                 "open_set_stranger": os_stranger}
    return report, distances


def run_calibrate(args, env) -> int:
    photos = labelled_photos(args.dir)
    _require_two_people([person for person, _ in photos], args.dir)
    model = env.face_model()
    encoded = encode_photos(model, photos, label="calibrate", show_progress=not env.json)
    _require_two_people(encoded.labels, args.dir)
    report, distances = calibration(encoded.encodings, encoded.labels, target_far=args.target_far,
                                    current_threshold=model.threshold)
    record = {"command": "calibrate", "dir": str(args.dir), "pipeline": _pipeline(model, env),
              "skipped": _skipped(encoded.skipped), **report, "plots": None}
    if args.plots is not None:
        record["plots"] = {name: str(path) for name, path in
                           write_calibration_plots(args.plots, distances, report).items()}
    env.emit(record, _calibration_text(record))
    return EXIT_OK


def _calibration_text(r: dict) -> str:
    lines = [f"calibrate {r['dir']}: {r['photos']} photos of {r['people']} people encoded, "
             f"{len(r['skipped'])} skipped ({_pipeline_text(r['pipeline'])})"]
    lines += [f"  skipped {s['photo']}: {s['reason']}" for s in r["skipped"]]
    lines.append(f"pairs: {r['pairs']['genuine']} genuine, {r['pairs']['impostor']} impostor; open set: "
                 f"{r['open_set']['strangers']} strangers (each photo against everyone else's photos), "
                 f"{r['open_set']['genuine']} with another photo of the same person")
    lines.append("")
    lines.append(f"{'threshold':>9}  {'pair FAR':>8}  {'pair FRR':>8}  {'strangers in':>12}  "
                 f"{'genuine out':>11}")
    for row in r["table"]:
        lines.append(f"{row['threshold']:>9.3f}  {_pct(row['pair_far']):>8}  {_pct(row['pair_frr']):>8}  "
                     f"{_pct(row['stranger_acceptance']):>12}  {_pct(row['genuine_rejection']):>11}"
                     + (f"  <- {row['mark']}" if row["mark"] else ""))
    lines.append("(accept if distance < threshold; 'strangers in' / 'genuine out': open set, the door's view)")
    lines.append("")
    rec = r["recommended"]
    lines.append(f"pair EER: {_pct(r['pair_eer']['rate'])} at threshold {r['pair_eer']['threshold']:.3f}")
    lines.append(f"recommended threshold: {rec['threshold']:.3f}: lets in {_pct(rec['stranger_acceptance'])} of "
                 f"strangers (target {_pct(r['target_far'])}), turns away {_pct(rec['genuine_rejection'])} of "
                 f"genuine photos (pair FAR {_pct(rec['pair_far'])}, pair FRR {_pct(rec['pair_frr'])})")
    if r["note"]:
        lines.append(f"note: {r['note']}")
    if r["current_threshold"] is not None:
        lines.append(f"threshold in use now: {r['current_threshold']:.3f} (--threshold, or the model's card)")
    if r["plots"]:
        lines.append("plots: " + ", ".join(r["plots"].values()))
    return "\n".join(lines)


def write_calibration_plots(outdir: Path, distances: dict[str, np.ndarray], report: dict) -> dict[str, Path]:
    """``roc.png`` (genuine acceptance against false accepts, log x) and ``distances.png`` in ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    chosen = report["recommended"]["threshold"]
    pair = error_curve(distances["genuine"], distances["impostor"])
    open_set = error_curve(distances["open_set_genuine"], distances["open_set_stranger"])
    floor = 10.0 ** np.floor(np.log10(0.5 / max(len(distances["impostor"]), 1)))
    markers = []
    for t, name, colour in ((chosen, f"recommended {chosen:.3f}", plots.PURPLE),
                            (COURSE_THRESHOLD, f"course {COURSE_THRESHOLD}", plots.GREY)):
        o = rates_at(distances["open_set_genuine"], distances["open_set_stranger"], t)
        markers.append(plots.Marker(name, max(o.far, floor), 1.0 - o.frr, colour))
    eer = report["pair_eer"]
    markers.append(plots.Marker(f"pair EER {eer['threshold']:.3f}", max(eer["rate"], floor), 1.0 - eer["rate"],
                                plots.BLUE))
    roc = plots.line_chart(
        [plots.Series("photo pairs", np.maximum(pair[1], floor), 1.0 - pair[2], plots.BLUE),
         plots.Series("open set: stranger vs everyone enrolled", np.maximum(open_set[1], floor),
                      1.0 - open_set[2], plots.ORANGE)],
        title="ROC: genuine acceptance vs false accepts (0 drawn at the left edge)",
        x_label="false accept rate (impostor pairs / strangers let in), log scale",
        y_label="genuine acceptance (1 - FRR)", x_range=(floor, 1.0), y_range=(0.0, 1.0), log_x=True,
        markers=markers, x_format=lambda v: f"{100 * v:g}%")
    everything = np.concatenate([d for d in distances.values() if len(d)] + [[chosen, COURSE_THRESHOLD]])
    x_range = (np.floor(everything.min() * 10) / 10, np.ceil(everything.max() * 10) / 10)
    vlines = [plots.VLine(f"recommended {chosen:.3f}", chosen, plots.PURPLE),
              plots.VLine(f"course {COURSE_THRESHOLD}", COURSE_THRESHOLD, plots.GREY)]
    hist = plots.histogram_chart(
        [("photo pairs", [plots.Distribution("genuine pair", distances["genuine"], plots.BLUE),
                          plots.Distribution("impostor pair", distances["impostor"], plots.RED)]),
         ("open set: each photo's nearest other photo",
          [plots.Distribution("nearest same person", distances["open_set_genuine"], plots.GREEN),
           plots.Distribution("nearest other person (stranger)", distances["open_set_stranger"], plots.ORANGE)])],
        title="L2 distances between encodings", x_label="L2 distance", x_range=x_range, vlines=vlines)
    return {"roc": plots.save_png(outdir / "roc.png", roc),
            "distances": plots.save_png(outdir / "distances.png", hist)}


# -- evaluate ----------------------------------------------------------------------------------------------


def pixel_features(crops: np.ndarray, *, side: int = PIXEL_SIDE) -> np.ndarray:
    """The naive baseline's vectors: each (H, W, 3) uint8 RGB crop as ``side`` x ``side`` greyscale, 0..1.

    Returns ``(m, side * side)`` float32; compared by plain L2 distance, pixel by pixel.
    """
    out = np.empty((len(crops), side * side), np.float32)
    for i, crop in enumerate(crops):
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
    return out


def evaluation(train: EncodedPhotos, val: EncodedPhotos, *, threshold: float) -> dict:
    """Identify ``val`` against ``train`` enrolled as ``name -> (k, d)`` with who_is_it's rule.

    A val photo is identified when its closest stored encoding shows the same person and its distance is
    at most ``threshold``; skipped val photos count as misses. Returns a JSON-ready dict: per-person
    counts with every miss, top-1 (closest regardless of threshold), the pair EER on all photos, the pixel
    baseline on the same crops and the open-set check.
    """
    database = {name: train.encodings[[i for i, n in enumerate(train.labels) if n == name]]
                for name in _people(train.labels)}
    names, matrix = database_matrix(database)
    people = _people(val.labels + [_person_of(path) for path, _ in val.skipped])
    per_person = {p: {"identified": 0, "total": 0, "misses": []} for p in people}
    top1 = 0
    for encoding, person, path in zip(val.encodings, val.labels, val.paths, strict=True):
        dist, closest = nearest(encoding, names, matrix)
        top1 += closest == person
        row = per_person[person]
        row["total"] += 1
        if closest == person and dist <= threshold:
            row["identified"] += 1
        else:
            if closest != person and dist <= threshold:
                why = "someone else, close enough to be accepted"
            elif closest != person:
                why = "the closest is someone else, and farther than the threshold"
            else:
                why = "the right person, but farther than the threshold"
            row["misses"].append({"photo": str(path), "got": closest if dist <= threshold else None,
                                  "closest": closest, "distance": dist, "threshold": threshold, "why": why})
    for path, reason in val.skipped:
        row = per_person[_person_of(path)]
        row["total"] += 1
        row["misses"].append({"photo": str(path), "got": None, "closest": None, "distance": None,
                              "threshold": threshold, "why": reason})
    identified = sum(r["identified"] for r in per_person.values())
    total = sum(r["total"] for r in per_person.values())
    both_labels = train.labels + val.labels
    eer = equal_error_rate(*pair_distances(np.concatenate([train.encodings, val.encodings]), both_labels))
    return {
        "identified": identified, "total": total, "top1": top1, "encoded": len(val.labels),
        "per_person": per_person, "pair_eer": {"rate": eer.far, "threshold": eer.threshold},
        "pixel_baseline": _pixel_baseline(train, val),
        "open_set": _open_set_check(train, val, threshold=threshold),
        "enrolled": {"people": len(database), "photos": len(train.labels),
                     "skipped": _skipped(train.skipped)},
        "skipped": _skipped(val.skipped),
    }


def _person_of(path: Path) -> str:
    return Path(path).parent.name


def _pixel_baseline(train: EncodedPhotos, val: EncodedPhotos) -> dict:
    train_px, val_px = pixel_features(train.crops), pixel_features(val.crops)
    predicted, _ = identify_nearest(val_px, train_px, train.labels)
    top1 = sum(p == t for p, t in zip(predicted, val.labels, strict=True))
    eer = equal_error_rate(*pair_distances(np.concatenate([train_px, val_px]), train.labels + val.labels))
    return {"method": f"the same face crops as {PIXEL_SIDE}x{PIXEL_SIDE} greyscale (0..1), flattened, L2, "
                      "nearest neighbour",
            "top1": top1, "total": len(val.labels), "pair_eer": {"rate": eer.far, "threshold": eer.threshold}}


def _open_set_check(train: EncodedPhotos, val: EncodedPhotos, *, threshold: float) -> dict:
    """Each val person in turn removed from the enrolled set, their val photos presented as strangers."""
    train_labels = np.asarray(train.labels)
    per_person = {}
    for person in _people(val.labels):
        gallery = train_labels != person
        probes = [i for i, n in enumerate(val.labels) if n == person]
        if not gallery.any():
            continue
        matched, dists = identify_nearest(val.encodings[probes], train.encodings[gallery],
                                          list(train_labels[gallery]))
        k = int(np.argmin(dists))
        per_person[person] = {"strangers": len(probes), "accepted": int(np.sum(dists <= threshold)),
                              "nearest": float(dists[k]), "nearest_is": matched[k],
                              "nearest_photo": str(val.paths[probes[k]])}
    strangers = sum(r["strangers"] for r in per_person.values())
    accepted = sum(r["accepted"] for r in per_person.values())
    smallest = min((r["nearest"] for r in per_person.values()), default=None)
    return {"strangers": strangers, "accepted": accepted, "threshold": threshold,
            "smallest_distance": smallest, "margin": None if smallest is None else smallest - threshold,
            "per_person": per_person}


def _align_name(align: bool) -> str:
    return "aligned" if align else "not_aligned"


def run_evaluate(args, env) -> int:
    root = Path(args.dir)
    train_photos = labelled_photos(root / "train")
    val_photos = labelled_photos(root / "val")
    _require_two_people([p for p, _ in train_photos], root / "train")
    model = env.face_model()
    settings = [model.align] + ([not model.align] if args.compare_align else [])
    runs = {}
    for align in settings:
        variant = dataclasses.replace(model, align=align)
        name = _align_name(align)
        train = encode_photos(variant, train_photos, label=f"train ({name})", show_progress=not env.json)
        _require_two_people(train.labels, root / "train")
        val = encode_photos(variant, val_photos, label=f"val ({name})", show_progress=not env.json)
        runs[name] = evaluation(train, val, threshold=model.threshold)
    primary = _align_name(model.align)
    record = {"command": "evaluate", "dir": str(root), "pipeline": _pipeline(model, env),
              "threshold": model.threshold, "primary": primary, "runs": runs}
    env.emit(record, _evaluation_text(record))
    result = runs[primary]
    return EXIT_OK if result["identified"] == result["total"] else EXIT_REFUSED


def _evaluation_text(r: dict) -> str:
    runs = r["runs"]
    names = list(runs)
    first = runs[names[0]]
    lines = [f"evaluate {r['dir']}: {first['enrolled']['photos']} train photos of {first['enrolled']['people']} "
             f"people enrolled, {first['total']} val photos; threshold {r['threshold']:.3f} "
             f"({_pipeline_text(r['pipeline'])})", ""]
    width = 16

    def row(label: str, cells: list[str]) -> str:
        return f"{label:<34}" + "".join(f"{c:>{width}}" for c in cells)

    lines.append(row("", [n.replace("_", " ") for n in names]))
    cells = [
        ("identified at the threshold", lambda x: f"{x['identified']}/{x['total']}"),
        *[(f"  {p}", lambda x, p=p: _person_cell(x, p)) for p in first["per_person"]],
        ("top-1 (closest, any distance)", lambda x: f"{x['top1']}/{x['encoded']}"),
        ("pair EER (at threshold)", lambda x: f"{_pct(x['pair_eer']['rate'])} ({x['pair_eer']['threshold']:.3f})"),
        ("pixel baseline top-1", lambda x: f"{x['pixel_baseline']['top1']}/{x['pixel_baseline']['total']}"),
        ("pixel baseline pair EER", lambda x: _pct(x["pixel_baseline"]["pair_eer"]["rate"])),
        ("open set: strangers let in", lambda x: f"{x['open_set']['accepted']}/{x['open_set']['strangers']}"),
        ("open set: nearest (margin)", lambda x: _margin_cell(x["open_set"])),
    ]
    for label, cell in cells:
        lines.append(row(label, [cell(runs[n]) for n in names]))
    lines.append("")
    lines.append(f"pixel baseline: {first['pixel_baseline']['method']}.")
    lines.append("open set: each person removed from the enrolled set in turn, their val photos presented as "
                 "strangers; margin = nearest stranger distance - threshold (positive: all refused).")
    for n in names:
        misses = [m for p in runs[n]["per_person"].values() for m in p["misses"]]
        skipped = runs[n]["enrolled"]["skipped"]
        label = n.replace("_", " ")
        if skipped:
            lines.append(f"train photos not enrolled ({label}): "
                         + "; ".join(f"{s['photo']}: {s['reason']}" for s in skipped))
        if not misses:
            lines.append(f"misses ({label}): none")
            continue
        lines.append(f"misses ({label}):")
        for m in misses:
            if m["distance"] is None:
                lines.append(f"  {m['photo']}: {m['why']}")
            else:
                got = m["got"] if m["got"] is not None else "not in the database"
                lines.append(f"  {m['photo']}: got {got} (closest {m['closest']} at {m['distance']:.3f}, "
                             f"threshold {m['threshold']:.3f}): {m['why']}")
    return "\n".join(lines)


def _person_cell(run: dict, person: str) -> str:
    p = run["per_person"].get(person)
    return "-" if p is None else f"{p['identified']}/{p['total']}"


def _margin_cell(open_set: dict) -> str:
    if open_set["smallest_distance"] is None:
        return "-"
    return f"{open_set['smallest_distance']:.4f} ({open_set['margin']:+.4f})"
