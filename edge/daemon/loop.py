"""The door daemon's loop: camera frame -> face pipeline -> decision -> relay, and events.

The loop always works on the newest frame. Every fault ends with the relay off: the relay is off before
the camera opens, a pulse switches itself off, and every way out of :meth:`DoorDaemon.run` (a signal, an
exception, a dead camera) goes through ``relay.force_off()``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.core.decision import DoorDecider, Sighting
from edge.core.events import Event
from edge.core.gallery import START_DISTANCE, nearest
from edge.core.openset import Threshold
from edge.core.preprocess import l2_normalize
from edge.errors import EndOfStream, FacegateError

log = logging.getLogger(__name__)


@dataclass
class Counters:
    """What the loop has done since start (reported in the ``stopped`` event and by the benchmark)."""

    frames: int = 0
    faces: int = 0
    recognized: int = 0
    unknown: int = 0
    unlocks: int = 0
    frame_errors: int = 0
    camera_faults: int = 0
    matched: int = 0  # frames whose face was within the threshold of someone (a vote)
    fusion_refused: int = 0  # approaches whose frames voted for someone, whose fused face did not match
    attacks: int = 0  # frames at which the presentation-attack checks held an unlock back (enforce) or flagged it
    denied: int = 0  # access decisions that refused someone and were reported (access control)
    timings_ms: dict[str, list[float]] = field(default_factory=dict)

    def add_timing(self, stage: str, ms: float, *, keep: int = 10_000) -> None:
        series = self.timings_ms.setdefault(stage, [])
        if len(series) < keep:
            series.append(ms)


class DoorDaemon:
    """Runs the door. Every collaborator is passed in (opened by the caller, closed by the caller).

    Args:
        device_id: this door's id, in every event.
        camera: has ``read_latest(timeout) -> Frame | None`` (see :mod:`edge.devices.camera.resilient`).
        model: an :class:`edge.core.recognition.FaceModel`; each frame goes through its one face pipeline
            (:mod:`edge.core.pipeline`), the same that ``facegate bench`` times.
        gallery: the enrolled people as an :class:`edge.core.openset.OpenSetGallery` (templates of the store,
            and the 1:N threshold in force for them).
        relay: a :class:`edge.devices.relay.DoorRelay`.
        decider: a :class:`edge.core.decision.DoorDecider`.
        publish: called with every :class:`Event` (MQTT, the terminal, a test's list).
        notifier: a :class:`edge.devices.sdnotify.SystemdNotifier` or ``None``; ``READY=1`` goes out with the
            first frame (everything is open then), ``WATCHDOG=1`` from the loop, ``STOPPING=1`` at the end.
        door_inputs, door_monitor: :class:`edge.devices.inputs.DoorInputs` and
            :class:`edge.core.door_monitor.DoorMonitor` for door-held-open and door-forced alarms, or ``None``
            without a door contact.
        frame_timeout: seconds to wait for a frame before checking the stop flag again.
        clock: monotonic seconds.
        fuse_frames: confirm each unlock on the fused encodings of the frames that voted for it.
        report_closest: name, in ``unknown`` events, the enrolled person an unknown face is nearest to (it tells
            whoever reads the events whom a stranger resembles: whom to impersonate). Off by default.
        startup_alarms: ``alarm`` event details found while opening (an outbox that is not durable), sent
            right after ``started``.
        unlock: ``unlock(cause, person) -> bool`` pulses the relay and records why (the runner's; default: the
            relay's own ``pulse()``).
        store_watch: has ``check() -> str | None`` (:class:`edge.daemon.store_watch.FollowedStore`): asked
            every frame whether the store was deleted or replaced on disk; each change is an ``alarm``.
        presentation: a :class:`edge.core.presentation.PresentationCheck` asked about the frames of every
            approach that would unlock (``None``: liveness off).
        frozen_watch: a :class:`edge.core.presentation.FrozenCameraWatch` shown every frame; a frozen camera is
            a ``camera_fault`` (``None``: not watched).
        access: an :class:`edge.daemon.access.AccessControl` asked before every unlock (the door's policy, badge+face,
            the access log); ``None``: everyone enrolled, at every hour, face alone.
    """

    def __init__(self, *, device_id: str, camera, model, gallery, relay, decider: DoorDecider,
                 publish: Callable[[Event], None], notifier=None, frame_timeout: float = 1.0,
                 door_inputs=None, door_monitor=None, clock: Callable[[], float] = time.monotonic,
                 fuse_frames: bool = True, report_closest: bool = False,
                 startup_alarms: list[dict] | None = None,
                 unlock: Callable[[str, str | None], bool] | None = None, store_watch: Any = None,
                 presentation: Any = None, frozen_watch: Any = None, access: Any = None):
        self.device_id = device_id
        self.camera = camera
        self.model = model
        self.gallery = gallery
        self._threshold: Threshold | None = None
        self.relay = relay
        self.decider = decider
        self._publish = publish
        self.notifier = notifier
        self.door_inputs = door_inputs
        self.door_monitor = door_monitor
        self.frame_timeout = frame_timeout
        self.clock = clock
        self.fuse_frames = fuse_frames
        self.report_closest = report_closest
        self.startup_alarms = list(startup_alarms or [])
        self._unlock = unlock
        self.store_watch = store_watch
        self.presentation = presentation
        self.frozen_watch = frozen_watch
        self.access = access
        self._recent: deque[Sighting] = deque(maxlen=decider.votes_window)  # faces of the last frames (badge+face)
        self.counters = Counters()
        self._watchdog_every = notifier.watchdog_interval() if notifier is not None else None
        self._last_watchdog = float("-inf")

    def event(self, type_: str, **fields) -> Event:
        event = Event(type_, self.device_id, **fields)
        try:
            self._publish(event)
        except Exception:  # reporting must never stop the door: log and go on
            log.exception("could not publish %s event %s", type_, event.id)
        return event

    def run(self, stop: threading.Event, *, max_frames: int | None = None) -> Counters:
        """Run until ``stop`` is set (or ``max_frames`` frames were processed); the relay is off after."""
        ready = False
        try:
            self.relay.force_off()
            while not stop.is_set():
                self._ping_watchdog()
                try:
                    frame = self.camera.read_latest(self.frame_timeout)
                except EndOfStream:
                    log.info("the replay has ended")
                    break
                if frame is None:
                    continue
                if not ready:  # camera, relay, store and model are all open: tell systemd and the office
                    ready = True
                    threshold = self._threshold = self.gallery.threshold
                    log.info("1:N %s", threshold.describe())
                    self.event("started", detail={"threshold": threshold.as_dict(),
                                                  "model": self.model.model_sha256[:12]})
                    for detail in self.startup_alarms:
                        self.event("alarm", detail=detail)
                    if self.notifier is not None:
                        self.notifier.ready("watching the door")
                self._check_store()
                self._poll_access(frame.time)
                self.process(frame.image, now=frame.time)
                for reason in self.check_door():
                    self.event("alarm", detail={"reason": reason})
                if max_frames is not None and self.counters.frames >= max_frames:
                    break
        finally:
            self.relay.force_off()
            if self.notifier is not None:
                self.notifier.stopping()
        self.event("stopped", detail={k: v for k, v in self.counters.__dict__.items() if k != "timings_ms"})
        return self.counters

    def _confirm(self, votes: list[Sighting]) -> bool:
        """Asked before an unlock about the frames that voted for it: the fused face must match (when fusing),
        then the presentation-attack checks must find a live person (when enforcing)."""
        if self.fuse_frames and not self._fused_match(votes):
            return False
        return self._live(votes)

    def _live(self, votes: list[Sighting]) -> bool:
        """The presentation-attack checks on the frames behind one unlock: ``False`` holds it back (enforce)."""
        if self.presentation is None:
            return True
        try:
            assessment = self.presentation.assess(votes)
        except FacegateError as exc:  # a model that fails cannot vouch for anyone
            log.warning("the liveness check failed: %s", exc)
            assessment = None
        if assessment is not None and assessment.live:
            return True
        self.counters.attacks += 1
        refused = self.presentation.enforcing
        person = votes[-1].identity
        if self.presentation.should_report(person, votes[-1].time):
            detail = assessment.as_dict() if assessment is not None else {"reasons": ["check_failed"]}
            distance = round(votes[-1].distance, 4) if math.isfinite(votes[-1].distance) else None
            self.event("presentation_attack", person=person, distance=distance,
                       detail={**detail, "mode": self.presentation.mode, "refused": refused})
            if refused and self.access is not None:  # into the access log, reported once per approach
                self.access.deny("presentation_attack", person=person, distance=distance,
                                 detail=", ".join(detail["reasons"]), now=votes[-1].time)
        log.info("presentation attack suspected for %s (%s): %s", person,
                 ", ".join(assessment.reasons) if assessment is not None else "check failed",
                 "refused" if refused else "reported only")
        return not refused

    def _fused_match(self, votes: list[Sighting]) -> bool:
        """The frames that voted for one person, fused (mean of their encodings, normalised) and matched once
        more: the door opens only if the fused face is that person too, within the threshold."""
        encodings = [v.encoding for v in votes if v.encoding is not None]
        if len(encodings) != len(votes):
            return False
        fused = l2_normalize(np.mean(np.stack(encodings), axis=0))
        dist, who = nearest(fused, *self.gallery.matrix())
        if who == votes[-1].identity and self.gallery.accepts(dist):
            return True
        self.counters.fusion_refused += 1
        log.info("the frames of one approach voted for %s, their fused face did not match (%s at %.3f)",
                 votes[-1].identity, who, dist)
        return False

    def _poll_access(self, now: float) -> None:
        """Badge reads and badge windows that ran out, and the access control's alarms (every frame)."""
        if self.access is None:
            return
        for result in self.access.poll(now):
            self._act(result)
        for detail in self.access.alarms():
            self.event("alarm", detail=detail)

    def _act(self, result: Any, timings: dict[str, float] | None = None) -> None:
        """An access decision: a grant unlocks (the presentation checks having looked at the recent frames when a
        badge decided), a reported denial is a ``denied`` event."""
        if result.granted:
            if result.mode != "face" and not self._live(list(self._recent)):
                return  # badge+face: a photo of the badge holder held up
            self._grant(result.person, result.distance, result.cause, result.event_detail(), timings)
        elif result.report:
            self.counters.denied += 1
            self.event("denied", person=result.person, distance=result.distance, timings_ms=timings or {},
                       detail=result.event_detail())

    def _grant(self, person: str | None, distance: float | None, cause: str, detail: dict[str, Any],
               timings: dict[str, float] | None) -> None:
        """Let ``person`` in: a ``recognized`` event, then the relay's pulse (``door_unlocked`` names ``cause``)."""
        self.counters.recognized += 1
        self.event("recognized", person=person, distance=distance, timings_ms=timings or {},
                   detail={**detail, "frame": self.counters.frames})
        if self._unlock(cause, person) if self._unlock is not None else self.relay.pulse():
            self.counters.unlocks += 1

    def _watch_frozen(self, image: np.ndarray, now: float) -> None:
        """A camera that keeps delivering the same picture is a camera fault (and no live person's frames)."""
        if self.frozen_watch is None:
            return
        change = self.frozen_watch.observe(image, now)
        if change == "camera_frozen":
            self.counters.camera_faults += 1
            log.warning("the camera delivers the same picture over and over: frozen?")
            self.event("camera_fault", detail={"error": "the camera delivers the same picture over and over",
                                               "reason": change})
        elif change is not None:
            log.info("the camera delivers new pictures again")
            self.event("camera_fault", detail={"error": "the camera delivers new pictures again", "reason": change})

    def _check_store(self) -> None:
        """An alarm when the store file was deleted or replaced under the running door (never silent)."""
        if self.store_watch is None:
            return
        change = self.store_watch.check()
        if change is not None:
            log.warning("%s", change)
            self.event("alarm", detail={"reason": "store_changed", "detail": change})

    def _note_threshold(self) -> None:
        """Log when the threshold in force changes (someone enrolled or removed while the door runs)."""
        now = self.gallery.last_threshold  # the frame's search just refreshed it: no second store read
        if self._threshold is not None and now != self._threshold:
            log.info("the enrolled people changed: 1:N %s", now.describe())
        self._threshold = now

    def check_door(self) -> list[str]:
        """New door alarms (held open, forced) from the door monitor, if the door has a contact."""
        if self.door_monitor is None or self.door_inputs is None:
            return []
        return self.door_monitor.update(relay_on=self.relay.is_on, door_open=self.door_inputs.door_open,
                                        now=self.clock())

    def _ping_watchdog(self) -> None:
        if self._watchdog_every is None:
            return
        now = self.clock()
        if now - self._last_watchdog >= self._watchdog_every:
            self.notifier.watchdog()
            self._last_watchdog = now

    def process(self, image: np.ndarray, *, now: float) -> None:
        """One frame: ``(H, W, 3)`` uint8 RGB taken at monotonic time ``now``, through the face pipeline."""
        self.counters.frames += 1
        timings: dict[str, float] = {}
        try:
            analysis = self.model.analyse(image, database=self.gallery, timings=timings)
        except FacegateError as exc:
            self.counters.frame_errors += 1
            log.warning("frame %d skipped: %s", self.counters.frames, exc)
            return
        finally:
            for stage, ms in timings.items():
                self.counters.add_timing(stage, ms)
        self._watch_frozen(analysis.image, now)
        face = analysis.face
        if face is None:
            self.decider.no_face(now)
            return
        self.counters.faces += 1
        dist = analysis.distance if analysis.distance is not None else START_DISTANCE
        identity = analysis.closest if self.gallery.accepts(dist) else None
        self.counters.matched += identity is not None
        self._note_threshold()
        sighting = Sighting(now, identity, dist, face.size, analysis.encoding, analysis.image, face)
        self._recent.append(sighting)
        rounded = {k: round(v, 2) for k, v in timings.items() if k != "decode"}
        if self.access is not None and self.access.mode != "face":  # badge+face: the badge names whom to compare
            for result in self.access.on_face(analysis.encoding, face.size, now):
                self._act(result, rounded)
            return
        decision = self.decider.observe(sighting, confirm=self._confirm)
        if decision.unlock is not None and self.access is not None:
            result = self.access.on_recognised(decision.unlock, round(dist, 4), now)
            if result is not None:
                self._act(result, rounded)
        elif decision.unlock is not None:
            self._grant(decision.unlock, round(dist, 4), "face", {}, rounded)
        elif decision.report_unknown:
            self.counters.unknown += 1
            if self.access is not None:
                self.access.on_unknown(round(dist, 4), now)
            self.event("unknown", distance=round(dist, 4), timings_ms=rounded,
                       detail={"face_px": round(face.size, 1),
                               **({"closest": analysis.closest} if self.report_closest else {})})
