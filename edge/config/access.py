"""``[access]``: who may open this door, when, in which mode, and where its access log is kept.

Left out, the door admits everyone enrolled at every hour with the face alone (``mode = "face"``, 1:N), as before
access control existed, and still logs every decision. A policy::

    [access]
    mode = "face"                          # or "badge+face": a badge names the person, the face must be theirs
    timezone = "Europe/Berlin"             # the site's wall clock: schedules, holidays, validity dates
    groups = ["staff", "cleaning"]         # who may open this door (left out: everyone enrolled)
    holidays = [2025-12-25, 2026-01-01]    # schedules are shut on these days (unless holidays = true)
    schedule = [
      {days = ["mon-fri"], hours = ["07:00-19:00"], groups = ["staff"]},
      {days = ["mon-fri"], hours = ["22:00-06:00"], groups = ["cleaning"]},   # overnight, into the next day
    ]
    lockdown = [{start = 2025-12-24T18:00:00, end = 2025-12-27T06:00:00}]  # or weekly: {days, hours}

Checked here: the time zone exists (with a suggestion for a typo), every schedule has days and non-empty hours,
no two schedules of a same group cover a same minute of the week, every group a schedule names is one the door
admits and every admitted group has a schedule, ``badge+face`` has a badge reader and ``face`` none. Whether a
group is anybody's needs the store: ``facegate check-config`` and the daemon say it (:mod:`edge.cli.check_config`).
"""

from __future__ import annotations

import difflib
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, model_validator

from edge.config.types import ConfigPath, ExistingFile, KeyProblem, Section
from edge.core.access import MODE_BADGE_FACE, DoorPolicy, check_group
from edge.core.schedule import Period, Schedule, overlaps


class EvdevBadgeSection(Section):
    """A USB keyboard-wedge RFID / QR reader through the Linux input layer (needs ``facegate[badge]``: evdev)."""

    type: Literal["evdev"] = Field(..., description="A keyboard-wedge reader (evdev).")
    device: str = Field(..., min_length=1, description="Its input device on the door, e.g. "
                        "/dev/input/by-id/usb-...-event-kbd (not checked here: it exists on the door only).")
    grab: bool = Field(True, description="Take the device exclusively: no console or desktop sees the badge ids.")
    max_length: int = Field(128, ge=1, le=128, description="Characters a badge id may have at most.")


class ReplayBadgeSection(Section):
    """Badge reads replayed from a file of ``SECONDS TEXT`` lines (tests, the demo)."""

    type: Literal["replay"] = Field(..., description="Replay timed badge reads.")
    path: ExistingFile = Field(..., description="The file (see edge.devices.badge.replay).")


#: The badge reader: one of the types above, chosen by ``type``.
BadgeSection = Annotated[EvdevBadgeSection | ReplayBadgeSection, Field(discriminator="type")]


def _groups(values: list[str], key: str) -> frozenset[str]:
    try:
        return frozenset(check_group(v) for v in values)
    except ValueError as err:
        raise KeyProblem(key, str(err)) from None


def _schedule(days: list[str], hours: list[str], *, groups: list[str] | None = None,
              holidays: bool = False) -> Schedule:
    """The schedule of a table's ``days`` and ``hours``, each problem blamed on its key."""
    clean = None if groups is None else _groups(groups, "groups")
    try:
        Schedule.parse(days, ["00:00-24:00"])
    except ValueError as err:
        raise KeyProblem("days", str(err)) from None
    try:
        return Schedule.parse(days, hours, groups=clean, holidays=holidays)
    except ValueError as err:
        raise KeyProblem("hours", str(err)) from None


class ScheduleEntry(Section):
    """Weekly opening hours (see :class:`edge.core.schedule.Schedule`)."""

    days: list[str] = Field(..., description='Weekdays: "mon" .. "sun", or spans such as "mon-fri".')
    hours: list[str] = Field(..., description='Time ranges "HH:MM-HH:MM"; "22:00-06:00" runs into the next day; '
                                              '"00:00-24:00" is the whole day.')
    groups: list[str] | None = Field(None, description="The groups these hours are for (default: every group "
                                                       "the door admits).")
    holidays: bool = Field(False, description="Open on holidays too (by default a range starting on a holiday "
                                              "stays shut).")

    @model_validator(mode="after")
    def _check(self) -> ScheduleEntry:
        self.to_schedule()
        return self

    def to_schedule(self) -> Schedule:
        return _schedule(self.days, self.hours, groups=self.groups, holidays=self.holidays)


class LockdownEntry(Section):
    """A lockdown: weekly (``days`` and ``hours``) or one-off (``start`` and ``end``, the site's wall clock)."""

    days: list[str] | None = Field(None, description="Weekly lockdown: its weekdays.")
    hours: list[str] | None = Field(None, description="Weekly lockdown: its time ranges.")
    start: datetime | None = Field(None, description="One-off lockdown: from this local date and time ...")
    end: datetime | None = Field(None, description="... until this one (without a time zone: the site's clock).")

    @model_validator(mode="after")
    def _check(self) -> LockdownEntry:
        weekly, once = (self.days, self.hours), (self.start, self.end)
        if any(v is not None for v in weekly) == any(v is not None for v in once):
            raise KeyProblem(next((k for k in ("days", "start") if getattr(self, k) is not None), "days"),
                             "give days and hours (weekly) or start and end (one-off)")
        if any(v is not None for v in weekly):
            missing = "hours" if self.hours is None else "days" if self.days is None else None
            if missing:
                raise KeyProblem(missing, "required with " + ("days" if missing == "hours" else "hours"))
            self.weekly()
        else:
            for key in ("start", "end"):
                value = getattr(self, key)
                if value is None:
                    raise KeyProblem(key, "required with " + ("end" if key == "start" else "start"))
                if value.tzinfo is not None:
                    raise KeyProblem(key, "give the site's local time without an offset (access.timezone says "
                                          "which clock)")
            try:
                self.period()
            except ValueError as err:
                raise KeyProblem("end", str(err)) from None
        return self

    def weekly(self) -> Schedule:
        return _schedule(self.days or [], self.hours or [])

    def period(self) -> Period:
        assert self.start is not None and self.end is not None
        return Period(self.start, self.end)


