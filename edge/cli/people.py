"""``facegate people list|remove|rename|export|import``: who the door knows; ``groups|validity|disable|enable|badge|
unbadge|show``: their access data (:mod:`edge.cli.people_access`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli import people_access
from edge.cli.context import CliEnv
from edge.errors import ExitCode, FacegateError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("people", help="list, remove, rename, export or import enrolled people; their access data")
    p.add_argument("action", choices=("list", "remove", "rename", "export", "import", *people_access.ACTIONS))
    p.add_argument("operands", nargs="*", help="remove NAME | rename OLD NEW | export FILE | import FILE | "
                   + " | ".join(people_access.ACTIONS.values()))
    p.add_argument("--replace", action="store_true", help="import: replace people that exist already")
    people_access.add_options(p)
    p.set_defaults(func=run)
    return p


def _operands(args: argparse.Namespace, count: int, usage: str) -> list[str]:
    if len(args.operands) != count:
        raise FacegateError(f"usage: facegate people {usage}")
    return args.operands


def run(args: argparse.Namespace, env: CliEnv) -> int:
    action = args.action
    if action == "import":
        (path,) = _operands(args, 1, "import FILE")
        count = env.store(create=True).import_(Path(path), replace=args.replace)
        env.emit({"imported": count, "file": path}, f"imported {count} encoding(s) from {path}")
        return ExitCode.OK
    if action in people_access.ACTIONS:
        return people_access.run(action, args.operands, args, env)
    store = env.store()
    if action == "list":
        _operands(args, 0, "list")
        people = store.people()
        access = store.access.snapshot()
        for person in people:
            record, text = people_access.describe(access.person(person.name), access.badges_of(person.name))
            env.emit({"name": person.name, "encodings": person.encodings, "added": person.added,
                      "updated": person.updated, **record},
                     f"{person.name:30s} {person.encodings:3d} encoding(s)  added {person.added}  {text}")
        threshold = env.open_set().threshold
        if env.json:
            env.emit({"people": len(people), "model": store.model_sha256, "threshold": threshold.as_dict()}, "")
        else:
            print(f"{len(people)} people, model {store.model_sha256[:12]}; 1:N {threshold.describe()}",
                  file=env.stdout)
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
    return ExitCode.OK
