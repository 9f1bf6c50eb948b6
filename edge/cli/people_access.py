"""``facegate people groups|validity|disable|enable|badge|unbadge|show``: people's access data in the store.

Every change is one transaction on the store file; a running door that follows the file (``facegate run``) sees it
at its next decision (:mod:`edge.storage.access_data`). Validity dates are in the site's time zone (the door
policy's ``[access] timezone``), both inclusive.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge.cli.context import CliEnv
from edge.errors import ExitCode, FacegateError

#: The access actions and their operands' usage.
ACTIONS = {
    "groups": "groups NAME [GROUP ...]",
    "validity": "validity NAME [--from DATE|none] [--until DATE|none]",
    "disable": "disable NAME",
    "enable": "enable NAME",
    "badge": "badge NAME BADGE_ID",
    "unbadge": "unbadge BADGE_ID",
    "show": "show NAME",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("access data (validity)")
    g.add_argument("--from", dest="valid_from", metavar="DATE", help="validity: first day of access "
                   "(YYYY-MM-DD, site time zone), or 'none'")
    g.add_argument("--until", dest="valid_until", metavar="DATE", help="validity: last day of access (inclusive: it "
                   "ends at the midnight after it, site time zone), or 'none'")


def describe(access: Any, badges: list[str]) -> tuple[dict, str]:
    """One person's access data as a JSON record and as text (badges as fingerprints only)."""
    from edge.storage.access_data import badge_fingerprint

    prints = [badge_fingerprint(b) for b in badges]
    record = {"groups": sorted(access.groups), "valid_from": _iso(access.valid_from),
              "valid_until": _iso(access.valid_until), "enabled": access.enabled, "badges": prints}
    validity = ("" if access.valid_from is None and access.valid_until is None else
                f" valid {_iso(access.valid_from) or '...'} to {_iso(access.valid_until) or '...'}")
    text = (f"groups {','.join(sorted(access.groups)) or '-'}{validity}"
            f"{'' if access.enabled else ' DISABLED'}" + (f" badges {','.join(prints)}" if prints else ""))
    return record, text


def run(action: str, operands: list[str], args: argparse.Namespace, env: CliEnv) -> int:
    from edge.storage.access_data import KEEP, badge_fingerprint

    access = env.store().access
    if action == "groups":
        name, *groups = _operands(operands, None, action)
        result = access.set_groups(name, groups)
    elif action == "validity":
        (name,) = _operands(operands, 1, action)
        if args.valid_from is None and args.valid_until is None:
            raise FacegateError(f"usage: facegate people {ACTIONS[action]} (give --from or --until)")
        result = access.set_validity(name, valid_from=_date_option(args.valid_from, KEEP),
                                     valid_until=_date_option(args.valid_until, KEEP))
    elif action in ("disable", "enable"):
        (name,) = _operands(operands, 1, action)
        result = access.set_enabled(name, action == "enable")
    elif action == "badge":
        name, badge = _operands(operands, 2, action)
        name = access.add_badge(name, badge)
        env.emit({"name": name, "badge_added": badge_fingerprint(badge.strip())},
                 f"{name}: badge {badge_fingerprint(badge.strip())} added")
        return ExitCode.OK
    elif action == "unbadge":
        (badge,) = _operands(operands, 1, action)
        name = access.remove_badge(badge)
        env.emit({"name": name, "badge_removed": badge_fingerprint(badge.strip())},
                 f"{name}: badge {badge_fingerprint(badge.strip())} removed")
        return ExitCode.OK
    else:
        (name,) = _operands(operands, 1, action)
        result = access.get(name)
    record, text = describe(result, access.snapshot().badges_of(result.name))
    env.emit({"name": result.name, **record}, f"{result.name}: {text}")
    return ExitCode.OK


def _operands(operands: list[str], count: int | None, action: str) -> list[str]:
    if (count is None and not operands) or (count is not None and len(operands) != count):
        raise FacegateError(f"usage: facegate people {ACTIONS[action]}")
    return operands


def _date_option(value: str | None, keep: Any) -> Any:
    if value is None:
        return keep
    return None if value.strip().lower() in ("none", "") else value


def _iso(day: Any) -> str | None:
    return None if day is None else day.isoformat()
