"""The door strike relay: an electric strike switched on only for bounded pulses.

Fail-secure rules of :class:`DoorRelay`:

* the relay is driven off when it is opened (gpiozero ``initial_value=False``, for active-high and active-low
  boards alike), so a restart after a crash or ``kill -9`` locks the door;
* it is on for at most ``pulse_seconds`` after the last grant: the off is scheduled on a timer thread, and
  every :meth:`DoorRelay.pulse` and :attr:`DoorRelay.is_on` also switches it off if that timer is overdue;
* :meth:`DoorRelay.force_off`, :meth:`DoorRelay.close`, leaving a ``with`` block (whatever the exception) and
  interpreter exit (a ``weakref.finalize`` hook, for an owner that forgot ``close``) switch it off;
* the ``on_change`` callback runs outside the relay's lock, after the pin has changed: a callback that raises is
  logged, one that blocks delays only other callbacks, never a switch-off.

gpiozero is imported inside the constructors, so importing this module has no GPIO side effect. Pins are
BCM numbers (``17``) or gpiozero pin names (``"GPIO17"``, ``"BOARD11"``); hardware comes in as a gpiozero
``pin_factory`` (``None``: gpiozero's default; tests pass ``gpiozero.pins.mock.MockFactory()``).
Times are seconds; clocks are monotonic.
"""


from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from edge.devices.pins import open_device
from edge.errors import RelayError

log = logging.getLogger(__name__)


def _release(device) -> None:
    """Drive ``device`` off, then give its pin back. Never holds a reference to the :class:`DoorRelay`."""
    from gpiozero import GPIOZeroError

    try:
        device.off()
    except GPIOZeroError:  # closed already (gpiozero's own exit hook ran first): the pin is released
        pass
    finally:
        device.close()


