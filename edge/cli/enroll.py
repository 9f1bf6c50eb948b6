"""``facegate enroll NAME PHOTO...``: add a person's photos to the store, each through the quality gate and the
identity checks (:mod:`edge.storage.enrolment`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli.context import CliEnv
from edge.core.quality import MIN_FACE_PX, MIN_SHARPNESS
from edge.errors import ExitCode

if TYPE_CHECKING:
    from edge.storage.enrolment import EnrolResult


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    e = sub.add_parser("enroll", help="add a person's photos to the store (quality-checked)",
                       description="Encode each photo's face and store it under NAME. Each photo must show "
                       "exactly one face, large and sharp enough, and look like NAME: like their stored photos if "
                       "NAME is enrolled (case, white space and Unicode form do not matter), else like the other "
                       "photos given and like nobody enrolled. A rejected photo is named with the reason.")
    e.add_argument("name", help="the person's name as the door will report it (an enrolled person's name in "
                   "another case or spacing adds to them)")
    e.add_argument("photos", nargs="+", type=Path, help="photos of the person (several: lighting, days)")
    e.add_argument("--force", action="store_true", help="accept photos that fail the size, sharpness, one-face "
                   "or identity checks, each reported (a photo with no face is never accepted)")
    e.add_argument("--min-face", type=float, default=MIN_FACE_PX, help="smallest face side in pixels "
                   "(default %(default)s)")
    e.add_argument("--min-sharpness", type=float, default=MIN_SHARPNESS,
                   help="smallest Laplacian variance of the face crop (default %(default)s)")
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.eval.progress import Progress
    from edge.storage.enrolment import enrol

    model = env.face_model()
    store = env.store(create=True)
    with Progress(len(args.photos), f"enrolling {args.name}", enabled=not env.json) as bar:
        result = enrol(store, args.name, args.photos, model, force=args.force, min_face_px=args.min_face,
                       min_sharpness=args.min_sharpness, progress=bar)
    if result.existing is not None and not env.json:
        print(f"adding to {result.name} ({result.existing} encoding{'' if result.existing == 1 else 's'} stored)",
              file=env.stdout)
    for source, reason in result.rejected:
        env.emit({"photo": source, "name": result.name, "added": False, "reason": reason, **_distances(result, source)},
                 f"rejected {source}: {reason}")
    forced: dict[str, list[str]] = {}
    for source, reason in result.forced:
        forced.setdefault(source, []).append(reason)
    for source, row in result.added:
        overrode = "; ".join(forced.get(source, []))
        env.emit({"photo": source, "name": result.name, "added": True, "id": row, **_distances(result, source),
                  **({"forced": overrode} if overrode else {})},
                 f"added    {source}" + (f" (--force overrode: {overrode})" if overrode else ""))
    if not env.json:
        total = len(store.encodings(result.name)) if result.added else 0
        print(f"{result.name}: {len(result.added)} photo(s) added, {len(result.rejected)} rejected"
              + (f"; {total} encoding(s) stored" if result.added else "")
              + (f"; --force overrode {len(result.forced)} check(s)" if result.forced else ""), file=env.stdout)
    return ExitCode.REFUSED if result.rejected else ExitCode.OK


def _distances(result: EnrolResult, source: str) -> dict[str, float]:
    """A photo checked against an enrolled person: its distances to them, for the JSON line."""
    if source not in result.distances:
        return {}
    nearest, template = result.distances[source]
    return {"distance": round(nearest, 4), "template_distance": round(template, 4)}
