"""Weekly opening hours and one-off periods in a site's wall-clock time: pure, no clock, no I/O.

A :class:`Schedule` is a set of weekdays and time ranges (``"07:00-19:00"``; ``"22:00-06:00"`` runs overnight into
the next day; ``"00:00-24:00"`` is the whole day). Everything is judged on the wall clock of the site, given as an
aware :class:`~datetime.datetime` already converted to the site's zone (:func:`edge.core.access.evaluate` does
that), so the daylight-saving changes need no special case and behave like the clock on the wall:

* spring forward (Europe/Berlin: 02:00 becomes 03:00 on the last Sunday of March): the wall-clock times
  02:00-02:59 never happen, so a range ``01:30-03:30`` is open for one real hour that night, and ``02:00-03:00``
  not at all;
* fall back (03:00 becomes 02:00 on the last Sunday of October): 02:00-02:59 happens twice and a range covering
  it is open both times (``02:00-03:00`` is open for two real hours);
* an overnight range belongs to the day it *starts* on: ``fri 22:00-06:00`` is Friday 22:00 to Saturday 06:00,
  and whether that night is a holiday is decided by Friday's date.

A range starts at its first minute and ends before its last (``07:00-19:00`` is open at 18:59:59, shut at
19:00:00). :func:`overlaps` finds ranges that cover the same minutes of the week (for the config check).

A :class:`Period` is a one-off stretch of wall-clock time (a lockdown from 2025-12-24 18:00 to 2025-12-27 06:00).

This module is the standard library only: the config imports it to check a door's policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

#: Weekday names as the config writes them, Monday first (``datetime.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_RANGE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")

#: What :meth:`Schedule.covers` finds.
OPEN, HOLIDAY, SHUT = "open", "holiday", "shut"


def parse_weekdays(items: Iterable[str]) -> frozenset[int]:
    """Weekday numbers (Monday 0) of ``["mon", "wed-fri"]``; a span may wrap (``"sat-mon"``).

    Raises:
        ValueError: an unknown name, naming it and the known ones.
    """
    days: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        first, _, last = text.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"unknown weekday {item!r}: use {', '.join(WEEKDAYS)} or a span such as 'mon-fri'")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    return frozenset(days)


@dataclass(frozen=True)
class TimeRange:
    """Minutes after midnight: ``start`` (0..1439) up to ``end`` (1..1440). ``end <= start`` runs overnight."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """``"HH:MM-HH:MM"``; ``24:00`` may end a range. A range of no length (``"08:00-08:00"``) is refused.

        Raises:
            ValueError: not that form, an impossible time, or an empty range.
        """
        match = _RANGE.fullmatch(str(text).strip())
        if match is None:
            raise ValueError(f"{text!r} is not a time range HH:MM-HH:MM (e.g. '07:00-19:00' or '22:00-06:00')")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"{text!r} holds an impossible time (00:00 to 23:59; 24:00 only as an end)")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end % MINUTES_PER_DAY and end != MINUTES_PER_DAY:
            raise ValueError(f"{text!r} is empty: it starts when it ends (the whole day is '00:00-24:00')")
        return cls(start, end)

    @property
    def overnight(self) -> bool:
        """Whether the range runs past midnight into the next day (``22:00-06:00``)."""
        return self.end <= self.start

    def text(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Schedule:
    """Opening hours: on each of ``days`` (Monday 0), each of ``ranges``, for ``groups`` (``None``: every group the
    door admits). ``holidays``: also open on holidays (a night or security shift); by default a range that starts on
    a holiday stays shut."""

    days: frozenset[int]
    ranges: tuple[TimeRange, ...]
    groups: frozenset[str] | None = None
    holidays: bool = False

    @classmethod
    def parse(cls, days: Iterable[str], hours: Iterable[str], *, groups: Iterable[str] | None = None,
              holidays: bool = False) -> Schedule:
        """A schedule from its config form (``days = ["mon-fri"]``, ``hours = ["07:00-19:00"]``).

        Raises:
            ValueError: no days or no hours (an empty schedule opens nothing: a mistake), or a bad item.
        """
        day_list, hour_list = list(days), list(hours)
        if not day_list:
            raise ValueError("no days: an empty schedule never opens (leave the schedule out for every hour)")
        if not hour_list:
            raise ValueError("no hours: an empty schedule never opens (use '00:00-24:00' for the whole day)")
        return cls(parse_weekdays(day_list), tuple(TimeRange.parse(h) for h in hour_list),
                   None if groups is None else frozenset(groups), holidays)

    @classmethod
    def always(cls) -> Schedule:
        """Every day, the whole day (closed on holidays, as any schedule without ``holidays``)."""
        return cls(frozenset(range(7)), (TimeRange(0, MINUTES_PER_DAY),))

    def applies_to(self, groups: frozenset[str]) -> bool:
        """Whether the schedule is for someone in ``groups`` (a schedule without groups is for everyone)."""
        return self.groups is None or bool(self.groups & groups)

    def covers(self, local: datetime, holidays: frozenset[date] = frozenset()) -> str:
        """:data:`OPEN`, :data:`HOLIDAY` (a range covers ``local`` but started on a holiday) or :data:`SHUT`.

        ``local`` is the site's wall-clock time (aware or naive: only its date and time of day are read).
        """
        second = local.hour * 3600 + local.minute * 60 + local.second
        today, weekday = local.date(), local.weekday()
        found = SHUT
        for r in self.ranges:
            start, end = r.start * 60, r.end * 60
            if not r.overnight:
                day = today if weekday in self.days and start <= second < end else None
            elif weekday in self.days and second >= start:
                day = today
            elif (weekday - 1) % 7 in self.days and second < end:
                day = today - timedelta(days=1)  # the spill of last night's range, judged by the day it started
            else:
                day = None
            if day is None:
                continue
            if day in holidays and not self.holidays:
                found = HOLIDAY
                continue
            return OPEN
        return found

    def week_intervals(self) -> list[tuple[int, int]]:
        """The minutes of the week the schedule covers, ``[start, end)`` from Monday 00:00, split at the week's end."""
        out: list[tuple[int, int]] = []
        for day in sorted(self.days):
            for r in self.ranges:
                a = day * MINUTES_PER_DAY + r.start
                b = day * MINUTES_PER_DAY + r.end + (MINUTES_PER_DAY if r.overnight else 0)
                if b > MINUTES_PER_WEEK:
                    out += [(a, MINUTES_PER_WEEK), (0, b - MINUTES_PER_WEEK)]
                else:
                    out.append((a, b))
        return out

    def describe(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        who = "" if self.groups is None else f" for {', '.join(sorted(self.groups))}"
        return f"{days} {' '.join(r.text() for r in self.ranges)}{who}"


def overlaps(schedules: Sequence[Schedule]) -> list[tuple[int, int, str]]:
    """Pairs of schedules (``(i, j, "tue 08:00")``, ``i <= j``) that cover a same minute of the week for a same
    group: one of them is redundant or a typo. ``i == j``: two ranges of one schedule overlap. Schedules of
    disjoint groups may cover the same hours."""
    found = []
    for i, a in enumerate(schedules):
        for j in range(i, len(schedules)):
            b = schedules[j]
            if not (a.groups is None or b.groups is None or a.groups & b.groups):
                continue
            where = _first_common_minute(a, b) if i != j else _self_overlap(a)
            if where is not None:
                found.append((i, j, f"{WEEKDAYS[where // MINUTES_PER_DAY]} {_hhmm(where % MINUTES_PER_DAY)}"))
    return found


def _first_common_minute(a: Schedule, b: Schedule) -> int | None:
    common = [max(x0, y0) for x0, x1 in a.week_intervals() for y0, y1 in b.week_intervals()
              if max(x0, y0) < min(x1, y1)]
    return min(common) if common else None


def _self_overlap(s: Schedule) -> int | None:
    """The first minute two ranges of one schedule (on one of its days) both cover."""
    if len(s.ranges) < 2:
        return None
    parts = [Schedule(s.days, (r,), s.groups, s.holidays) for r in s.ranges]
    common = [m for i, p in enumerate(parts) for q in parts[i + 1:] if (m := _first_common_minute(p, q)) is not None]
    return min(common) if common else None


@dataclass(frozen=True)
class Period:
    """A one-off stretch of the site's wall-clock time, ``start`` up to (not including) ``end``, both naive."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a period is wall-clock time of the site: give it without a time zone")
        if self.end <= self.start:
            raise ValueError(f"the period {self.start.isoformat()} to {self.end.isoformat()} is empty or reversed")

    def covers(self, local: datetime) -> bool:
        """Whether the site's wall-clock time ``local`` (aware or naive) is within the period."""
        wall = local.replace(tzinfo=None, fold=0)
        return self.start <= wall < self.end
