"""``[relay]``: the door-strike relay, all that ``facegate relay-off`` reads.

Plain Python, no pydantic: systemd's safety net after the daemon died reads this table and nothing else, and
starts in a fraction of the time a pydantic model takes to import and build. The daemon's
:class:`~edge.config.root.Config` checks ``[relay]`` through the same :meth:`RelaySection.from_table`, so both
accept and refuse exactly the same tables.

==================  ======================================================================================
key                 what
==================  ======================================================================================
``pin``             GPIO of the relay: BCM number 0..27 or a gpiozero pin name (``"GPIO17"``, ``"BOARD11"``)
``active_high``     ``true`` (default): the relay closes when the pin is high; ``false`` for active-low boards
``pulse_seconds``   how long the door stays unlocked, 0.1..30 s (default 3)
``pin_factory``     ``"default"`` (the board's pins) or ``"mock"``: gpiozero's MockFactory, for machines without
                    GPIO (no relay switches)
==================  ======================================================================================
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from typing import Any

from edge.config.plain import KeyProblem, KeyProblems, gpio_pin

PIN_FACTORIES = ("default", "mock")
PULSE_SECONDS = (0.1, 30.0)


@dataclass(frozen=True)
class RelaySection:
    """The door-strike relay (see the module docstring). Make one with :meth:`from_table`."""

    pin: int | str
    active_high: bool = True
    pulse_seconds: float = 3.0
    pin_factory: str = "default"

    @classmethod
    def from_table(cls, table: Any) -> RelaySection:
        """The ``[relay]`` table of a parsed config file, checked.

        Raises:
            KeyProblems: every problem of the table at once, each blaming its key.
        """
        if isinstance(table, cls):
            return table
        if not isinstance(table, dict):
            raise KeyProblems([KeyProblem((), f"should be a table of relay settings (got {table!r})")])
        known = [f.name for f in fields(cls)]
        problems = []
        values = {k: v for k, v in table.items() if k in known}
        for key, check in (("pin", _pin), ("active_high", _active_high), ("pulse_seconds", _pulse_seconds),
                           ("pin_factory", _pin_factory)):
            if key not in values:
                if key == "pin":
                    problems.append(KeyProblem("pin", "required, but missing"))
                continue
            try:
                values[key] = check(values[key])
            except ValueError as err:
                problems.append(KeyProblem(key, str(err)))
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(KeyProblem(str(key), "unknown key" + hint))
        if problems:
            raise KeyProblems(problems)
        return cls(**values)


def _pin(value: Any) -> int | str:
    return gpio_pin(value)


def _active_high(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"should be true or false (got {value!r})")
    return value


def _pulse_seconds(value: Any) -> float:
    low, high = PULSE_SECONDS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"should be a number of seconds, {low:g}..{high:g} (got {value!r})")
    if not low <= value <= high:
        raise ValueError(f"should be {low:g}..{high:g} s (got {value!r})")
    return float(value)


def _pin_factory(value: Any) -> str:
    if value not in PIN_FACTORIES:
        raise ValueError(f"should be one of {', '.join(repr(f) for f in PIN_FACTORIES)} (got {value!r})")
    return str(value)
