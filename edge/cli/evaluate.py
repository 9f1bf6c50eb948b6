"""``facegate evaluate DIR``: identify ``DIR/val`` against ``DIR/train``, beside the pixel baseline and strangers.

Both sets go through the door's face pipeline; the measurements are :mod:`edge.eval.evaluation`'s. Exit 0 when
every val photo is identified with the options given, 3 otherwise.

With ``--strangers SDIR`` it also measures the door's own 1:N rule (one template per person, the threshold in force
for ``--target-fpir``, or ``--threshold``) against the photos of SDIR, each of one person nobody enrolled: FPIR and
FNIR with exact 95% intervals, and FNIR at thresholds chosen on those strangers; ``--plots`` draws its DET curve.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from edge.cli.context import CliEnv
from edge.cli.measure_text import encode_photos, pct, pipeline_record, pipeline_text
from edge.errors import ExitCode, FacegateError

DEFAULT_PLOTS_DIR = Path("evaluation")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    e.add_argument("--strangers", type=Path, metavar="SDIR",
                   help="photos of people nobody enrolled (every image under SDIR, one stranger a photo): the "
                   "door's 1:N rule (DIR/train enrolled as templates, the threshold for --target-fpir, or "
                   "--threshold) measured as FPIR (strangers let in) and FNIR (DIR/val photos not identified), "
                   "with 95%% intervals, at the --no-align setting; the exit code is unchanged")
    e.add_argument("--plots", type=Path, nargs="?", const=DEFAULT_PLOTS_DIR, default=None, metavar="OUTDIR",
                   help="with --strangers: write det.png (FNIR against FPIR) into OUTDIR (created if needed; "
                   f"without a value: ./{DEFAULT_PLOTS_DIR}/). Default: no plots")
    e.set_defaults(func=run)
    return e


def _align_name(align: bool) -> str:
    return "aligned" if align else "not_aligned"



def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.eval.evaluation import evaluation
    from edge.eval.photos import labelled_photos, require_two_people

    root = Path(args.dir)
    stranger_photos = _stranger_photos(args)
    train_photos = labelled_photos(root / "train")
    val_photos = labelled_photos(root / "val")
    require_two_people([p for p, _ in train_photos], root / "train")
    model = env.face_model()
    strangers = None
    if stranger_photos is not None:
        strangers = encode_photos(model, stranger_photos, label="strangers", show_progress=not env.json)
        if not strangers.labels:
            raise FacegateError(f"{args.strangers}: none of the {len(stranger_photos)} photos shows a face the "
                                "detector finds: no stranger to measure")
    settings = [model.align] + ([not model.align] if args.compare_align else [])
    runs = {}
    open_set = None
    for align in settings:
        variant = dataclasses.replace(model, align=align)
        name = _align_name(align)
        train = encode_photos(variant, train_photos, label=f"train ({name})", show_progress=not env.json)
        require_two_people(train.labels, root / "train")
        val = encode_photos(variant, val_photos, label=f"val ({name})", show_progress=not env.json)
        runs[name] = evaluation(train, val, threshold=model.threshold)
        if strangers is not None and align == model.align:
            open_set = _strangers_run(args, variant, train, val, strangers)
    primary = _align_name(model.align)
    record = {"command": "evaluate", "dir": str(root), "pipeline": pipeline_record(model, env),
              "threshold": model.threshold, "primary": primary, "runs": runs}
    text = _evaluation_text(record)
    if open_set is not None:
        report, distances = open_set
        record["strangers"] = report
        record["plots"] = None
        if args.plots is not None:
            from edge.eval.plots import evaluation_plots

            record["plots"] = {k: str(v) for k, v in evaluation_plots(args.plots, distances, report).items()}
        text += "\n\n" + _strangers_text(record)
    env.emit(record, text)
    result = runs[primary]
    return ExitCode.OK if result["identified"] == result["total"] else ExitCode.REFUSED



def _stranger_photos(args: argparse.Namespace) -> list | None:
    """``(name, path)`` of every image under ``--strangers`` (its file name as the name), checked before any
    encoding, as are ``--plots`` (matplotlib) and ``--target-fpir``; ``None`` without ``--strangers``."""
    from edge.eval.photos import image_files

    if args.strangers is None:
        if args.plots is not None:
            raise FacegateError("--plots draws the DET curve of --strangers: give --strangers SDIR too")
        return None
    if not 0 < args.target_fpir < 0.2:
        raise FacegateError(f"--target-fpir must be above 0 and below 0.2, got {args.target_fpir}")
    if args.plots is not None:
        from edge.eval.plots import require_matplotlib

        require_matplotlib()  # before minutes of encoding, not after
    return [(path.stem, path) for path in image_files(args.strangers)]



def _strangers_run(args: argparse.Namespace, model: Any, train: Any, val: Any, strangers: Any) -> tuple[dict, dict]:
    """DIR/train enrolled as the door enrols (templates, the threshold in force), then the strangers and val."""
    from edge.eval.evaluation import enrolled_database, stranger_evaluation

    gallery = model.open_set(enrolled_database(train), target_fpir=args.target_fpir, override=args.threshold)
    report, distances = stranger_evaluation(gallery, val, strangers)
    report["dir"] = str(args.strangers)
    report["align"] = model.align
    return report, distances



def _evaluation_text(r: dict) -> str:
    runs = r["runs"]
    names = list(runs)
    first = runs[names[0]]
    lines = [f"evaluate {r['dir']}: {first['enrolled']['photos']} train photos of {first['enrolled']['people']} "
             f"people enrolled, {first['total']} val photos; threshold {r['threshold']:.3f} "
             f"({pipeline_text(r['pipeline'])})", ""]
    width = 16

    def row(label: str, cells: list[str]) -> str:
        return f"{label:<34}" + "".join(f"{c:>{width}}" for c in cells)

    lines.append(row("", [n.replace("_", " ") for n in names]))
    cells = [
        ("identified at the threshold", lambda x: f"{x['identified']}/{x['total']}"),
        *[(f"  {p}", lambda x, p=p: _person_cell(x, p)) for p in first["per_person"]],
        ("top-1 (closest, any distance)", lambda x: f"{x['top1']}/{x['encoded']}"),
        ("pair EER (at threshold)", lambda x: f"{pct(x['pair_eer']['rate'])} ({x['pair_eer']['threshold']:.3f})"),
        ("pixel baseline top-1", lambda x: f"{x['pixel_baseline']['top1']}/{x['pixel_baseline']['total']}"),
        ("pixel baseline pair EER", lambda x: pct(x["pixel_baseline"]["pair_eer"]["rate"])),
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



def _rate_text(r: dict) -> str:
    """``3/302 = 0.99% (95% CI 0.21%-2.88%)``."""
    low, high = r["interval"]
    rate = "-" if r["rate"] is None else f"{100 * r['rate']:.2f}%"
    return (f"{r['count']}/{r['total']} = {rate} ({100 * r['confidence']:g}% CI {100 * low:.2f}%-"
            f"{100 * high:.2f}%)")



def _strangers_text(r: dict) -> str:
    s = r["strangers"]
    t, fpir, fnir = s["threshold"], s["fpir"], s["fnir"]
    counts = s["strangers"]
    lines = [f"strangers {s['dir']}: {counts['photos']} photos, {counts['with_face']} with a face "
             f"({counts['no_face']} without); the door's rule ({'aligned' if s['align'] else 'not aligned'}): "
             f"{s['people']} people enrolled as {s['templates']} templates, {s['genuine']['photos']} val photos "
             "of them"
             + (f" ({s['genuine']['not_enrolled']} val photos of people not enrolled left out)"
                if s["genuine"]["not_enrolled"] else ""),
             f"  {t['text']}",
             f"  FPIR {_rate_text(fpir)}: strangers let in",
             f"  FNIR {_rate_text(fnir)}: val photos not identified as themselves ({fnir['wrong_person']} as "
             f"someone else, {fnir['farther']} farther than the threshold, {fnir['no_face']} without a face)",
             f"  note: {s['note']}", "",
             "thresholds chosen on these strangers (measured on the strangers, not what the door uses):",
             f"  {'FPIR target':>11}  {'threshold':>9}  {'FPIR':>13}  FNIR"]
    for m in s["at_fpir"]:
        got = m["fpir"]
        lines.append(f"  {100 * m['target']:>10g}%  {m['threshold']:>9.3f}  "
                     f"{got['count']:>4}/{got['total']:<4} {100 * got['rate']:>4.2f}%  {_rate_text(m['fnir'])}"
                     + ("" if m["resolvable"] else f"  (below 1/{got['total']}: none let in)"))
    for x in s["let_in"]:
        lines.append(f"let in: {x['photo']} as {x['as']} at {x['distance']:.3f}")
    for m in s["misses"]:
        if m["why"] == "no_face":
            lines.append(f"not identified: {m['photo']}: {m['reason']}")
        else:
            what = (f"as {m['closest']}" if m["why"] == "wrong_person"
                    else f"farther than the threshold (closest {m['closest']})")
            lines.append(f"not identified: {m['photo']}: {what} at {m['distance']:.3f}")
    for x in counts["skipped"]:
        lines.append(f"stranger without a face: {x['photo']}: {x['reason']}")
    if r.get("plots"):
        lines.append("plots: " + ", ".join(r["plots"].values()))
    return "\n".join(lines)

