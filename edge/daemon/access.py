"""The door's access control, between the face decision and the relay: policy, badge+face, the access log.

:class:`AccessControl` is what the loop asks before it unlocks. It evaluates the door's policy
(:func:`edge.core.access.evaluate`) with the wall-clock time now, on the person's access data as the store holds it
now (:class:`edge.storage.access_data.AccessReader` reads the file again whenever it changed, so ``facegate people
disable NAME`` refuses NAME at the next decision), writes every decision to the access log, and answers with an
:class:`AccessResult`: grant or deny, the reason code, and whether to report it as an event (a grant always; a denial
at most once per ``report_interval`` per person and reason, like ``unknown``).

The loop calls (times are its monotonic frame times):

* ``on_recognised(person, distance, now)`` when the decider would unlock for ``person`` (mode ``face``; in mode
  ``badge+face`` it returns ``None``: the badge decides);
* ``on_unknown(distance, now)`` when it reports an ``unknown`` face (logged as ``not_recognised``, no event of its own);
* ``on_face(encoding, face_px, now)`` for every frame with a face (mode ``badge+face``: the faces that verify a badge,
  1:1 against the badge holder's template with the threshold of :mod:`edge.eval.verify_threshold`; a face without a
  badge is a denial, reported and logged at most once per interval);
* ``poll(now)`` at every frame: the badge reads that came from the reader thread, and badge windows that ran out;
* ``deny(reason, ...)`` for a denial found elsewhere (a presentation attack);
* ``alarms()``: conditions to report as ``alarm`` events (a badge reader that stopped, a log that cannot be written).

A result with ``granted`` unlocks (``unlock(result.cause, result.person)``); anything that cannot be decided (the
store unreadable, the person gone from it) is ``undecidable`` and denied. A lockdown (by schedule, or by
:meth:`AccessControl.set_lockdown`) denies everything here; the exit button never comes here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from edge.core.access import (
    BADGE_UNREADABLE,
    FACE_WITHOUT_BADGE,
    GRANTED,
    MODE_BADGE_FACE,
    MODE_FACE,
    NOT_RECOGNISED,
    UNDECIDABLE,
    BadgeFaceSession,
    BadgeOutcome,
    DoorPolicy,
    Verdict,
    check_badge_id,
    evaluate,
)
from edge.core.openset import Threshold
from edge.daemon.access_workers import purge_log, read_badges
from edge.errors import StoreError
from edge.eval.verify_threshold import verify_threshold
from edge.storage.access_data import AccessReader, AccessSnapshot, badge_fingerprint
from edge.storage.access_log import DEFAULT_RETENTION_DAYS, AccessLog, AccessRecord, utc_text

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AccessResult:
    """One access decision (see the module docstring). ``badge`` is the badge's fingerprint, never its id."""

    granted: bool
    reason: str
    mode: str
    person: str | None = None
    distance: float | None = None
    threshold: float | None = None
    badge: str | None = None
    report: bool = True
    detail: str = ""

    @property
    def cause(self) -> str:
        """Why the door opens, for ``door_unlocked``: ``face`` or ``badge+face``."""
        return self.mode

    def event_detail(self) -> dict[str, Any]:
        """The ``detail`` of the ``recognized`` / ``denied`` event that reports it."""
        out: dict[str, Any] = {"reason": self.reason, "mode": self.mode}
        for key in ("badge", "threshold"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.detail:
            out["detail"] = self.detail
        return out


class AccessControl:
    """The door's access control (see the module docstring). Every collaborator is passed in.

    Args:
        device_id: the door, in every log record.
        policy: the door's :class:`edge.core.access.DoorPolicy`.
        access: has ``snapshot() -> AccessSnapshot`` (raising StoreError): an :class:`AccessReader` of the store.
        access_log: where every decision is written, or ``None`` (not kept: an alarm says so at start).
        gallery: the :class:`edge.core.openset.OpenSetGallery` of the door (templates, reference strangers, the 1:N
            threshold): badge+face compares a face with the badge holder's template there.
        verify_override: ``[access] verify_threshold``, or ``None`` to derive it.
        window_seconds, votes_needed, votes_window: the badge+face session (:class:`BadgeFaceSession`).
        min_face_px: faces smaller than this never verify a badge (nor count as a face without one).
        report_interval: seconds between two reported denials of one person and reason.
        badge_reader: ``badge_reader() -> BadgeReader`` opens the reader (read from a thread after :meth:`start`).
        retention_days: the access log's retention.
        wall: the wall clock (aware datetimes); clock: monotonic seconds (when ``now`` is not given).
    """

    def __init__(self, *, device_id: str, policy: DoorPolicy, access: Any, access_log: AccessLog | None,
                 gallery: Any = None, verify_override: float | None = None, window_seconds: float = 5.0,
                 votes_needed: int = 2, votes_window: int = 3, min_face_px: float = 80.0,
                 report_interval: float = 10.0, badge_reader: Callable[[], Any] | None = None,
                 retention_days: float = DEFAULT_RETENTION_DAYS, wall: Callable[[], datetime] = utc_now,
                 clock: Callable[[], float] = time.monotonic):
        self.device_id = device_id
        self.policy = policy
        self.access = access
        self.access_log = access_log
        self.gallery = gallery
        self.verify_override = verify_override
        self.min_face_px = min_face_px
        self.report_interval = report_interval
        self.retention_days = retention_days
        self.session = BadgeFaceSession(window_seconds=window_seconds, votes_needed=votes_needed,
                                        votes_window=votes_window)
        self._badge_reader = badge_reader
        self._wall = wall
        self._clock = clock
        self._lockdown = False
        self._last_report: dict[tuple[str, str | None], float] = {}
        self._quiet_until = float("-inf")  # after a badge+face session: the person walks in, their face is no denial
        self._verify: tuple[Any, Threshold] | None = None  # (templates it was derived for, threshold)
        self._reads: queue.Queue = queue.Queue()
        self._alarms: list[dict[str, Any]] = []
        self._alarms_lock = threading.Lock()  # the badge reader's thread raises alarms too
        self._log_failures = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def mode(self) -> str:
        return self.policy.mode

    # -- what the loop calls ---------------------------------------------------------------------------------

    def on_recognised(self, person: str, distance: float | None = None, now: float | None = None
                      ) -> AccessResult | None:
        """The decider would unlock for ``person`` (mode face). ``None`` in mode badge+face (nothing to do)."""
        if self.mode != MODE_FACE:
            return None
        at = self._wall()
        verdict = self._verdict(person, at)
        threshold = self._one_to_n()
        return self._decided(verdict, MODE_FACE, at, self._now(now), person=person, distance=distance,
                             threshold=None if threshold is None else threshold.value)

    def on_unknown(self, distance: float | None = None, now: float | None = None) -> AccessResult:
        """A face that is nobody enrolled, as the loop reports it (rate-limited there): logged, no event of its own."""
        threshold = self._one_to_n()
        result = AccessResult(False, NOT_RECOGNISED, self.mode, distance=_round(distance), report=False,
                              threshold=None if threshold is None else threshold.value)
        self._write(result, self._wall())
        return result

    def on_face(self, encoding: np.ndarray | None, face_px: float, now: float | None = None) -> list[AccessResult]:
        """A frame's face (mode badge+face; nothing to do in mode face)."""
        if self.mode != MODE_BADGE_FACE or encoding is None or face_px < self.min_face_px:
            return []
        t = self._now(now)
        results = self._outcomes(self.session.expire(t), t)
        pending = self.session.pending
        if pending is None and t < self._quiet_until:
            return results
        distance, threshold = (None, 0.0) if pending is None else self._verify_distance(pending, encoding)
        return results + self._outcomes(self.session.face(t, distance, threshold), t, threshold)

    def on_badge(self, text: str | None, now: float | None = None, *, problem: str | None = None
                 ) -> list[AccessResult]:
        """A badge read: its text as the reader gave it, or ``problem`` when the reader could not make one out."""
        t, at = self._now(now), self._wall()
        if problem is None:
            try:
                badge = check_badge_id(text)
            except ValueError as err:
                problem = str(err).split(" (")[0]
        if problem is not None:
            return [self._decided(Verdict(False, BADGE_UNREADABLE, problem), self.mode, at, t)]
        if self.mode != MODE_BADGE_FACE:
            log.info("a badge was read at a door in mode %s: ignored", self.mode)
            return []
        try:
            snapshot: AccessSnapshot | None = self.access.snapshot()
        except (StoreError, OSError) as err:
            snapshot, why = None, str(err)
        if snapshot is None:
            self.session.refuse()
            return [self._decided(Verdict(False, UNDECIDABLE, why), MODE_BADGE_FACE, at, t,
                                  badge=badge_fingerprint(badge))]
        owner = snapshot.badges.get(badge)
        results = self._outcomes(self.session.badge(t, owner, badge_fingerprint(badge)), t)
        if owner is not None:
            verdict = self._verdict(owner, at, snapshot)
            if not verdict.granted:  # refused before any face: the door stays shut, the badge window is closed
                self.session.refuse()
                results.append(self._decided(verdict, MODE_BADGE_FACE, at, t, person=owner,
                                             badge=badge_fingerprint(badge)))
        return results

    def poll(self, now: float | None = None) -> list[AccessResult]:
        """The badge reads the reader thread has queued, and the badge windows that ran out by ``now``."""
        t = self._now(now)
        results: list[AccessResult] = []
        while True:
            try:
                read = self._reads.get_nowait()
            except queue.Empty:
                break
            results += self.on_badge(read.badge, t, problem=read.problem)
        return results + self._outcomes(self.session.expire(t), t)

    def deny(self, reason: str, *, person: str | None = None, distance: float | None = None, detail: str = "",
             now: float | None = None) -> AccessResult:
        """Log and report a denial decided elsewhere (e.g. ``presentation_attack``)."""
        return self._decided(Verdict(False, reason, detail), self.mode, self._wall(), self._now(now), person=person,
                             distance=distance)

    def allows_command_unlock(self, now: float | None = None) -> AccessResult:
        """A remote ``unlock`` command: refused (``lockdown``) during a lockdown, else granted; logged either way."""
        at = self._wall()
        locked = self._lockdown or self.policy.in_lockdown(at)
        verdict = Verdict(False, "lockdown", "the door is in lockdown") if locked else Verdict(True, GRANTED)
        return self._decided(verdict, "command", at, self._now(now))

    def set_lockdown(self, on: bool, *, by: str = "command") -> None:
        """Start or end a lockdown (an authenticated command): nothing unlocks through here while it lasts."""
        if on != self._lockdown:
            log.warning("lockdown %s by %s", "started" if on else "ended", by)
        self._lockdown = bool(on)

    @property
    def lockdown(self) -> bool:
        """Whether a lockdown set by :meth:`set_lockdown` is on (scheduled ones: ``policy.in_lockdown``)."""
        return self._lockdown

    def alarms(self) -> list[dict[str, Any]]:
        """Conditions found since the last call, each the ``detail`` of an ``alarm`` event."""
        with self._alarms_lock:
            found, self._alarms = self._alarms, []
        return found

    def _alarm(self, detail: dict[str, Any]) -> None:
        with self._alarms_lock:
            self._alarms.append(detail)

    def startup_problems(self) -> list[str]:
        """What the door should say at start: groups of the policy that nobody in the store has, no access log."""
        problems = []
        if self.access_log is None:
            problems.append("no access log: decisions are not kept on the door")
        named = set(self.policy.groups or ()) | {g for s in self.policy.schedules or () for g in s.groups or ()}
        try:
            have = self.access.snapshot().groups()
        except (StoreError, OSError) as err:
            return [*problems, f"the access data cannot be read: {err}"]
        problems += [f"access policy names group {g!r}, which nobody in the store has" for g in sorted(named - have)]
        return problems

    # -- lifetime --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the badge reader thread (if any) and the access log's retention purge."""
        if self._badge_reader is not None:
            self._spawn("badge-reader", read_badges, self._badge_reader, self._reads.put, self._alarm,
                        self._stop)
        if self.access_log is not None:
            self._spawn("access-log-purge", purge_log, self.access_log, self._wall, self.retention_days, self._stop)

    def close(self) -> None:
        """Stop the threads and close the log and the store reader; idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        if self.access_log is not None:
            self.access_log.close()
        close = getattr(self.access, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> AccessControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _verdict(self, person: str, at: datetime, snapshot: AccessSnapshot | None = None) -> Verdict:
        try:
            snapshot = snapshot or self.access.snapshot()
            found = snapshot.person(person)
            if found is None:
                return Verdict(False, UNDECIDABLE, f"{person} has no record in the store now")
            return evaluate(found, self.policy, at, lockdown=self._lockdown)
        except (StoreError, OSError) as err:
            return Verdict(False, UNDECIDABLE, str(err))
        except Exception as err:  # the door stays shut for whatever cannot be decided, and says why
            log.exception("access decision for %s failed", person)
            return Verdict(False, UNDECIDABLE, f"{type(err).__name__}: {err}")

    def _one_to_n(self) -> Threshold | None:
        return None if self.gallery is None else self.gallery.last_threshold

    def _verify_distance(self, person: str, encoding: np.ndarray) -> tuple[float | None, float]:
        """The face's distance to ``person``'s template (``None``: no template) and the 1:1 threshold."""
        if self.gallery is None:  # nothing to compare with: a mismatch, never a match
            return None, 0.0
        people, rows = self.gallery.matrix()
        if self._verify is None or self._verify[0] is not rows:
            one_to_n = self.gallery.last_threshold
            threshold = verify_threshold(rows, self.gallery.strangers, card_threshold=self.gallery.card_threshold,
                                         target_fpir=self.gallery.target_fpir, override=self.verify_override,
                                         one_to_n=one_to_n)
            self._verify = (rows, threshold)
            log.info("badge+face: 1:1 threshold %.3f (%s)%s", threshold.value, threshold.source,
                     f"; {threshold.note}" if threshold.note else "")
        value = self._verify[1].value
        if person not in people:
            return None, value
        row = rows[people.index(person)]
        return float(np.linalg.norm(np.asarray(row, np.float32) - np.asarray(encoding, np.float32))), value

    def _outcomes(self, outcomes: list[BadgeOutcome], now: float, threshold: float | None = None
                  ) -> list[AccessResult]:
        results = []
        for outcome in outcomes:
            at = self._wall()
            if outcome.reason == FACE_WITHOUT_BADGE:
                if not self._may_report(FACE_WITHOUT_BADGE, None, now):
                    continue  # one denial per interval, not one per frame
                verdict = Verdict(False, FACE_WITHOUT_BADGE, "a face at a badge+face door without a badge read")
            else:
                if outcome.faces:  # whoever was let in or refused is still in front of the camera: no
                    self._quiet_until = now + self.session.window_seconds  # face_without_badge for them
                if outcome.granted:  # evaluated again: the access data may have changed since the badge was read
                    verdict = self._verdict(outcome.person or "", at)
                else:
                    verdict = Verdict(False, outcome.reason, f"{outcome.faces} face(s) seen in the badge window")
            results.append(self._decided(verdict, MODE_BADGE_FACE, at, now, person=outcome.person,
                                         distance=outcome.distance, threshold=threshold, badge=outcome.badge))
        return results

    def _may_report(self, reason: str, who: str | None, now: float) -> bool:
        key = (reason, who)
        if now - self._last_report.get(key, float("-inf")) < self.report_interval:
            return False
        self._last_report[key] = now
        return True

    def _decided(self, verdict: Verdict, mode: str, at: datetime, now: float, *, person: str | None = None,
                 distance: float | None = None, threshold: float | None = None,
                 badge: str | None = None) -> AccessResult:
        report = verdict.granted or verdict.reason == FACE_WITHOUT_BADGE or self._may_report(
            verdict.reason, person or badge, now)
        result = AccessResult(verdict.granted, verdict.reason, mode, person, _round(distance), _round(threshold),
                              badge, report, verdict.detail)
        self._write(result, at)
        (log.info if verdict.granted else log.warning)("access %s: %s %s%s", "granted" if verdict.granted
                                                        else "denied", person or "unknown", verdict.reason,
                                                        f" ({verdict.detail})" if verdict.detail else "")
        return result

    def _write(self, result: AccessResult, at: datetime) -> None:
        if self.access_log is None:
            return
        record = AccessRecord(utc_text(at), self.device_id, result.person, result.mode,
                              "granted" if result.granted else "denied", result.reason, result.distance,
                              result.threshold, result.badge)
        if not self.access_log.record(record) and self._log_failures == 0:
            self._alarm({"reason": "access_log_write_failed", "path": str(self.access_log.path)})
            self._log_failures += 1

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def open_access_control(config: Any, *, gallery: Any) -> AccessControl:
    """The access control of a door config (:class:`edge.config.Config`), not started: the policy of ``[access]``,
    the store's access data, the access log (an alarm, not an error, if it cannot be opened: the door still works)
    and the badge reader of ``[access.badge]``."""
    from edge.devices.badge import open_badge_reader
    from edge.errors import AccessLogError

    section, rec = config.access, config.recognition
    try:
        access_log: AccessLog | None = AccessLog(section.log_path)
    except AccessLogError as err:
        log.error("%s: decisions are not kept on the door", err)
        access_log = None
    control = AccessControl(
        device_id=config.device.id, policy=section.policy(), access=AccessReader(config.store.path),
        access_log=access_log, gallery=gallery, verify_override=section.verify_threshold,
        window_seconds=section.badge_window_seconds, votes_needed=rec.votes_needed, votes_window=rec.votes_window,
        min_face_px=rec.min_face_px, report_interval=section.denied_report_interval_seconds,
        badge_reader=(lambda: open_badge_reader(section.badge)) if section.badge is not None else None,
        retention_days=section.log_retention_days)
    if access_log is None:
        control._alarm({"reason": "access_log_not_available", "path": str(section.log_path)})
    return control
