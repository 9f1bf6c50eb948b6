"""Who may open this door, when: the access policy and the badge+face rule, pure (no clock, no I/O).

Time is always passed in, as an *aware* :class:`~datetime.datetime` (a naive one is refused: nobody could tell
which wall clock it means); :func:`evaluate` converts it to the door's zone and judges the wall clock there
(:mod:`edge.core.schedule` explains daylight-saving changes and overnight ranges).

**A person's access data** (:class:`PersonAccess`): groups, a validity period and an enabled flag. The validity
is two *dates* in the site's time zone (the door policy's ``timezone``), both inclusive: ``valid_from``
2025-02-01 admits from 00:00 on 1 February, ``valid_until`` 2025-06-30 until 23:59:59 on 30 June; access ends at
the midnight that follows, on the site's clock, whatever the daylight-saving time.

**A door's policy** (:class:`DoorPolicy`): the time zone, the mode, the groups it admits (``None``: everyone
enrolled, in a group or not), weekly schedules (``None``: every hour of every day), holidays (dates on which
schedules are shut unless a schedule says ``holidays``), and lockdown windows (weekly or one-off; during a
lockdown nothing unlocks but the exit button, which never passes through here).

:func:`evaluate` answers with a :class:`Verdict` whose ``reason`` is one of the codes below (:data:`REASONS`), in
this order of precedence: ``lockdown``, ``undecidable`` (no access data could be read), ``disabled``,
``not_yet_valid``, ``expired``, ``not_in_group``, ``holiday``, ``outside_hours``, else ``granted``.

**badge+face** (:class:`BadgeFaceSession`): a badge read names a person and opens a window of ``window_seconds``;
the faces seen in it are compared 1:1 with *that* person only (the seed's ``verify``, with its own threshold:
:mod:`edge.eval.verify_threshold`). The first ``votes_window`` faces decide: ``votes_needed`` of them within the
threshold open, otherwise ``badge_face_mismatch`` (a badge holder gets that many tries, no more); a window that
ends without a face is ``badge_without_face``; a face while no window is open is ``face_without_badge``; a badge
nobody has is ``unknown_badge``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Final

from edge.core.schedule import HOLIDAY, OPEN, Period, Schedule

# -- the reason codes: stable strings, in the access log, the events and the CLI --------------------------------

GRANTED: Final = "granted"
LOCKDOWN: Final = "lockdown"
UNDECIDABLE: Final = "undecidable"  #: the access data or the policy could not be read: the door stays shut
DISABLED: Final = "disabled"
NOT_YET_VALID: Final = "not_yet_valid"
EXPIRED: Final = "expired"
NOT_IN_GROUP: Final = "not_in_group"
HOLIDAY_CLOSED: Final = "holiday"
OUTSIDE_HOURS: Final = "outside_hours"
BADGE_FACE_MISMATCH: Final = "badge_face_mismatch"
BADGE_WITHOUT_FACE: Final = "badge_without_face"
FACE_WITHOUT_BADGE: Final = "face_without_badge"
UNKNOWN_BADGE: Final = "unknown_badge"
BADGE_UNREADABLE: Final = "badge_unreadable"  #: the reader sent something that is not a badge id
NOT_RECOGNISED: Final = "not_recognised"  #: a face that is nobody enrolled (face mode's ``unknown``)
PRESENTATION_ATTACK: Final = "presentation_attack"  #: a photo or a screen held up to the camera

#: Every reason code, for validation and documentation.
REASONS: Final = frozenset({
    GRANTED, LOCKDOWN, UNDECIDABLE, DISABLED, NOT_YET_VALID, EXPIRED, NOT_IN_GROUP, HOLIDAY_CLOSED, OUTSIDE_HOURS,
    BADGE_FACE_MISMATCH, BADGE_WITHOUT_FACE, FACE_WITHOUT_BADGE, UNKNOWN_BADGE, BADGE_UNREADABLE, NOT_RECOGNISED,
    PRESENTATION_ATTACK})

#: The door's modes.
MODE_FACE: Final = "face"
MODE_BADGE_FACE: Final = "badge+face"
MODES: Final = (MODE_FACE, MODE_BADGE_FACE)

_GROUP = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
#: A badge id: printable ASCII without spaces, 1..128 characters (what keyboard-wedge readers type).
_BADGE = re.compile(r"[!-~]{1,128}")


def check_group(name: object) -> str:
    """A group name, lower-cased: letters, digits, ``_ . -``, 1..64, starting with a letter or digit.

    Raises:
        ValueError: anything else, quoting it.
    """
    text = name.strip().lower() if isinstance(name, str) else None
    if text is None or not _GROUP.fullmatch(text):
        raise ValueError(f"{name!r} is not a group name (a-z 0-9 _ . -, 1..64, starting with a letter or digit)")
    return text


def check_groups(names: Iterable[object]) -> frozenset[str]:
    return frozenset(check_group(n) for n in names)


def check_badge_id(value: object) -> str:
    """A badge id with surrounding white space stripped: 1..128 printable ASCII characters, no spaces inside.

    Raises:
        ValueError: empty, too long, or holding a space, a control or a non-ASCII character.
    """
    text = value.strip() if isinstance(value, str) else None
    if not text:
        raise ValueError("a badge id must be a non-empty string")
    if not _BADGE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"{shown!r} is not a badge id (1..128 printable ASCII characters, no spaces)")
    return text


@dataclass(frozen=True)
class PersonAccess:
    """One enrolled person's access data; the defaults (no groups, no validity, enabled) admit wherever a door
    admits everyone, at its hours: today's behaviour for a store without access data."""

    name: str
    groups: frozenset[str] = frozenset()
    valid_from: date | None = None
    valid_until: date | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(f"{self.name}: valid_until {self.valid_until} is before valid_from {self.valid_from}")


