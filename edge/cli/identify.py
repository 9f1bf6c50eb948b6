"""``facegate identify PHOTO...``: who is in each photo? (1:K against everyone enrolled)"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv, worst
from edge.errors import ExitCode, FacegateError, NoFaceError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    i = sub.add_parser("identify", help="who is in each photo? (1:K against everyone enrolled)",
                       description="For each photo: the closest enrolled person (their template: the mean of "
                       "their encodings) and the distance, or 'not in the database' when it is farther than the "
                       "1:N threshold in force (derived for --target-fpir at the number enrolled, see 'facegate "
                       "people list'). Several faces: the largest, or every face with --all-faces.")
    i.add_argument("photos", nargs="+", type=Path)
    i.add_argument("--all-faces", action="store_true", help="report every face of a photo, not the largest")
    i.set_defaults(func=run)
    return i


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.core.gallery import nearest

    model = env.face_model()
    gallery = env.open_set()
    threshold = gallery.threshold
    codes = []
    for photo in args.photos:
        try:
            if args.all_faces:
                found = [(f.box, e) for f, e in model.encode_faces(photo)]
            else:
                analysis = model.analyse(photo)  # matched below, once per face
                found = [] if analysis.encoding is None else [(None, analysis.encoding)]
            if not found:
                raise NoFaceError("no face found")
        except FacegateError as exc:
            env.emit({"photo": str(photo), "identity": None, "error": str(exc)}, f"{photo}: error: {exc}")
            codes.append(ExitCode.ERROR)
            continue
        for box, encoding in found:
            dist, closest = nearest(encoding, *gallery.matrix())
            identity = closest if gallery.accepts(dist) else None
            record = {"photo": str(photo), "identity": identity, "distance": round(dist, 4),
                      "threshold": threshold.value, "threshold_source": threshold.source, "closest": closest}
            if box is not None:
                record["box"] = [round(float(v), 1) for v in box]
            shown = identity if identity is not None else "not in the database"
            env.emit(record, f"{photo}: {shown} (distance {dist:.3f}, {threshold.describe()})")
            codes.append(ExitCode.OK if identity is not None else ExitCode.REFUSED)
    return worst(codes)
