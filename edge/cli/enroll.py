"""``facegate enroll NAME PHOTO...``: add a person's photos to the store, each through the quality gate."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv
from edge.core.quality import MIN_FACE_PX, MIN_SHARPNESS
from edge.errors import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    e = sub.add_parser("enroll", help="add a person's photos to the store (quality-checked)",
                       description="Encode each photo's face and store it under NAME. Each photo must show "
                       "exactly one face, large and sharp enough; a rejected photo is named with the reason.")
    e.add_argument("name", help="the person's name as the door will report it")
    e.add_argument("photos", nargs="+", type=Path, help="photos of the person (several: lighting, days)")
    e.add_argument("--force", action="store_true", help="accept photos that fail the size, sharpness or "
                   "one-face checks (a photo with no face is never accepted)")
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
    for source, reason in result.rejected:
        env.emit({"photo": source, "name": result.name, "added": False, "reason": reason},
                 f"rejected {source}: {reason}")
    for source, row in result.added:
        env.emit({"photo": source, "name": result.name, "added": True, "id": row}, f"added    {source}")
    if not env.json:
        total = len(store.encodings(result.name)) if result.added else 0
        print(f"{result.name}: {len(result.added)} photo(s) added, {len(result.rejected)} rejected"
              + (f"; {total} encoding(s) stored" if result.added else ""), file=env.stdout)
    return ExitCode.REFUSED if result.rejected else ExitCode.OK
