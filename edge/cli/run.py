"""``facegate run --config FILE``: the door daemon."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edge.cli.context import CliEnv
from edge.errors import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    r = sub.add_parser("run", help="run the door daemon",
                       description="Watch the camera, open the door for enrolled people, report every event. "
                       "SIGTERM or Ctrl-C: relay off, events flushed, 'offline' published, exit 0.")
    r.add_argument("--config", type=Path, required=True, help="the door's TOML config")
    r.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (tests, demos)")
    r.add_argument("--quiet", action="store_true", help="do not print events on the terminal")
    r.add_argument("--liveness", choices=("off", "report", "enforce"), default=None,
                   help="override [liveness] mode for this run (e.g. try a door in report mode first)")
    r.set_defaults(func=run)
    return r


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.config import load_config
    from edge.daemon.runner import run_door

    config = load_config(args.config)  # a ConfigError: one message per problem, exit 1
    if args.liveness is not None:
        config.liveness.mode = args.liveness
    level = logging.DEBUG if args.verbose else getattr(logging, config.log.level.upper(), logging.INFO)
    logging.getLogger().setLevel(level)
    counters = run_door(config, max_frames=args.max_frames, echo=None if args.quiet else env.stdout)
    print(f"stopped after {counters.frames} frames: {counters.unlocks} unlocks, {counters.unknown} unknown "
          f"reports, {counters.attacks} presentation attacks ({config.liveness.mode}), {counters.frame_errors} bad "
          f"frames, {counters.camera_faults} camera faults", file=env.stdout)
    return ExitCode.OK