class AccessSection(Section):
    """Who may open this door, when (see the module docstring)."""

    mode: Literal["face", "badge+face"] = Field(
        "face", description="face: the face alone (1:N, as without [access]); badge+face: a badge names the person "
                            "and the face at the camera within badge_window_seconds must be theirs (1:1).")
    timezone: str | None = Field(None, description="The site's time zone (IANA name, e.g. Europe/Berlin): "
                                 "schedules, holidays, lockdowns and people's validity dates are on its clock. "
                                 "Required with any of them; default UTC.")
    groups: list[str] | None = Field(None, description="The groups that may open this door (default: everyone "
                                                       "enrolled, in a group or not).")
    schedule: list[ScheduleEntry] | None = Field(None, description="Weekly opening hours (default: every hour).")
    holidays: list[date] = Field(default_factory=list, description="Dates on which the schedules are shut.")
    lockdown: list[LockdownEntry] = Field(default_factory=list, description="Lockdown windows: nothing unlocks but "
                                                                            "the exit button.")
    badge: BadgeSection | None = Field(None, description="The badge reader (badge+face only).")
    badge_window_seconds: float = Field(5.0, gt=0, le=60, description="How long after a badge read a face may "
                                                                      "verify it.")
    verify_threshold: Annotated[float, Field(gt=0, le=2)] | None = Field(
        None, description="badge+face: the 1:1 distance threshold, used as it is. Default: derived at the door from "
                          "the reference strangers for recognition.target_fpir at N = 1 (edge.eval.verify_threshold).")
    log_path: ConfigPath | None = Field(None, description="The access log (SQLite); default: access-log.sqlite "
                                                          "beside the store.")
    log_retention_days: int = Field(30, ge=1, le=3650, description="Access log records older than this are "
                                                                   "purged.")
    denied_report_interval_seconds: float = Field(10.0, ge=0, le=3600, description="At most one 'denied' event "
                                                  "per person and reason per this many seconds (all are logged).")

    @model_validator(mode="after")
    def _check(self) -> AccessSection:
        zone = self.zone()
        if zone is None and (self.schedule is not None or self.holidays or self.lockdown):
            raise KeyProblem("timezone", "required with schedule, holidays or lockdown: wall-clock hours mean nothing "
                                         "without the site's time zone")
        admitted = None if self.groups is None else _groups(self.groups, "groups")
        if admitted is not None and not admitted:
            raise KeyProblem("groups", "an empty list admits nobody: leave groups out to admit everyone enrolled")
        if self.schedule is not None:
            self._check_schedules(admitted)
        if self.mode == MODE_BADGE_FACE and self.badge is None:
            raise KeyProblem("badge", "badge+face needs a badge reader ([access.badge], type evdev or replay)")
        if self.mode != MODE_BADGE_FACE and self.badge is not None:
            raise KeyProblem("badge", "a badge reader is read in mode badge+face only: set mode, or remove it")
        return self

    def _check_schedules(self, admitted: frozenset[str] | None) -> None:
        entries = self.schedule or []
        if not entries:
            raise KeyProblem("schedule", "an empty schedule never opens: leave it out for every hour")
        schedules = [e.to_schedule() for e in entries]
        for i, j, when in overlaps(schedules):
            where = ("two of its hours overlap" if i == j
                     else f"it overlaps access.schedule.{i} ({schedules[i].describe()})")
            raise KeyProblem(("schedule", str(j)), f"{schedules[j].describe()}: {where} on {when}")
        for k, s in enumerate(schedules):
            stray = sorted(s.groups - admitted) if s.groups is not None and admitted is not None else []
            if stray:
                raise KeyProblem(("schedule", str(k), "groups"),
                                 f"{', '.join(stray)} is not in access.groups: the door admits nobody of it")
        for group in sorted(admitted or ()):
            if not any(s.applies_to(frozenset({group})) for s in schedules):
                raise KeyProblem("schedule", f"group {group} has no schedule: it would never be admitted")

    def zone(self) -> ZoneInfo | None:
        """The time zone, or ``None`` if not set. Raises KeyProblem for an unknown one."""
        if self.timezone is None:
            return None
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(self.timezone, sorted(available_timezones()), n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else " (an IANA name such as 'Europe/Berlin')"
            raise KeyProblem("timezone", f"unknown time zone {self.timezone!r}{hint}") from None

    def named_groups(self) -> set[str]:
        """Every group the policy names (admitted ones and those of schedules)."""
        names = set(_groups(self.groups or [], "groups"))
        for entry in self.schedule or []:
            names |= set(_groups(entry.groups or [], "groups"))
        return names

    def policy(self) -> DoorPolicy:
        """The :class:`edge.core.access.DoorPolicy` this section describes."""
        weekly = tuple(e.weekly() for e in self.lockdown if e.days is not None)
        return DoorPolicy(
            **({"timezone": zone} if (zone := self.zone()) is not None else {}), mode=self.mode,
            groups=None if self.groups is None else _groups(self.groups, "groups"),
            schedules=None if self.schedule is None else tuple(e.to_schedule() for e in self.schedule),
            holidays=frozenset(self.holidays), lockdown_weekly=weekly,
            lockdown_periods=tuple(e.period() for e in self.lockdown if e.start is not None))
