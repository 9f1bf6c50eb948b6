"""``facegate check-config FILE``: validate a door config, open and switch nothing.

Beyond the file itself, the access policy is compared with the store it names (read only, never changed): a group
the policy names that nobody in the store has is a problem. A store that is not there yet is said, not refused.
With ``[liveness]`` on, its card and models must be there and match (checked by sha256, not loaded): without them
the daemon would refuse to start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.context import CliEnv
from edge.errors import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    c = sub.add_parser("check-config", help="validate a door config and exit",
                       description="Exit 0 if the config is valid; else print one line per problem "
                       "(file:line: key: reason) and exit 1. Nothing is opened or switched.")
    c.add_argument("config", type=Path)
    c.add_argument("--no-secrets", action="store_true",
                   help="do not read the MQTT password (e.g. outside systemd, where credentials are not set)")
    c.set_defaults(func=run)
    return c


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.config import validate_config

    problems = validate_config(args.config, read_secrets=not args.no_secrets)
    if not problems:
        problems = _policy_problems(args.config, env) + _liveness_problems(args.config)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return ExitCode.ERROR
    print(f"{args.config}: valid", file=env.stdout)
    return ExitCode.OK


def _policy_problems(path: Path, env: CliEnv) -> list[str]:
    """The groups of ``[access]`` that nobody in the config's store has, one ``file:line: key: reason`` each."""
    from edge.config import load_config
    from edge.config.plain import located, read_text
    from edge.config.toml_lines import key_lines
    from edge.errors import StoreError
    from edge.storage.access_data import read_groups

    config = load_config(path, read_secrets=False)
    named = config.access.named_groups()
    if not named:
        return []
    store = config.store.path
    if not store.is_file():
        print(f"{path}: note: the store {store} is not there: the groups of [access] were not compared with it",
              file=sys.stderr)
        return []
    try:
        have = read_groups(store)
    except StoreError as err:
        return [f"{path}: store.path: {err}"]
    lines = key_lines(read_text(path))
    known = ", ".join(sorted(have)) or "none"
    return [located(str(path), ["access", "groups" if ("access", "groups") in lines else "schedule"],
                    f"group {group!r} is nobody's in the store {store} (groups there: {known})", lines)
            for group in sorted(named - have)]


def _liveness_problems(path: Path) -> list[str]:
    """With ``[liveness] mode`` other than off: the card, and each model it names, there and unaltered."""
    from edge.config import load_config
    from edge.core.liveness import LIVENESS_CARD, LivenessCard
    from edge.errors import ModelError
    from edge.files import sha256_file

    config = load_config(path, read_secrets=False)
    if config.liveness.mode == "off":
        return []
    card_path = config.liveness.card or config.models.encoder.parent / LIVENESS_CARD
    try:
        card = LivenessCard.read(card_path)
    except ModelError as err:
        return [f"{path}: liveness: {err} ([liveness] mode = {config.liveness.mode!r} needs it; build it with "
                "'facegate-convert build', or set mode = \"off\")"]
    problems = []
    for spec in card.models:
        model = card_path.parent / spec.file
        if not model.is_file():
            problems.append(f"{path}: liveness: {model} does not exist (the card {card_path.name} names it)")
        elif sha256_file(model) != spec.sha256:
            problems.append(f"{path}: liveness: {model} does not match {card_path.name} (a different or damaged file)")
    return problems
