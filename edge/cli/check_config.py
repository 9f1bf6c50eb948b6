"""``facegate check-config FILE``: validate a door config, open and switch nothing."""

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
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return ExitCode.ERROR
    print(f"{args.config}: valid", file=env.stdout)
    return ExitCode.OK
