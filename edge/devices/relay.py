"""The door strike relay, the door contact and exit button, and the door alarms.

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

from edge.errors import FacegateError

log = logging.getLogger(__name__)


def _open_device(kind: str, pin, make: Callable):
    """``make()`` a gpiozero device; any gpiozero or OS error becomes a one-line :class:`FacegateError`."""
    from gpiozero import GPIOZeroError

    try:
        return make()
    except (GPIOZeroError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FacegateError(f"{kind} pin {pin!r} is not a valid GPIO pin: {first_line}") from exc


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
        FacegateError: invalid pin, pin in use, no usable GPIO, or ``pulse_seconds`` not > 0.
    """

    def __init__(self, pin: int | str, *, active_high: bool = True, pulse_seconds: float = 3.0, pin_factory=None,
                 clock: Callable[[], float] = time.monotonic, on_change: Callable[[bool], object] | None = None):
        if not (isinstance(pulse_seconds, (int, float)) and math.isfinite(pulse_seconds) and pulse_seconds > 0):
            raise FacegateError(f"relay pulse_seconds must be a finite number > 0, got {pulse_seconds!r}")
        from gpiozero import OutputDevice

        self.pin = pin
        self.active_high = active_high
        self.pulse_seconds = float(pulse_seconds)
        self.clock = clock
        self.on_change = on_change
        self._device = _open_device("relay", pin, lambda: OutputDevice(
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
            FacegateError: ``seconds`` not > 0, or the pin could not be switched (the relay is then forced off).
        """
        if seconds is None:
            seconds = self.pulse_seconds
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            raise FacegateError(f"relay pulse length must be a finite number > 0 s, got {seconds!r}")
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
                    raise FacegateError(f"relay pin {self.pin!r} could not be switched on: {exc}") from exc
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
            raise FacegateError(f"relay pin {self.pin!r} could not be switched off: {exc}") from exc
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


def _safe_call(name: str, callback: Callable[[], object] | None) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("door %s callback failed", name)


class DoorInputs:
    """The optional door contact (reed switch) and inside exit button.

    Default wiring: each input between the GPIO and ground, with the internal pull-up (``pull_up=True``); the
    exit button is pressed when its pin is low; the reed switch is held closed by the magnet of the shut door,
    so the door is open when the contact pin is high (``door_open_when_high=True``). With external pull-downs
    and switches to 3V3 (``pull_up=False``), pass ``door_open_when_high=False``.

    Args:
        contact_pin, exit_pin: GPIOs (BCM number or gpiozero name), ``None`` if not fitted.
        door_open_when_high: the contact pin level that means "door open".
        pull_up: internal pull-up (``True``) or pull-down (``False``) on both inputs.
        bounce_seconds: switch debounce time.
        pin_factory: a gpiozero pin factory (``None``: gpiozero's default).
        on_exit_pressed, on_door_opened, on_door_closed: called with no argument from gpiozero's event thread;
            their exceptions are logged.

    Raises:
        FacegateError: an invalid or busy pin, or both inputs on the same pin.
    """

    def __init__(self, *, contact_pin: int | str | None = None, exit_pin: int | str | None = None,
                 door_open_when_high: bool = True, pull_up: bool = True, bounce_seconds: float = 0.05,
                 pin_factory=None, on_exit_pressed: Callable[[], object] | None = None,
                 on_door_opened: Callable[[], object] | None = None,
                 on_door_closed: Callable[[], object] | None = None):
        from gpiozero import Button, DigitalInputDevice

        self.door_open_when_high = door_open_when_high
        self.pull_up = pull_up
        self.on_exit_pressed = on_exit_pressed
        self.on_door_opened = on_door_opened
        self.on_door_closed = on_door_closed
        bounce = bounce_seconds if bounce_seconds > 0 else None
        self._contact = self._exit = None
        try:
            if contact_pin is not None:
                self._contact = _open_device("door contact", contact_pin, lambda: DigitalInputDevice(
                    contact_pin, pull_up=pull_up, bounce_time=bounce, pin_factory=pin_factory))
                # gpiozero calls "active" the level opposite the pull; both edges just re-read the door state.
                self._contact.when_activated = self._contact_changed
                self._contact.when_deactivated = self._contact_changed
            if exit_pin is not None:
                self._exit = _open_device("exit button", exit_pin, lambda: Button(
                    exit_pin, pull_up=pull_up, bounce_time=bounce, pin_factory=pin_factory))
                self._exit.when_pressed = self._exit_pressed
        except BaseException:
            self.close()
            raise
        log.info("door inputs: contact %s, exit button %s", contact_pin, exit_pin)

    def __enter__(self) -> DoorInputs:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def door_open(self) -> bool | None:
        """``True`` open, ``False`` shut, ``None`` without a contact (or after :meth:`close`)."""
        contact = self._contact
        if contact is None:
            return None
        try:
            active = contact.is_active
        except Exception:  # closed from another thread meanwhile
            return None
        pin_high = active != self.pull_up  # active = pulled away from the pull's level
        return pin_high == self.door_open_when_high

    def close(self) -> None:
        """Release both pins. Safe to call twice."""
        for device in (self._contact, self._exit):
            if device is not None:
                device.close()
        self._contact = self._exit = None

    def _contact_changed(self) -> None:
        is_open = self.door_open
        if is_open is None:
            return
        log.info("door %s", "opened" if is_open else "closed")
        _safe_call("opened" if is_open else "closed", self.on_door_opened if is_open else self.on_door_closed)

    def _exit_pressed(self) -> None:
        log.info("exit button pressed")
        _safe_call("exit button", self.on_exit_pressed)


class DoorMonitor:
    """Door alarms from samples of the relay and contact state; pure logic, no threads, no I/O.

    Call :meth:`update` often (every frame). Alarm reasons:

    * ``"door_forced"``: the door was seen opening while the relay was off and had not been seen on within
      ``grace_seconds`` (a contact that reports late, a sample that fell just after the pulse);
    * ``"door_held_open"``: the door has stayed open ``held_open_seconds`` since it was first seen open.

    Each is reported once per opening. A door already open at the first sample is not called forced (its
    opening was not seen), but its held-open time counts from that sample. ``door_open=None`` (no contact,
    unknown) forgets the current opening and reports nothing.

    Args:
        held_open_seconds: open longer than this is an alarm (> 0).
        grace_seconds: an opening this soon after the relay was last seen on is an entry, not forced (>= 0).
        clock: monotonic seconds, used when :meth:`update` gets no ``now``.
    """

    def __init__(self, *, held_open_seconds: float = 30.0, grace_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        if not held_open_seconds > 0:
            raise FacegateError(f"held_open_seconds must be > 0, got {held_open_seconds!r}")
        if not grace_seconds >= 0:
            raise FacegateError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
        self.held_open_seconds = held_open_seconds
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._last_relay_on = -math.inf
        self._was_open: bool | None = None
        self._opened_at: float | None = None
        self._held_reported = False

    def update(self, *, relay_on: bool, door_open: bool | None, now: float | None = None) -> list[str]:
        """Take one sample; return the alarm reasons it raises (usually ``[]``)."""
        now = self.clock() if now is None else now
        if relay_on:
            self._last_relay_on = now
        alarms: list[str] = []
        if door_open is None or not door_open:
            self._opened_at = None
            self._held_reported = False
        else:
            if self._opened_at is None:
                self._opened_at = now
                if self._was_open is False and now - self._last_relay_on > self.grace_seconds:
                    alarms.append("door_forced")
            if not self._held_reported and now - self._opened_at >= self.held_open_seconds:
                self._held_reported = True
                alarms.append("door_held_open")
        self._was_open = door_open
        for reason in alarms:
            log.warning("door alarm: %s", reason)
        return alarms
