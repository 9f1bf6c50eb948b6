"""``facegate enroll`` and ``facegate people list|remove|rename|export|import``: who the door knows."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli import EXIT_OK, EXIT_REFUSED
from edge.enrol import MIN_FACE_PX, MIN_SHARPNESS, enrol
from edge.progress import Progress


def add_parsers(sub) -> list[argparse.ArgumentParser]:
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
    e.set_defaults(func=run_enroll)

    p = sub.add_parser("people", help="list, remove, rename, export or import enrolled people")
    p.add_argument("action", choices=("list", "remove", "rename", "export", "import"))
    p.add_argument("operands", nargs="*", help="remove NAME | rename OLD NEW | export FILE | import FILE")
    p.add_argument("--replace", action="store_true", help="import: replace people that exist already")
    p.set_defaults(func=run_people)
    return [e, p]


def run_enroll(args, env) -> int:
    model = env.face_model()
    store = env.store(create=True)
    with Progress(len(args.photos), f"enrolling {args.name}", enabled=not env.json) as bar:
        result = enrol(store, args.name, args.photos, model, force=args.force, min_face_px=args.min_face,
                       min_sharpness=args.min_sharpness, progress=bar)
    for source, reason in result.rejected:
        env.emit({"photo": source, "name": args.name, "added": False, "reason": reason},
                 f"rejected {source}: {reason}")
    for source, row in result.added:
        env.emit({"photo": source, "name": args.name, "added": True, "id": row}, f"added    {source}")
    if not env.json:
        total = len(store.encodings(args.name)) if result.added else 0
        print(f"{args.name}: {len(result.added)} photo(s) added, {len(result.rejected)} rejected"
              + (f"; {total} encoding(s) stored" if result.added else ""), file=env.stdout)
    return EXIT_REFUSED if result.rejected else EXIT_OK


def _operands(args, count: int, usage: str) -> list[str]:
    if len(args.operands) != count:
        from edge.errors import FacegateError

        raise FacegateError(f"usage: facegate people {usage}")
    return args.operands


def run_people(args, env) -> int:
    action = args.action
    if action == "import":
        (path,) = _operands(args, 1, "import FILE")
        count = env.store(create=True).import_(Path(path), replace=args.replace)
        env.emit({"imported": count, "file": path}, f"imported {count} encoding(s) from {path}")
        return EXIT_OK
    store = env.store()
    if action == "list":
        _operands(args, 0, "list")
        people = store.people()
        for person in people:
            env.emit({"name": person.name, "encodings": person.encodings, "added": person.added,
                      "updated": person.updated},
                     f"{person.name:30s} {person.encodings:3d} encoding(s)  added {person.added}")
        if not env.json:
            print(f"{len(people)} people, model {store.model_sha256[:12]}", file=env.stdout)
    elif action == "remove":
        (name,) = _operands(args, 1, "remove NAME")
        removed = store.remove(name)
        env.emit({"removed": name, "encodings": removed}, f"removed {name} ({removed} encoding(s))")
    elif action == "rename":
        old, new = _operands(args, 2, "rename OLD NEW")
        store.rename(old, new)
        env.emit({"renamed": old, "to": new}, f"renamed {old} to {new}")
    elif action == "export":
        (path,) = _operands(args, 1, "export FILE")
        count = store.export(Path(path))
        env.emit({"exported": count, "file": path}, f"exported {count} encoding(s) to {path}")
    return EXIT_OK
