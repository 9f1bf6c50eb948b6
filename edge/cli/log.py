"""``facegate log``: the door's access log, who was let in or refused and why, filtered; as text, JSON or CSV.

The log is the SQLite file of :mod:`edge.storage.access_log` (``[access] log_path`` of the door config, by default
``access-log.sqlite`` beside the store). Times are stored in UTC; given without an offset (``--since 2025-01-31``,
``--until 2025-01-31T18:00``) they are this machine's local time, and text output shows local time. Badges appear
as fingerprints only (``facegate people list`` shows the same fingerprints). Exit 0, also when nothing matches.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
from datetime import datetime
from pathlib import Path

from edge.cli.context import CliEnv, default_store
from edge.errors import ExitCode

#: The access log's file name beside the store, when neither --log nor --config names it.
LOG_NAME = "access-log.sqlite"


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r} (e.g. 2025-01-31 or "
                                         "2025-01-31T08:00)") from None
    return value if value.tzinfo is not None else value.astimezone()  # no offset: this machine's local time


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edge.core.access import REASONS

    p = sub.add_parser("log", help="the access log: who was let in or refused, when, why",
                       description="The door's access decisions, oldest first, filtered by every option given.")
    where = p.add_argument_group("which log")
    where.add_argument("--log", type=Path, help="the access log file (default: $FACEGATE_ACCESS_LOG, else the "
                       f"--config's, else {LOG_NAME} beside the default store)")
    where.add_argument("--config", type=Path, help="a door config: its [access] log_path")
    which = p.add_argument_group("filters")
    who = which.add_mutually_exclusive_group()
    who.add_argument("--person", help="only this person (the name as logged)")
    who.add_argument("--unknown", action="store_true", help="only faces and badges of nobody enrolled")
    which.add_argument("--since", type=_when, metavar="TIME", help="from this date or time on (local time without "
                       "an offset)")
    which.add_argument("--until", type=_when, metavar="TIME", help="before this date or time")
    which.add_argument("--result", choices=("granted", "denied"))
    which.add_argument("--reason", choices=sorted(REASONS))
    which.add_argument("--door", help="only this door's device id")
    which.add_argument("--limit", type=int, metavar="N", help="at most N records (the newest N with --newest-first)")
    which.add_argument("--newest-first", action="store_true", help="newest first")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per record")
    out.add_argument("--csv", metavar="FILE", help="write the records as CSV to FILE (mode 0600; '-': standard "
                     "output)")
    p.set_defaults(func=run)
    return p


def log_path(args: argparse.Namespace) -> Path:
    """--log, else $FACEGATE_ACCESS_LOG, else the config's [access] log_path, else beside the default store."""
    if args.log is not None:
        return Path(args.log)
    if os.environ.get("FACEGATE_ACCESS_LOG"):
        return Path(os.environ["FACEGATE_ACCESS_LOG"])
    if args.config is not None:
        from edge.config import load_config

        path = load_config(args.config, read_secrets=False).access.log_path
        assert path is not None  # the root model sets it
        return Path(path)
    return default_store().with_name(LOG_NAME)


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.errors import AccessLogError
    from edge.files import write_bytes_atomic
    from edge.storage.access_log import AccessLog

    path = log_path(args)
    if not path.is_file():
        raise AccessLogError(f"no access log at {path} (give --log FILE or --config door.toml)")
    if args.limit is not None and args.limit < 0:
        raise AccessLogError(f"--limit must be 0 or more, got {args.limit}")
    with AccessLog(path, create=False) as access_log:
        records = access_log.query(person="" if args.unknown else args.person, since=args.since, until=args.until,
                                   result=args.result, reason=args.reason, door=args.door, limit=args.limit,
                                   newest_first=args.newest_first)
    if args.csv is not None:
        columns = ("time", "door", "person", "mode", "result", "reason", "distance", "threshold", "badge", "event_id")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows([getattr(r, c) for c in columns] for r in records)
        if args.csv == "-":
            env.stdout.write(buffer.getvalue())
        else:
            write_bytes_atomic(args.csv, buffer.getvalue().encode("utf-8"), mode=0o600)
            print(f"{len(records)} record(s) written to {args.csv}", file=env.stdout)
        return ExitCode.OK
    for r in records:
        local = datetime.fromisoformat(r.time).astimezone().isoformat(timespec="seconds")
        extra = "".join(f"  {k} {v}" for k, v in (("distance", r.distance), ("badge", r.badge)) if v is not None)
        env.emit(r.as_dict(), f"{local}  {r.door}  {r.result:7s}  {r.reason:20s}  {r.person or '(unknown)'}  "
                              f"{r.mode}{extra}")
    if not env.json:
        print(f"{len(records)} record(s) in {path}", file=env.stdout)
    return ExitCode.OK
