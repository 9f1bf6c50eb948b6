"""``facegate evaluate DIR``: identify ``DIR/val`` against ``DIR/train``, beside the pixel baseline and strangers.

Both sets go through the door's face pipeline; the measurements are :mod:`edge.eval.evaluation`'s. Exit 0 when
every val photo is identified with the options given, 3 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from edge.cli.context import CliEnv
from edge.cli.measure_text import encode_photos, pct, pipeline_record, pipeline_text
from edge.errors import ExitCode


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
    e.set_defaults(func=run)
    return e


def _align_name(align: bool) -> str:
    return "aligned" if align else "not_aligned"



def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.eval.evaluation import evaluation
    from edge.eval.photos import labelled_photos, require_two_people

    root = Path(args.dir)
    train_photos = labelled_photos(root / "train")
    val_photos = labelled_photos(root / "val")
    require_two_people([p for p, _ in train_photos], root / "train")
    model = env.face_model()
    settings = [model.align] + ([not model.align] if args.compare_align else [])
    runs = {}
    for align in settings:
        variant = dataclasses.replace(model, align=align)
        name = _align_name(align)
        train = encode_photos(variant, train_photos, label=f"train ({name})", show_progress=not env.json)
        require_two_people(train.labels, root / "train")
        val = encode_photos(variant, val_photos, label=f"val ({name})", show_progress=not env.json)
        runs[name] = evaluation(train, val, threshold=model.threshold)
    primary = _align_name(model.align)
    record = {"command": "evaluate", "dir": str(root), "pipeline": pipeline_record(model, env),
              "threshold": model.threshold, "primary": primary, "runs": runs}
    env.emit(record, _evaluation_text(record))
    result = runs[primary]
    return ExitCode.OK if result["identified"] == result["total"] else ExitCode.REFUSED



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