@dataclass(frozen=True)
class DoorPolicy:
    """Who may open one door, when (see the module docstring). The default admits everyone, at every hour."""

    timezone: tzinfo = timezone.utc
    mode: str = MODE_FACE
    groups: frozenset[str] | None = None
    schedules: tuple[Schedule, ...] | None = None
    holidays: frozenset[date] = frozenset()
    lockdown_weekly: tuple[Schedule, ...] = ()
    lockdown_periods: tuple[Period, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def local(self, at: datetime) -> datetime:
        """``at`` on the door's wall clock. Raises ValueError for a naive datetime."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{at.isoformat()} has no time zone: pass aware datetimes (e.g. in UTC)")
        return at.astimezone(self.timezone)

    def in_lockdown(self, at: datetime) -> bool:
        """Whether a lockdown window (weekly or one-off) covers ``at``. Holidays do not pause a lockdown."""
        local = self.local(at)
        return (any(s.covers(local) == OPEN for s in self.lockdown_weekly)
                or any(p.covers(local) for p in self.lockdown_periods))


@dataclass(frozen=True)
class Verdict:
    """The answer: ``granted``, and the reason code (``"granted"`` when granted); ``detail`` in words."""

    granted: bool
    reason: str
    detail: str = ""


def evaluate(person: PersonAccess | None, policy: DoorPolicy, at: datetime, *, lockdown: bool = False) -> Verdict:
    """May ``person`` open the door of ``policy`` at ``at`` (aware)? ``lockdown``: a lockdown set by command.

    ``person`` ``None``: their access data could not be read (``undecidable``: the door stays shut).

    Raises:
        ValueError: ``at`` is naive.
    """
    local = policy.local(at)
    if lockdown or policy.in_lockdown(at):
        return Verdict(False, LOCKDOWN, "the door is in lockdown" + (" (by command)" if lockdown else ""))
    if person is None:
        return Verdict(False, UNDECIDABLE, "no access data could be read")
    if not person.enabled:
        return Verdict(False, DISABLED, f"{person.name} is disabled")
    today = local.date()
    if person.valid_from is not None and today < person.valid_from:
        return Verdict(False, NOT_YET_VALID, f"{person.name} is valid from {person.valid_from.isoformat()}")
    if person.valid_until is not None and today > person.valid_until:
        return Verdict(False, EXPIRED, f"{person.name} was valid until {person.valid_until.isoformat()}")
    if policy.groups is not None and not person.groups & policy.groups:
        return Verdict(False, NOT_IN_GROUP, f"{person.name} is in none of {', '.join(sorted(policy.groups))}")
    schedules = policy.schedules if policy.schedules is not None else (Schedule.always(),)
    found = [s.covers(local, policy.holidays) for s in schedules if s.applies_to(person.groups)]
    if OPEN in found:
        return Verdict(True, GRANTED)
    if HOLIDAY in found:
        return Verdict(False, HOLIDAY_CLOSED, f"{today.isoformat()} is a holiday")
    return Verdict(False, OUTSIDE_HOURS, f"{local.strftime('%a %H:%M')} is outside {person.name}'s hours")


# -- badge+face ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadgeOutcome:
    """What a badge+face session decided: the reason code, the person the badge names (``None``: nobody), the
    badge it was read from, and the best 1:1 distance seen (``None``: no face)."""

    reason: str
    person: str | None = None
    badge: str | None = None
    distance: float | None = None
    faces: int = 0

    @property
    def granted(self) -> bool:
        return self.reason == GRANTED


@dataclass
class _Window:
    person: str
    badge: str
    deadline: float
    matched: int = 0
    faces: int = 0
    best: float | None = field(default=None)


class BadgeFaceSession:
    """The badge+face state machine (see the module docstring). Times are monotonic seconds.

    Args:
        window_seconds: how long after a badge read a face may verify it.
        votes_needed, votes_window: the first ``votes_window`` faces in a window decide; ``votes_needed`` of them
            must be within the threshold.
    """

    def __init__(self, *, window_seconds: float = 5.0, votes_needed: int = 1, votes_window: int = 3):
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        if not 1 <= votes_needed <= votes_window:
            raise ValueError(f"need 1 <= votes_needed ({votes_needed}) <= votes_window ({votes_window})")
        self.window_seconds = float(window_seconds)
        self.votes_needed = votes_needed
        self.votes_window = votes_window
        self._open: _Window | None = None

    @property
    def pending(self) -> str | None:
        """The person whose badge was read and whose face is awaited, or ``None``."""
        return self._open.person if self._open is not None else None

    def badge(self, now: float, person: str | None, badge: str) -> list[BadgeOutcome]:
        """A badge was read: ``person`` is whom it belongs to (``None``: nobody). A window still open is closed
        first (its outcome comes first in the list)."""
        outcomes = self._close()
        if person is None:
            outcomes.append(BadgeOutcome(UNKNOWN_BADGE, None, badge))
        else:
            self._open = _Window(person, badge, now + self.window_seconds)
        return outcomes

    def refuse(self) -> None:
        """Drop the open window without an outcome (the caller refused the badge for another reason)."""
        self._open = None

    def face(self, now: float, distance: float | None, threshold: float) -> list[BadgeOutcome]:
        """A face was seen: ``distance`` to the pending person's template (``None``: there is no template, e.g.
        the person was removed meanwhile: a mismatch). Accepted at ``distance <= threshold``."""
        outcomes = self.expire(now)
        window = self._open
        if window is None:
            return [*outcomes, BadgeOutcome(FACE_WITHOUT_BADGE, distance=distance)]
        window.faces += 1
        if distance is not None and (window.best is None or distance < window.best):
            window.best = distance
        window.matched += distance is not None and distance <= threshold
        if window.matched >= self.votes_needed:
            outcomes.append(self._end(GRANTED))
        elif window.faces - window.matched > self.votes_window - self.votes_needed:
            outcomes.append(self._end(BADGE_FACE_MISMATCH))
        return outcomes

    def expire(self, now: float) -> list[BadgeOutcome]:
        """The outcome of a window that has run out by ``now`` (none if nothing ran out)."""
        if self._open is not None and now >= self._open.deadline:
            return self._close()
        return []

    def _close(self) -> list[BadgeOutcome]:
        if self._open is None:
            return []
        return [self._end(BADGE_FACE_MISMATCH if self._open.faces else BADGE_WITHOUT_FACE)]

    def _end(self, reason: str) -> BadgeOutcome:
        window, self._open = self._open, None
        assert window is not None
        return BadgeOutcome(reason, window.person, window.badge, window.best, window.faces)
