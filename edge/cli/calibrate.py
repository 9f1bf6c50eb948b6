"""``facegate calibrate DIR``: which threshold? False accepts and rejects on labelled photos, and the one to ship.

Every photo in ``DIR/<person>/`` goes through the door's face pipeline (the model in use: variant, detector,
margin, alignment); the statistics are :mod:`edge.eval.calibration`'s, the charts :mod:`edge.eval.plots`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv
from edge.cli.measure_text import encode_photos, pct, pipeline_record, pipeline_text
from edge.errors import ExitCode

DEFAULT_PLOTS_DIR = Path("calibration")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    c.set_defaults(func=run)

    return c


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction 0 <= x < 1 (0.001 = 0.1%), got {text}")
    return value



def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.eval.calibration import calibration
    from edge.eval.photos import labelled_photos, require_two_people, skipped_records

    if args.plots is not None:
        from edge.eval.plots import require_matplotlib

        require_matplotlib()  # before minutes of encoding, not after
    photos = labelled_photos(args.dir)
    require_two_people([person for person, _ in photos], args.dir)
    model = env.face_model()
    encoded = encode_photos(model, photos, label="calibrate", show_progress=not env.json)
    require_two_people(encoded.labels, args.dir)
    report, distances = calibration(encoded.vectors, encoded.labels, target_far=args.target_far,
                                    current_threshold=model.threshold)
    record = {"command": "calibrate", "dir": str(args.dir), "pipeline": pipeline_record(model, env),
              "skipped": skipped_records(encoded.skipped), **report, "plots": None}
    if args.plots is not None:
        record["plots"] = {name: str(path) for name, path in
                           write_plots(args.plots, distances, report).items()}
    env.emit(record, _calibration_text(record))
    return ExitCode.OK



def _calibration_text(r: dict) -> str:
    lines = [f"calibrate {r['dir']}: {r['photos']} photos of {r['people']} people encoded, "
             f"{len(r['skipped'])} skipped ({pipeline_text(r['pipeline'])})"]
    lines += [f"  skipped {s['photo']}: {s['reason']}" for s in r["skipped"]]
    lines.append(f"pairs: {r['pairs']['genuine']} genuine, {r['pairs']['impostor']} impostor; open set: "
                 f"{r['open_set']['strangers']} strangers (each photo against everyone else's photos), "
                 f"{r['open_set']['genuine']} with another photo of the same person")
    lines.append("")
    lines.append(f"{'threshold':>9}  {'pair FAR':>8}  {'pair FRR':>8}  {'strangers in':>12}  "
                 f"{'genuine out':>11}")
    for row in r["table"]:
        lines.append(f"{row['threshold']:>9.3f}  {pct(row['pair_far']):>8}  {pct(row['pair_frr']):>8}  "
                     f"{pct(row['stranger_acceptance']):>12}  {pct(row['genuine_rejection']):>11}"
                     + (f"  <- {row['mark']}" if row["mark"] else ""))
    lines.append("(accept if distance < threshold; 'strangers in' / 'genuine out': open set, the door's view)")
    lines.append("")
    rec = r["recommended"]
    lines.append(f"pair EER: {pct(r['pair_eer']['rate'])} at threshold {r['pair_eer']['threshold']:.3f}")
    lines.append(f"recommended threshold: {rec['threshold']:.3f}: lets in {pct(rec['stranger_acceptance'])} of "
                 f"strangers (target {pct(r['target_far'])}), turns away {pct(rec['genuine_rejection'])} of "
                 f"genuine photos (pair FAR {pct(rec['pair_far'])}, pair FRR {pct(rec['pair_frr'])})")
    if r["note"]:
        lines.append(f"note: {r['note']}")
    if r["current_threshold"] is not None:
        lines.append(f"threshold in use now: {r['current_threshold']:.3f} (--threshold, or the model's card)")
    if r["plots"]:
        lines.append("plots: " + ", ".join(r["plots"].values()))
    return "\n".join(lines)



def write_plots(outdir: Path, distances: dict, report: dict) -> dict[str, Path]:
    """``roc.png`` and ``distances.png`` in ``outdir`` (needs matplotlib: the error says how to get it)."""
    from edge.eval import plots
    from edge.eval.calibration import COURSE_THRESHOLD

    return plots.calibration_plots(outdir, distances, report, course_threshold=COURSE_THRESHOLD)
