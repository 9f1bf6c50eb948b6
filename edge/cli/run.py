"""``facegate run --config FILE`` (the door daemon) and ``facegate check-config FILE``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.cli import EXIT_ERROR, EXIT_OK


def add_parsers(sub) -> list[argparse.ArgumentParser]:
    r = sub.add_parser("run", help="run the door daemon",
                       description="Watch the camera, open the door for enrolled people, report every event. "
                       "SIGTERM or Ctrl-C: relay off, events flushed, 'offline' published, exit 0.")
    r.add_argument("--config", type=Path, required=True, help="the door's TOML config")
    r.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (tests, demos)")
    r.add_argument("--quiet", action="store_true", help="do not print events on the terminal")
    r.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    r.set_defaults(func=run_daemon, json=False)

    c = sub.add_parser("check-config", help="validate a door config and exit",
                       description="Exit 0 if the config is valid; else print one line per problem "
                       "(file:line: key: reason) and exit 1. Nothing is opened or switched.")
    c.add_argument("config", type=Path)
    c.add_argument("--no-secrets", action="store_true",
                   help="do not read the MQTT password (e.g. outside systemd, where credentials are not set)")
    c.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    c.set_defaults(func=check_config, json=False)
    # Neither takes the model/store options of the operator commands: everything is in the config.
    return []


def check_config(args, env) -> int:
    from edge.config import validate_config

    problems = validate_config(args.config, read_secrets=not args.no_secrets)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return EXIT_ERROR
    print(f"{args.config}: valid", file=env.stdout)
    return EXIT_OK


def run_daemon(args, env) -> int:
    from edge.config import load_config
    from edge.runner import run_door

    config = load_config(args.config)  # a ConfigError is a FacegateError: one message per problem, exit 1
    level = logging.DEBUG if args.verbose else getattr(logging, config.log.level.upper(), logging.INFO)
    logging.getLogger().setLevel(level)
    counters = run_door(config, max_frames=args.max_frames, echo=None if args.quiet else env.stdout)
    print(f"stopped after {counters.frames} frames: {counters.unlocks} unlocks, {counters.unknown} unknown "
          f"reports, {counters.frame_errors} bad frames, {counters.camera_faults} camera faults", file=env.stdout)
    return EXIT_OK
