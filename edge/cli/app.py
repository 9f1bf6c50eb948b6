"""The ``facegate`` command: one module per sub-command, imported only when that command runs.

Each command module has ``add_parser(subparsers) -> ArgumentParser`` (which sets ``func``) and a
``run(args, env) -> int``. ``main`` builds the parser of the command named on the command line only, so
``facegate relay-off`` (systemd's safety net after a crash) imports neither numpy, OpenCV nor a model: only
what drives the relay. ``facegate --help`` and a mistyped command build them all.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from edge.cli.context import CliEnv, add_common_options
from edge.errors import ExitCode, FacegateError

#: Every command: its module under ``edge.cli`` and whether it takes the model and store options.
COMMANDS: dict[str, tuple[str, bool]] = {
    "run": ("run", False),
    "check-config": ("check_config", False),
    "relay-off": ("relay_off", False),
    "enroll": ("enroll", True),
    "people": ("people", True),
    "identify": ("identify", True),
    "verify": ("verify", True),
    "calibrate": ("calibrate", True),
    "evaluate": ("evaluate", True),
    "bench": ("bench", True),
    "liveness": ("liveness", False),
    "evaluate-liveness": ("evaluate_liveness", False),
    "log": ("log", False),
}

EPILOG = """exit codes: 0 done (and every answer was yes); 1 error; 2 bad arguments; 3 some answer was no
(not in the database, verification refused, photo rejected at enrolment); 130 interrupted.

environment: FACEGATE_MODELS (folder with the models; default: this checkout's weights/, else a door's
/var/lib/facegate/models), FACEGATE_STORE (the encoding store; default: a door's /var/lib/facegate/people.sqlite
if there is one, else ./facegate-store.db)."""


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with the given commands (default: all of them)."""
    parser = argparse.ArgumentParser(prog="facegate", description="Face-recognition door access: the operator's "
                                     "tools.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands if commands is not None else COMMANDS:
        module_name, common = COMMANDS[name]
        command = importlib.import_module(f"edge.cli.{module_name}").add_parser(sub)
        if common:
            add_common_options(command)
        command.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``facegate`` command; returns its exit code (see :class:`edge.errors.ExitCode`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser([named] if named in COMMANDS else None).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    env = CliEnv(args)
    try:
        return int(args.func(args, env))
    except FacegateError as exc:
        print(f"facegate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("facegate: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    finally:
        env.close()
