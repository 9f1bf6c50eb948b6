"""``facegate calibrate DIR``: which threshold? False accepts and rejects on labelled photos, and the one to ship.
``facegate calibrate --site [--strangers DIR]``: the door's 1:N threshold measured on the store's own people,
stored in the store, and used by the door while those people are enrolled.

Every photo in ``DIR/<person>/`` (or under the ``--strangers`` folder) goes through the door's face pipeline (the
model in use: variant, detector, margin, alignment); the statistics are :mod:`edge.eval.calibration`'s, the
charts :mod:`edge.eval.plots`'s, the door's rule :mod:`edge.core.openset`'s.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from edge.cli.context import CliEnv
from edge.cli.measure_text import encode_photos, pct, pipeline_record, pipeline_text
from edge.errors import ExitCode, FacegateError

DEFAULT_PLOTS_DIR = Path("calibration")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    c = sub.add_parser(
        "calibrate", help="measure false accepts / rejects on labelled photos and recommend a threshold",
        description="Encode the largest face of every photo in DIR/<person>/ and measure, over a range of "
        "thresholds, the pair false-accept / false-reject rates and the open-set rates (each photo as a "
        "stranger against everyone else's photos, as the door meets an unknown visitor). Recommends the "
        "largest threshold whose open-set stranger acceptance is at most --target-far. Needs at least 2 "
        "people and one person with 2 photos. With --site instead of DIR: derive the door's 1:N threshold for "
        "--target-fpir at the number enrolled from the store's own people (each left out in turn against the "
        "others), the model's reference strangers and the faces of --strangers DIR, measure it, and store it in "
        "the store: the door uses it while exactly these people and encodings are enrolled.")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("dir", type=Path, nargs="?", metavar="DIR", help="labelled photos: DIR/<person>/*.jpg")
    what.add_argument("--site", action="store_true",
                      help="calibrate the door's 1:N threshold on the enrolled people of --store and store it there")
    c.add_argument("--strangers", type=Path, metavar="DIR", default=None,
                   help="--site: photos of local people who are not enrolled (every image under DIR, one stranger "
                   "each)")
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



class _UsageError(FacegateError):
    """Options that do not go together (exit 2, as argparse's own errors)."""

    exit_code = ExitCode.USAGE


def run(args: argparse.Namespace, env: CliEnv) -> int:
    if args.site:
        return run_site(args, env)
    if args.strangers is not None:
        raise _UsageError("--strangers DIR goes with --site (calibrate DIR takes its strangers from DIR itself)")
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


def run_site(args: argparse.Namespace, env: CliEnv) -> int:
    """``calibrate --site``: see the module docstring and :func:`edge.eval.calibration.site_calibration`."""
    from edge.eval.calibration import site_calibration
    from edge.eval.photos import image_files, skipped_records
    from edge.storage.sqlite import utc_now

    if args.plots is not None:
        raise _UsageError("--plots goes with calibrate DIR, not --site")
    if args.threshold is not None:
        raise _UsageError("--threshold and --site: a site calibration derives the threshold")
    if not 0 < args.target_fpir < 0.2:
        raise FacegateError(f"--target-fpir must be above 0 and below 0.2, got {args.target_fpir}")
    store = env.store()  # refuses a missing store and a store of another model
    names, matrix = store.matrix()
    enrolled = sorted(set(names))
    if len(enrolled) < 2:
        raise FacegateError(f"{store.path}: a site calibration needs at least 2 people enrolled (each is left out "
                            f"in turn as a stranger against the others); it has {len(enrolled)}"
                            + (f" ({', '.join(enrolled)})" if enrolled else ""))
    card = env.card()
    if card.threshold is None:
        raise FacegateError(f"{card.path.name} records no threshold: the site calibration's ceiling")
    folder, faces, skipped = None, [], []
    if args.strangers is not None:
        files = image_files(args.strangers)  # refuses a missing folder and a folder without images
        model = env.face_model()
        encoded = encode_photos(model, [(path.parent.name, path) for path in files], label="calibrate --site",
                                show_progress=not env.json)
        if not encoded.labels:
            raise FacegateError(f"{args.strangers}: no face found in any of its {len(files)} image(s): no strangers "
                                "to calibrate on")
        folder, faces, skipped = encoded.vectors, encoded.paths, encoded.skipped
    before = env.open_set().threshold
    report = site_calibration(names, matrix, reference=card.reference_strangers(), folder=folder,
                              card_threshold=float(card.threshold), target_fpir=args.target_fpir)
    stored = {key: report[key] for key in ("threshold", "target_fpir", "people", "people_key", "comparisons",
                                           "strangers", "fnir", "fpir", "group_thresholds", "decided_by")}
    stored.update(model_sha256=card.sha256, created=utc_now(), command=_site_command(args, store.path),
                  card_threshold=report["card_threshold"], note=report["note"])
    store.save_site_calibration(stored)
    after = env.open_set().threshold
    record = {"command": "calibrate --site", "store": str(store.path), "site_calibration": stored,
              "strangers_dir": None if args.strangers is None else str(args.strangers),
              "skipped": skipped_records(skipped), "notes": report["notes"],
              "folder_let_in": [{"photo": str(faces[f["index"]]), "as": f["as"], "distance": f["distance"]}
                                for f in report["folder_let_in"]],
              "before": before.as_dict(), "in_force": after.as_dict()}
    env.emit(record, _site_text(record, len(names), before.describe(), after.describe()))
    return ExitCode.OK


def _site_command(args: argparse.Namespace, store: Path) -> str:
    """The command line that makes this calibration again."""
    argv = ["facegate", "calibrate", "--site", "--store", str(store), "--target-fpir", f"{args.target_fpir:g}"]
    argv += ["--model", str(args.model)] if args.model is not None else ["--variant", args.variant]
    if args.strangers is not None:
        argv += ["--strangers", str(args.strangers)]
        argv += ["--detector", str(args.detector)] if args.detector is not None else ["--range", args.range]
        argv += [] if args.margin == 0.1 else ["--margin", f"{args.margin:g}"]
        argv += [] if args.align else ["--no-align"]
    return shlex.join(argv)


def _rate(r: dict) -> str:
    """A :func:`edge.eval.evaluation.rate_record` as ``1/305 = 0.3% (95% CI 0.0-1.8%)``."""
    if not r["total"]:
        return "0/0"
    low, high = r["interval"]
    return f"{r['count']}/{r['total']} = {pct(r['rate'])} (95% CI {pct(low)}-{pct(high)})"


def _site_text(r: dict, encodings: int, before: str, after: str) -> str:
    s = r["site_calibration"]
    groups, fpir, fnir = s["strangers"], s["fpir"], s["fnir"]
    lines = [f"calibrate --site {r['store']}: {s['people']} people, {encodings} encodings "
             f"(model {s['model_sha256'][:12]})"]
    folder = (f"{groups['folder']} faces of {r['strangers_dir']} ({len(r['skipped'])} image(s) skipped)"
              if r["strangers_dir"] else "no folder (--strangers DIR)")
    lines.append(f"strangers: {groups['reference']} reference (the model's), {groups['left_out_people']} enrolled "
                 f"encodings each against the other people's templates, {folder}")
    lines += [f"  skipped {x['photo']}: {x['reason']}" for x in r["skipped"]]
    lines.append(f"threshold {s['threshold']:.3f} for an FPIR target of {100 * s['target_fpir']:g}% at "
                 f"{s['people']} people: {s['comparisons']} stranger comparisons pooled (card "
                 f"{s['card_threshold']:.3f})" + (f"; {s['note']}" if s["note"] else ""))
    lines.append(f"strangers let in at {s['threshold']:.3f}: reference {_rate(fpir['reference'])}; left-out "
                 f"people {_rate(fpir['left_out_people'])}; folder {_rate(fpir['folder'])}; all {_rate(fpir['all'])}")
    lines += [f"  let in: {x['photo']} as {x['as']} (distance {x['distance']:.3f})" for x in r["folder_let_in"]]
    lines.append(f"enrolled turned away, leave-one-out: {_rate(fnir)}, {fnir['as_someone_else']} of them as "
                 "someone else")
    lines.append("what this data can and cannot show:")
    lines += [f"  - {note}" for note in r["notes"]]
    lines.append(f"stored in {r['store']}: the door uses it while exactly these {s['people']} people and "
                 f"{encodings} encodings are enrolled (then: facegate calibrate --site again)")
    lines.append(f"1:N before: {before}")
    lines.append(f"1:N now:    {after}")
    return "\n".join(lines)



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