class DoorRelay:
    """An electric strike on a relay, switched on only for bounded pulses.

    Args:
        pin: GPIO of the relay, a BCM number or a gpiozero pin name.
        active_high: ``True`` if the relay closes when the pin is high; ``False`` for active-low boards (the
            pin then idles high). Note: :meth:`close` returns the pin to an input, as gpiozero does; active-low
            boards keep the relay off through their own pull-up.
        pulse_seconds: how long a :meth:`pulse` unlocks the door, and the longest any pulse may be (> 0 s).
        pin_factory: a gpiozero pin factory (``None``: gpiozero's default).
        clock: monotonic seconds, for the overdue-timer guard.
        on_change: called with ``True`` when the relay switches on and ``False`` when it switches off, once per
            real change and in order, from the thread that made the change (the caller of :meth:`pulse`, the
            timer thread, the caller of :meth:`force_off` / :meth:`close`). Its exceptions are logged.

    Raises:
        RelayError: invalid pin, pin in use, no usable GPIO, or ``pulse_seconds`` not > 0.
    """

    def __init__(self, pin: int | str, *, active_high: bool = True, pulse_seconds: float = 3.0, pin_factory=None,
                 clock: Callable[[], float] = time.monotonic, on_change: Callable[[bool], object] | None = None):
        if not (isinstance(pulse_seconds, (int, float)) and math.isfinite(pulse_seconds) and pulse_seconds > 0):
            raise RelayError(f"relay pulse_seconds must be a finite number > 0, got {pulse_seconds!r}")
        from gpiozero import OutputDevice

        self.pin = pin
        self.active_high = active_high
        self.pulse_seconds = float(pulse_seconds)
        self.clock = clock
        self.on_change = on_change
        self._device = open_device("relay", pin, lambda: OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory))
        self._finalizer = weakref.finalize(self, _release, self._device)
        self._lock = threading.Lock()
        self._on = False
        self._closed = False
        self._deadline = -math.inf  # clock() time the current pulse ends
        self._timer: threading.Timer | None = None
        self._generation = 0  # bumped on every (re)schedule or off, so a stale timer does nothing
        self._changes: deque[bool] = deque()  # on/off changes not yet reported to on_change, in order
        self._notify_lock = threading.Lock()
        log.info("relay on pin %s ready (active_%s, pulse %.2f s), off", pin, "high" if active_high else "low",
                 self.pulse_seconds)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("on" if self._on else "off")
        return f"DoorRelay(pin={self.pin!r}, active_high={self.active_high}, {state})"

    def __enter__(self) -> DoorRelay:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_on(self) -> bool:
        """``True`` while the relay is on. Switches it off first if its pulse is overdue (a timer that did not run)."""
        with self._lock:
            self._off_if_overdue_locked()
            on = self._on
        self._report_changes()
        return on

    def pulse(self, seconds: float | None = None) -> bool:
        """Unlock: relay on now, off after ``seconds`` (default and maximum ``pulse_seconds``). Does not block.

        A pulse while the relay is already on extends the unlock to end ``seconds`` from now (never more than
        ``pulse_seconds`` after this call; never shortens it): every grant gets its full walk-through time.

        Returns:
            ``True`` if the door is unlocked by this call (switched on or extended); ``False`` after :meth:`close`.

        Raises:
            RelayError: ``seconds`` not > 0, or the pin could not be switched (the relay is then forced off).
        """
        if seconds is None:
            seconds = self.pulse_seconds
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            raise RelayError(f"relay pulse length must be a finite number > 0 s, got {seconds!r}")
        seconds = min(float(seconds), self.pulse_seconds)
        with self._lock:
            if self._closed:
                log.warning("relay on pin %s is closed: pulse refused", self.pin)
                return False
            self._off_if_overdue_locked()
            now = self.clock()
            deadline = max(self._deadline, now + seconds) if self._on else now + seconds
            # The timer is started before the pin goes on, and its delay is capped by pulse_seconds in real
            # time whatever the injected clock says.
            self._schedule_off_locked(min(max(deadline - now, 0.0), self.pulse_seconds))
            self._deadline = deadline
            if not self._on:
                try:
                    self._device.on()
                except Exception as exc:
                    log.exception("relay on pin %s could not be switched on", self.pin)
                    self._cancel_timer_locked()
                    self._deadline = -math.inf
                    try:
                        self._device.off()  # whatever state the failed switch left behind
                    except Exception:
                        log.exception("relay on pin %s could not be switched off either", self.pin)
                    raise RelayError(f"relay pin {self.pin!r} could not be switched on: {exc}") from exc
                self._on = True
                self._changes.append(True)
                log.info("relay on pin %s on for %.2f s", self.pin, seconds)
            else:
                log.info("relay on pin %s: unlock extended to %.2f s from now", self.pin, deadline - now)
        self._report_changes()
        return True

    def force_off(self) -> None:
        """Relay off now and any pending off-timer cancelled. Safe at any time, from any thread, after close."""
        with self._lock:
            if not self._closed:
                self._off_locked()
        self._report_changes()

    def close(self) -> None:
        """Relay off, timer cancelled, pin released. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cancel_timer_locked()
            was_on = self._on
            self._on = False
            try:
                self._finalizer()  # off, then release the pin: exactly once, also at interpreter exit
            finally:
                if was_on:
                    self._changes.append(False)
                timer, self._timer = self._timer, None
        log.info("relay on pin %s closed (off)", self.pin)
        self._report_changes()
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=1.0)

    # -- internals; the *_locked methods need self._lock held --------------------------------------------------------

    def _schedule_off_locked(self, delay: float) -> None:
        self._cancel_timer_locked()
        timer = threading.Timer(delay, self._expire, args=(self._generation,))
        timer.name = f"relay-off-{self.pin}"
        timer.daemon = True
        timer.start()
        self._timer = timer

    def _cancel_timer_locked(self) -> None:
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()

    def _off_locked(self) -> None:
        self._cancel_timer_locked()
        if not self._on:
            return
        try:
            self._device.off()
        except Exception as exc:
            self._deadline = -math.inf  # overdue: the next is_on / pulse tries again
            log.critical("relay on pin %s could NOT be switched off: %s", self.pin, exc)
            raise RelayError(f"relay pin {self.pin!r} could not be switched off: {exc}") from exc
        self._on = False
        self._deadline = -math.inf
        self._changes.append(False)
        log.info("relay on pin %s off", self.pin)

    def _off_if_overdue_locked(self) -> None:
        if self._on and self.clock() >= self._deadline:
            log.warning("relay on pin %s still on past its pulse: switching it off", self.pin)
            self._off_locked()

    def _expire(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation and not self._closed:
                self._off_locked()
        self._report_changes()

    def _report_changes(self) -> None:
        """Hand queued changes to ``on_change`` in order, one thread at a time, outside the state lock.

        A thread that finds another one reporting leaves its change to it; the reporter checks the queue again
        after letting go of the lock, so no change is left behind.
        """
        while self._changes and self._notify_lock.acquire(blocking=False):
            try:
                while self._changes:
                    on = self._changes.popleft()
                    if self.on_change is None:
                        continue
                    try:
                        self.on_change(on)
                    except Exception:
                        log.exception("relay on_change(%s) callback failed", on)
            finally:
                self._notify_lock.release()
