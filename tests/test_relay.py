"""Door relay, door inputs and door alarms on gpiozero's MockFactory pins.

A pulse is asserted from the mock pin's ``states`` history (``PinState(timestamp, state)``, timestamp = seconds
since the previous change). Pulses are 0.05-0.2 s; waits only bound how long a test may hang ("it did turn off").
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.core.door_monitor import DoorMonitor
from edge.devices.inputs import DoorInputs
from edge.devices.relay import DoorRelay
from edge.errors import FacegateError

RELAY_PIN = 17
CONTACT_PIN = 27
EXIT_PIN = 22
HANG_LIMIT = 5.0  # seconds a test waits for the relay to go off before calling it stuck on


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


def on_level(active_high: bool) -> bool:
    return active_high


def pin_is_on(pin, active_high: bool) -> bool:
    return pin.state == on_level(active_high)


def changes_since(pin, start: int, active_high: bool) -> list[tuple[float, bool]]:
    """(seconds since the previous change, relay on?) for each pin change after ``start`` entries."""
    return [(s.timestamp, s.state == on_level(active_high)) for s in pin.states[start:]]


def wait_until_off(pin, active_high: bool) -> bool:
    """Poll the pin (not ``relay.is_on``, whose overdue guard would hide a timer that never ran)."""
    limit = time.monotonic() + HANG_LIMIT
    while pin_is_on(pin, active_high):
        if time.monotonic() > limit:
            return False
        time.sleep(0.005)
    return True


def test_import_has_no_gpiozero_side_effect():
    code = "import sys, edge.devices.relay; sys.exit('gpiozero' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_starts_off(factory, active_high):
    with DoorRelay(RELAY_PIN, active_high=active_high, pin_factory=factory) as relay:
        pin = factory.pin(RELAY_PIN)
        assert pin.function == "output"
        assert pin.state is (not active_high)  # low for active-high boards, high for active-low boards
        assert relay.is_on is False
        # states[0] is the mock's input level before gpiozero claimed the pin; it was then only ever driven off
        assert [on for _, on in changes_since(pin, 1, active_high)] in ([], [False])


@pytest.mark.parametrize("active_high", [True, False])
def test_pulse_goes_on_then_off(factory, active_high):
    calls = []
    with DoorRelay(RELAY_PIN, active_high=active_high, pulse_seconds=0.1, pin_factory=factory,
                   on_change=calls.append) as relay:
        pin = factory.pin(RELAY_PIN)
        start = len(pin.states)
        assert relay.pulse() is True
        assert pin_is_on(pin, active_high)
        assert calls == [True]
        assert wait_until_off(pin, active_high)
        history = changes_since(pin, start, active_high)
        assert [on for _, on in history] == [True, False]
        assert history[1][0] >= 0.09  # on for about the pulse, not cut short
        assert relay.is_on is False
        assert calls == [True, False]


def test_pulse_longer_than_pulse_seconds_is_capped(factory):
    with DoorRelay(RELAY_PIN, pulse_seconds=0.1, pin_factory=factory) as relay:
        pin = factory.pin(RELAY_PIN)
        start = len(pin.states)
        assert relay.pulse(60.0) is True
        assert wait_until_off(pin, True), "a 60 s pulse was not capped at pulse_seconds=0.1"
        assert [on for _, on in changes_since(pin, start, True)] == [True, False]


def test_capped_deadline_is_kept_by_the_guard_too(factory):
    clock = FakeClock()
    with DoorRelay(RELAY_PIN, pulse_seconds=20.0, pin_factory=factory, clock=clock) as relay:
        relay.pulse(600.0)
        clock.t += 20.1
        assert relay.is_on is False
        assert factory.pin(RELAY_PIN).state is False


def test_shorter_pulse_is_honoured(factory):
    with DoorRelay(RELAY_PIN, pulse_seconds=30.0, pin_factory=factory) as relay:
        pin = factory.pin(RELAY_PIN)
        relay.pulse(0.05)
        assert wait_until_off(pin, True)


def test_overdue_pulse_is_switched_off_by_the_guard(factory):
    clock = FakeClock()
    calls = []
    with DoorRelay(RELAY_PIN, pulse_seconds=20.0, pin_factory=factory, clock=clock, on_change=calls.append) as relay:
        pin = factory.pin(RELAY_PIN)
        relay.pulse()
        clock.t += 19.9
        assert relay.is_on is True and pin.state is True
        clock.t += 0.2  # past the deadline, the 20 s timer has not run yet
        assert relay.is_on is False
        assert pin.state is False
        assert calls == [True, False]


def test_pulse_while_on_extends_but_never_beyond_pulse_seconds_from_now(factory):
    clock = FakeClock()
    calls = []
    with DoorRelay(RELAY_PIN, pulse_seconds=20.0, pin_factory=factory, clock=clock, on_change=calls.append) as relay:
        relay.pulse(10.0)
        clock.t += 1.0
        assert relay.pulse(5.0) is True  # a shorter grant does not shorten the current unlock
        clock.t += 8.5
        assert relay.is_on is True
        assert relay.pulse() is True  # extended to 20 s from now
        clock.t += 19.9
        assert relay.is_on is True
        clock.t += 0.2
        assert relay.is_on is False
        assert calls == [True, False]  # one unlock, one lock


def test_exception_inside_with_block_switches_off(factory):
    calls = []
    with pytest.raises(RuntimeError, match="boom"):
        with DoorRelay(RELAY_PIN, pulse_seconds=5.0, pin_factory=factory, on_change=calls.append) as relay:
            relay.pulse()
            assert factory.pin(RELAY_PIN).state is True
            raise RuntimeError("boom")
    pin = factory.pin(RELAY_PIN)
    assert pin.state is False and pin.function == "input"  # off, then released
    assert relay.closed and relay.is_on is False
    assert calls == [True, False]


def test_raising_callback_never_keeps_the_relay_on(factory):
    calls = []

    def explode(on: bool) -> None:
        calls.append(on)
        raise RuntimeError(f"callback failed for {on}")

    with DoorRelay(RELAY_PIN, pulse_seconds=0.05, pin_factory=factory, on_change=explode) as relay:
        pin = factory.pin(RELAY_PIN)
        assert relay.pulse() is True
        assert wait_until_off(pin, True)
        assert calls == [True, False]
        assert relay.pulse() is True  # still works after the failures
        relay.force_off()
        assert pin.state is False
    assert calls == [True, False, True, False]


def test_callback_may_call_the_relay_back(factory):
    calls = []
    holder = []

    def reentrant(on: bool) -> None:
        calls.append((on, holder[0].is_on))
        if on:
            holder[0].force_off()  # e.g. a handler that locks at once

    with DoorRelay(RELAY_PIN, pulse_seconds=5.0, pin_factory=factory, on_change=reentrant) as relay:
        holder.append(relay)
        relay.pulse()
        assert factory.pin(RELAY_PIN).state is False
    assert calls == [(True, True), (False, False)]


def test_close_twice_and_pulse_after_close(factory):
    relay = DoorRelay(RELAY_PIN, pulse_seconds=0.1, pin_factory=factory)
    pin = factory.pin(RELAY_PIN)
    relay.close()
    relay.close()
    start = len(pin.states)
    assert relay.pulse() is False
    relay.force_off()
    assert pin.states[start:] == [] and pin.function == "input"
    DoorRelay(RELAY_PIN, pin_factory=factory).close()  # the pin was released


def test_force_off_from_another_thread(factory):
    calls = []
    with DoorRelay(RELAY_PIN, pulse_seconds=30.0, pin_factory=factory, on_change=calls.append) as relay:
        pin = factory.pin(RELAY_PIN)
        relay.pulse()
        assert pin.state is True
        worker = threading.Thread(target=relay.force_off)
        worker.start()
        worker.join()
        assert pin.state is False
        assert relay.is_on is False
        relay.force_off()  # already off: nothing more happens
        assert calls == [True, False]


def test_close_during_pulse_is_immediate_and_cancels_the_timer(factory):
    calls = []
    relay = DoorRelay(RELAY_PIN, pulse_seconds=0.2, pin_factory=factory, on_change=calls.append)
    pin = factory.pin(RELAY_PIN)
    relay.pulse()
    assert pin.state is True
    relay.close()
    assert pin.state is False
    after_close = list(pin.states)
    assert not [t for t in threading.enumerate() if t.name.startswith("relay-off-") and t.is_alive()]
    time.sleep(0.3)  # past the pulse: the cancelled timer must not touch the pin or report again
    assert pin.states == after_close
    assert calls == [True, False]


def test_concurrent_pulses_and_force_offs_end_off_with_ordered_reports(factory):
    calls = []
    with DoorRelay(RELAY_PIN, pulse_seconds=0.02, pin_factory=factory, on_change=calls.append) as relay:
        pin = factory.pin(RELAY_PIN)
        start = len(pin.states)

        def hammer(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(200):
                if rng.random() < 0.6:
                    relay.pulse(rng.uniform(0.001, 0.05))
                else:
                    relay.force_off()

        workers = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert wait_until_off(pin, True)
        history = [on for _, on in changes_since(pin, start, True)]
    assert history, "the hammering never switched the relay on"
    assert calls == history  # every change reported once, in order
    assert calls[-1] is False
    assert all(a != b for a, b in itertools.pairwise(calls))


@pytest.mark.parametrize("pin", [99, "GPIO99", "3V3", "nonsense", -1])
def test_invalid_relay_pin_is_a_clear_error(factory, pin):
    with pytest.raises(FacegateError, match=rf"^relay pin {pin!r} is not a valid GPIO pin: ") as info:
        DoorRelay(pin, pin_factory=factory)
    assert "\n" not in str(info.value)


def test_relay_pin_in_use_is_a_clear_error(factory):
    with DoorRelay(RELAY_PIN, pin_factory=factory):
        with pytest.raises(FacegateError, match="relay pin 17 .*in use"):
            DoorRelay(RELAY_PIN, pin_factory=factory)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_pulse_lengths_are_refused(factory, bad):
    with pytest.raises(FacegateError, match="pulse_seconds"):
        DoorRelay(RELAY_PIN, pulse_seconds=bad, pin_factory=factory)
    with DoorRelay(RELAY_PIN, pin_factory=factory) as relay:
        with pytest.raises(FacegateError, match="pulse length"):
            relay.pulse(bad)
        assert factory.pin(RELAY_PIN).state is False


# -- door contact and exit button ---------------------------------------------------------------------------------


def test_exit_button_fires_on_press_only(factory):
    presses = []
    with DoorInputs(exit_pin=EXIT_PIN, pin_factory=factory, on_exit_pressed=lambda: presses.append(1)) as inputs:
        pin = factory.pin(EXIT_PIN)
        assert inputs.door_open is None  # no contact fitted
        pin.drive_low()  # pressed: the button pulls the pulled-up pin to ground
        pin.drive_high()
        pin.drive_low()
        assert len(presses) == 2


def test_exit_button_pulses_the_relay(factory):
    with DoorRelay(RELAY_PIN, pulse_seconds=0.05, pin_factory=factory) as relay, \
            DoorInputs(exit_pin=EXIT_PIN, pin_factory=factory, on_exit_pressed=relay.pulse):
        relay_pin = factory.pin(RELAY_PIN)
        factory.pin(EXIT_PIN).drive_low()
        assert relay_pin.state is True
        assert wait_until_off(relay_pin, True)


def test_door_contact_reports_open_and_closed(factory):
    seen = []
    with DoorInputs(contact_pin=CONTACT_PIN, pin_factory=factory, on_door_opened=lambda: seen.append("opened"),
                    on_door_closed=lambda: seen.append("closed")) as inputs:
        pin = factory.pin(CONTACT_PIN)
        pin.drive_low()  # magnet near: reed switch closed to ground
        assert inputs.door_open is False
        pin.drive_high()  # door opened: the pull-up wins
        assert inputs.door_open is True
        pin.drive_low()
        assert inputs.door_open is False
        assert seen == ["closed", "opened", "closed"]
    assert inputs.door_open is None


def test_door_contact_with_pull_down_and_inverted_level(factory):
    seen = []
    with DoorInputs(contact_pin=CONTACT_PIN, pull_up=False, door_open_when_high=False, pin_factory=factory,
                    on_door_opened=lambda: seen.append("opened"),
                    on_door_closed=lambda: seen.append("closed")) as inputs:
        pin = factory.pin(CONTACT_PIN)
        assert inputs.door_open is True  # pulled down and low: open with this wiring
        pin.drive_high()
        assert inputs.door_open is False
        pin.drive_low()
        assert seen == ["closed", "opened"]


def test_raising_input_callbacks_are_contained(factory):
    def explode() -> None:
        raise RuntimeError("callback failed")

    with DoorInputs(contact_pin=CONTACT_PIN, exit_pin=EXIT_PIN, pin_factory=factory, on_exit_pressed=explode,
                    on_door_opened=explode, on_door_closed=explode) as inputs:
        factory.pin(EXIT_PIN).drive_low()
        factory.pin(CONTACT_PIN).drive_low()
        factory.pin(CONTACT_PIN).drive_high()
        assert inputs.door_open is True


def test_door_inputs_close_twice_releases_pins(factory):
    inputs = DoorInputs(contact_pin=CONTACT_PIN, exit_pin=EXIT_PIN, pin_factory=factory)
    inputs.close()
    inputs.close()
    DoorInputs(contact_pin=EXIT_PIN, exit_pin=CONTACT_PIN, pin_factory=factory).close()


def test_door_inputs_bad_pins_are_clear_errors(factory):
    with pytest.raises(FacegateError, match=r"^exit button pin 99 is not a valid GPIO pin: "):
        DoorInputs(contact_pin=CONTACT_PIN, exit_pin=99, pin_factory=factory)
    with pytest.raises(FacegateError, match="exit button pin 27 .*in use"):
        DoorInputs(contact_pin=CONTACT_PIN, exit_pin=CONTACT_PIN, pin_factory=factory)
    DoorInputs(contact_pin=CONTACT_PIN, pin_factory=factory).close()  # the failed constructors released it


# -- door alarms --------------------------------------------------------------------------------------------------


def run_monitor(monitor: DoorMonitor, samples: list[tuple[float, bool, bool | None]]) -> list[tuple[float, str]]:
    """Feed ``(time, relay_on, door_open)`` samples; return ``(time, reason)`` for every alarm."""
    alarms = []
    for t, relay_on, door_open in samples:
        alarms += [(t, reason) for reason in monitor.update(relay_on=relay_on, door_open=door_open, now=t)]
    return alarms


def test_normal_entry_raises_no_alarm():
    samples = [(0.0, False, False), (1.0, True, False), (1.5, True, True), (3.0, True, True),
               (4.0, False, True), (6.0, False, False), (100.0, False, False)]
    assert run_monitor(DoorMonitor(held_open_seconds=30.0), samples) == []


def test_door_opened_without_unlock_is_forced_once():
    samples = [(0.0, False, False), (10.0, False, True), (11.0, False, True), (12.0, False, False),
               (20.0, False, True)]
    assert run_monitor(DoorMonitor(), samples) == [(10.0, "door_forced"), (20.0, "door_forced")]


def test_opening_seen_just_after_the_pulse_is_an_entry_within_grace():
    late_contact = [(0.0, False, False), (1.0, True, False), (3.0, True, False), (4.5, False, True)]
    assert run_monitor(DoorMonitor(grace_seconds=2.0), late_contact) == []  # 1.5 s after the relay was seen on
    too_late = [(0.0, False, False), (1.0, True, False), (3.0, False, False), (4.5, False, True)]
    assert run_monitor(DoorMonitor(grace_seconds=2.0), too_late) == [(4.5, "door_forced")]  # 3.5 s after


def test_held_open_reported_once_per_opening():
    clock = FakeClock(0.0)
    monitor = DoorMonitor(held_open_seconds=30.0, clock=clock)
    alarms = []
    for t, relay_on, door_open in [(0.0, True, False), (1.0, True, True), (20.0, False, True), (30.9, False, True),
                                   (31.0, False, True), (60.0, False, True), (61.0, False, False),
                                   (70.0, True, True), (100.0, False, True)]:
        clock.t = t
        alarms += [(t, reason) for reason in monitor.update(relay_on=relay_on, door_open=door_open)]
    assert alarms == [(31.0, "door_held_open"), (100.0, "door_held_open")]


def test_door_open_at_start_is_not_forced_but_can_be_held_open():
    samples = [(0.0, False, True), (29.0, False, True), (30.0, False, True)]
    assert run_monitor(DoorMonitor(held_open_seconds=30.0), samples) == [(30.0, "door_held_open")]


def test_forced_and_then_held_open():
    samples = [(0.0, False, False), (5.0, False, True), (40.0, False, True)]
    assert run_monitor(DoorMonitor(held_open_seconds=30.0), samples) == [(5.0, "door_forced"),
                                                                        (40.0, "door_held_open")]


def test_unknown_contact_state_forgets_the_opening():
    samples = [(0.0, False, False), (1.0, True, True), (20.0, False, None), (25.0, False, True),
               (50.0, False, True)]
    assert run_monitor(DoorMonitor(held_open_seconds=30.0), samples) == []


def test_bad_monitor_options_are_refused():
    with pytest.raises(ValueError, match="held_open_seconds"):
        DoorMonitor(held_open_seconds=0)
    with pytest.raises(ValueError, match="grace_seconds"):
        DoorMonitor(grace_seconds=-1)
