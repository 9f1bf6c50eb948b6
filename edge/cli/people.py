"""``facegate people list|remove|rename|export|import``: who the door knows."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.context import CliEnv
from edge.errors import ExitCode, FacegateError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("people", help="list, remove, rename, export or import enrolled people")
    p.add_argument("action", choices=("list", "remove", "rename", "export", "import"))
    p.add_argument("operands", nargs="*", help="remove NAME | rename OLD NEW | export FILE | import FILE")
    p.add_argument("--replace", action="store_true", help="import: replace people that exist already")
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
    store = env.store()
    if action == "list":
        _operands(args, 0, "list")
        people = store.people()
        for person in people:
            env.emit({"name": person.name, "encodings": person.encodings, "added": person.added,
                      "updated": person.updated},
                     f"{person.name:30s} {person.encodings:3d} encoding(s)  added {person.added}")
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
