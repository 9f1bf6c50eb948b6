"""``facegate identify`` (1:K, who is this?) and ``facegate verify`` (1:1, is this NAME?)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli import EXIT_ERROR, EXIT_OK, EXIT_REFUSED
from edge.errors import FacegateError
from edge.recognition import database_matrix, img_to_encoding, nearest, verify


def add_parsers(sub) -> list[argparse.ArgumentParser]:
    i = sub.add_parser("identify", help="who is in each photo? (1:K against everyone enrolled)",
                       description="For each photo: the closest enrolled person and the distance, or 'not in "
                       "the database' when the closest is farther than the threshold. Several faces: the "
                       "largest, or every face with --all-faces.")
    i.add_argument("photos", nargs="+", type=Path)
    i.add_argument("--all-faces", action="store_true", help="report every face of a photo, not the largest")
    i.set_defaults(func=run_identify)

    v = sub.add_parser("verify", help="is the person in each photo NAME? (1:1)",
                       description="The distance between the photo's largest face and NAME's closest stored "
                       "encoding; accepted when it is below the threshold.")
    v.add_argument("--name", required=True, help="the claimed identity")
    v.add_argument("photos", nargs="+", type=Path)
    v.set_defaults(func=run_verify)
    return [i, v]


def _worst(codes: list[int]) -> int:
    """Errors outrank refusals, refusals outrank success."""
    for code in (EXIT_ERROR, EXIT_REFUSED):
        if code in codes:
            return code
    return EXIT_OK


def run_identify(args, env) -> int:
    model = env.face_model()
    names, matrix = database_matrix(env.store())
    threshold = model.threshold
    codes = []
    for photo in args.photos:
        try:
            if args.all_faces:
                found = [(f.box, e) for f, e in model.encode_faces(photo)]
                if not found:
                    raise FacegateError("no face found")
            else:
                found = [(None, img_to_encoding(photo, model))]
        except FacegateError as exc:
            env.emit({"photo": str(photo), "identity": None, "error": str(exc)}, f"{photo}: error: {exc}")
            codes.append(EXIT_ERROR)
            continue
        for box, encoding in found:
            dist, closest = nearest(encoding, names, matrix)
            identity = closest if dist <= threshold else None
            record = {"photo": str(photo), "identity": identity, "distance": round(dist, 4),
                      "threshold": threshold, "closest": closest}
            if box is not None:
                record["box"] = [round(float(v), 1) for v in box]
            shown = identity if identity is not None else "not in the database"
            env.emit(record, f"{photo}: {shown} (distance {dist:.3f}, threshold {threshold:.3f})")
            codes.append(EXIT_OK if identity is not None else EXIT_REFUSED)
    return _worst(codes)


def run_verify(args, env) -> int:
    model = env.face_model()
    store = env.store()
    if args.name not in set(database_matrix(store)[0]):
        raise FacegateError(f"{args.name!r} is not enrolled")
    codes = []
    for photo in args.photos:
        try:
            dist, accepted = verify(photo, args.name, store, model)
        except FacegateError as exc:
            env.emit({"photo": str(photo), "name": args.name, "error": str(exc)}, f"{photo}: error: {exc}")
            codes.append(EXIT_ERROR)
            continue
        env.emit({"photo": str(photo), "name": args.name, "identity": args.name if accepted else None,
                  "distance": round(dist, 4), "threshold": model.threshold, "accepted": accepted},
                 f"{photo}: {'accepted' if accepted else 'refused'} as {args.name} "
                 f"(distance {dist:.3f}, threshold {model.threshold:.3f})")
        codes.append(EXIT_OK if accepted else EXIT_REFUSED)
    return _worst(codes)
