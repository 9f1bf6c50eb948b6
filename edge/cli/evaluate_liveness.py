"""``facegate evaluate-liveness DIR``: APCER and BPCER (ISO/IEC 30107-3) on the door's own labelled photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv
from edge.cli.liveness import add_liveness_options, open_liveness, score_photo
from edge.errors import ExitCode, FacegateError, ImageError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate-liveness", help="APCER and BPCER on labelled live/ and attack/ photos",
                       description="DIR holds live/ (real people in front of the door's camera) and attack/ "
                       "(prints, screens, ... held up to it), images anywhere below each. Prints the share of "
                       "attacks accepted (APCER) and of live faces rejected (BPCER) at the threshold, each with its "
                       "95%% interval, and the threshold that keeps BPCER at or below --target-bpcer: put it in "
                       "[liveness] threshold.")
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--target-bpcer", type=float, default=0.05, metavar="RATE",
                   help="share of live faces the door may refuse, 0..1 (default %(default)s = 5%%)")
    p.add_argument("--list", action="store_true", help="also print every photo's score")
    add_liveness_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.eval.liveness_eval import ScoredPhoto, pad_rates
    from edge.eval.photos import image_files

    if not 0.0 <= args.target_bpcer < 1.0:
        raise FacegateError(f"--target-bpcer must be within 0..1, got {args.target_bpcer}")
    folders = {label: args.folder / label for label in ("live", "attack")}
    missing = [str(f) for f in folders.values() if not f.is_dir()]
    if missing:
        raise ImageError(f"{args.folder} needs live/ and attack/ sub-folders; missing: {', '.join(missing)}")
    pipeline, model = open_liveness(args)
    scored = []
    for label, folder in folders.items():
        for photo in image_files(folder):
            try:
                _, score = score_photo(pipeline, model, photo)
                scored.append(ScoredPhoto(photo, label, score.live))
            except FacegateError as exc:
                scored.append(ScoredPhoto(photo, label, None, str(exc)))
            if args.list:
                item = scored[-1]
                env.emit({"photo": str(photo), "label": label, "score": item.score, "error": item.error},
                         f"{photo}: {label}: " + (f"score {item.score:.3f}" if item.score is not None
                                                  else f"no score ({item.error})"))
    rates = pad_rates(scored, threshold=model.threshold, target_bpcer=args.target_bpcer)
    env.emit(rates, _text(rates))
    return ExitCode.OK


def _rate(record: dict) -> str:
    if record["rate"] is None:
        return "n/a (none)"
    low, high = record["interval"]
    return f"{record['rate']:.1%} ({record['count']}/{record['total']}; 95% interval {low:.1%}-{high:.1%})"


def _text(r: dict) -> str:
    lines = [f"{r['live']} live and {r['attack']} attack photos with a face "
             f"(no face: {r['no_face']['live']} live, {r['no_face']['attack']} attack)",
             f"at threshold {r['threshold']:.3f}: APCER {_rate(r['apcer'])}, BPCER {_rate(r['bpcer'])}"]
    chosen = r.get("threshold_for_target")
    if chosen is not None:
        lines.append(f"for BPCER <= {r['target_bpcer']:.1%}: threshold {chosen['value']:.3f}, "
                     f"APCER {_rate(chosen['apcer'])}, BPCER {_rate(chosen['bpcer'])}")
    lines.append("these are rates on these photos only: a few photos cannot show a low rate (see the intervals)")
    return "\n".join(lines)
