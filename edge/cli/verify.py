"""``facegate verify --name NAME PHOTO...``: is the person in each photo NAME? (1:1)"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv, worst
from edge.errors import ExitCode, FacegateError, UnknownPersonError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    v = sub.add_parser("verify", help="is the person in each photo NAME? (1:1)",
                       description="The distance between the photo's largest face and NAME's closest stored "
                       "encoding; accepted when it is below the threshold.")
    v.add_argument("--name", required=True, help="the claimed identity")
    v.add_argument("photos", nargs="+", type=Path)
    v.set_defaults(func=run)
    return v


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.core.gallery import Gallery
    from edge.core.names import check_name
    from edge.core.recognition import verify

    model = env.face_model()
    person = env.store().person(check_name(args.name))  # found by name key: case, spaces, Unicode form
    if person is None:
        raise UnknownPersonError(f"{check_name(args.name)!r} is not enrolled")
    name = person.name
    gallery = Gallery.of(env.store())
    codes = []
    for photo in args.photos:
        try:
            dist, accepted = verify(photo, name, gallery, model)
        except FacegateError as exc:
            env.emit({"photo": str(photo), "name": name, "error": str(exc)}, f"{photo}: error: {exc}")
            codes.append(ExitCode.ERROR)
            continue
        env.emit({"photo": str(photo), "name": name, "identity": name if accepted else None,
                  "distance": round(dist, 4), "threshold": model.threshold, "accepted": accepted},
                 f"{photo}: {'accepted' if accepted else 'refused'} as {name} "
                 f"(distance {dist:.3f}, threshold {model.threshold:.3f})")
        codes.append(ExitCode.OK if accepted else ExitCode.REFUSED)
    return worst(codes)
