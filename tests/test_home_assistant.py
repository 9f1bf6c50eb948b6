"""The door as a real Home Assistant core sees it: Home Assistant 2024.3.3 in its own venv (``./dev ha-setup``),
started on loopback with its MQTT integration on the test's own mosquitto; the real daemon (the real model and
store, the replay camera, gpiozero's mock pins); and what Home Assistant's REST API (``/api/states``) says.

Skipped, with the command that builds it, only while Home Assistant's venv is not built.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.config import load_config
from edge.core.events import EVENT_TYPES
from edge.daemon.runner import run_door
from edge.mqtt.publisher import EventPublisher
from edge.storage.outbox import Outbox
from tests.conftest import REPO, photo_paths
from tests.homeassistant.server import HomeAssistant
from tests.homeassistant.venv import hass_executable, not_built_reason
from tests.mosquitto import Mosquitto, Recorder, wait_until
from tests.test_daemon import PIN, door_dir, lines_until, write_config

HASS = hass_executable()
pytestmark = pytest.mark.skipif(HASS is None, reason=not_built_reason())

__all__ = ["door_dir"]  # the enrolled store of tests/test_daemon.py, a fixture of this module too

UNAVAILABLE = "unavailable"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Mosquitto(tmp_path_factory.mktemp("ha-broker")) as running:
        yield running


@pytest.fixture(scope="module")
def home_assistant(broker, tmp_path_factory):
    assert HASS is not None
    with HomeAssistant(HASS, tmp_path_factory.mktemp("ha-config"), mqtt_port=broker.port) as ha:
        yield ha
        # every discovery config the doors sent passed Home Assistant's schemas: its MQTT integration logged
        # nothing at WARNING or above (a refused config is logged as an error there)
        assert ha.log_records(logger_prefix="homeassistant.components.mqtt") == []


class Door:
    """One door's entities, as Home Assistant names them from the device name and the entity names."""

    def __init__(self, device: str, name: str):
        self.device, self.name = device, name
        slug = name.lower().replace(" ", "_")
        self.door = f"binary_sensor.{slug}_door"
        self.last_person = f"sensor.{slug}_last_person"
        self.event = f"event.{slug}_door_event"
        self.lock = f"lock.{slug}_lock"

    def entities(self, *, lock: bool = True) -> list[str]:
        return [self.door, self.last_person, self.event, *([self.lock] if lock else [])]


def frames(folder: Path, photos_dir: Path, *, person: str | None, before: int = 10, after: int = 40) -> Path:
    """A replay folder: ``before`` frames without a face, three of ``person``'s first held-out photo, ``after``
    without a face (at 5 frames a second, a visit after 2 s, then 8 s of an empty doorway)."""
    import cv2
    import numpy as np

    folder.mkdir()
    blank = folder.parent / f"{folder.name}-blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 90, np.uint8))
    photo = next(p for who, p in photo_paths(photos_dir, "val") if who == person) if person else None
    sequence = [blank] * before + ([photo] * 3 if photo else []) + [blank] * after
    for n, source in enumerate(sequence):
        (folder / f"{n:04d}{source.suffix}").symlink_to(source)
    return folder


def config(path: Path, door_dir: Path, weights_dir: Path, broker: Mosquitto, door: Door, replay: Path, *,
           pulse: float, commands: bool) -> Path:
    mqtt = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\noutbox_path = "{path.with_suffix(".outbox")}"\n'
            + ("commands = true\nallow_unlock_command = true\n" if commands else ""))
    text = write_config(path, door_dir, weights_dir, camera=f'type = "replay"\npath = "{replay}"\nfps = 5\nloop = true',
                        extra=mqtt).read_text()
    path.write_text(text.replace('id = "test-door"', f'id = "{door.device}"')
                    .replace('name = "Test door"', f'name = "{door.name}"')
                    .replace("pulse_seconds = 0.2", f"pulse_seconds = {pulse}"))
    return path


def announce(broker: Mosquitto, ha: HomeAssistant, door: Door, tmp_path: Path) -> None:
    """The door announced once before (an installed door): Home Assistant has its entities and has subscribed to
    its events (it subscribes about a second after a discovery, and events are not retained)."""
    with Outbox(tmp_path / "announce.outbox") as outbox:
        publisher = EventPublisher(host="127.0.0.1", port=broker.port, device_id=door.device, device_name=door.name,
                                   outbox=outbox, commands=True, allow_unlock=True)
        publisher.start()
        try:
            assert wait_until(lambda: all(ha.state(e) is not None for e in door.entities()))
            assert wait_until(lambda: f"\tfacegate/{door.device}/events (QoS 1)" in broker.log())
        finally:
            publisher.stop()


def states(ha: HomeAssistant, door: Door) -> dict[str, str | None]:
    every = ha.states()
    return {e: every[e]["state"] if e in every else None for e in door.entities()}


def last_event_type(ha: HomeAssistant, door: Door) -> str | None:
    return ha.states()[door.event]["attributes"].get("event_type")


def start_door(config_path: Path) -> tuple[threading.Thread, threading.Event, MockFactory, list]:
    """The daemon in a thread (in this process, so the test sees its mock relay pin and its events)."""
    stop, factory, events = threading.Event(), MockFactory(), []
    thread = threading.Thread(target=run_door, args=(load_config(config_path),), name="door", kwargs=dict(
        stop=stop, pin_factory=factory, echo=None, extra_sink=events.append, handle_signals=False))
    thread.start()
    assert wait_until(lambda: "started" in [e.type for e in events]), "the door did not start"
    return thread, stop, factory, events


def test_home_assistant_follows_an_unlock_and_sees_a_clean_stop(door_dir, weights_dir, photos_dir, broker,
                                                                home_assistant, tmp_path):
    ha, door = home_assistant, Door("ha-face", "Face door")
    announce(broker, ha, door, tmp_path)
    replay = frames(tmp_path / "frames", photos_dir, person="ben_afflek")
    thread, stop, factory, events = start_door(config(tmp_path / "door.toml", door_dir, weights_dir, broker, door,
                                                      replay, pulse=2, commands=True))
    try:
        assert wait_until(lambda: states(ha, door)[door.lock] == "locked")  # the start published 'locked'
        pin = factory.pin(PIN)

        def unlocked_while_the_relay_is_on() -> bool:
            before = pin.state
            now = states(ha, door)
            return before and pin.state and now[door.door] == "on" and now[door.lock] == "unlocked"

        assert wait_until(unlocked_while_the_relay_is_on), f"during the pulse: {states(ha, door)}"
        assert wait_until(lambda: not pin.state and (ha.state(door.door), ha.state(door.lock), ha.state(
            door.last_person)) == ("off", "locked", "ben_afflek")), states(ha, door)

        # the event entity carries the door's own event: its type, id and time
        def shown_event() -> dict:
            return ha.states()[door.event]["attributes"]

        assert wait_until(lambda: shown_event().get("event_id") in {e.id for e in events if e.type == "door_locked"})
        attributes = shown_event()
        locked = next(e for e in events if e.id == attributes["event_id"])
        assert (attributes["event_type"], attributes["time"]) == ("door_locked", locked.time)
        assert attributes["event_types"] == list(EVENT_TYPES)
        unlocked = next(e for e in events if e.type == "door_unlocked")
        assert unlocked.detail == {"cause": "face", "person": "ben_afflek"}
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and factory.pin(PIN).state is False
    assert [e.type for e in events][-1] == "stopped"
    # a clean stop: 'offline' retained, and Home Assistant shows every entity of the door unavailable
    assert wait_until(lambda: set(states(ha, door).values()) == {UNAVAILABLE}), states(ha, door)


def test_unlock_and_lock_pressed_in_home_assistant_drive_the_relay(door_dir, weights_dir, photos_dir, broker,
                                                                   home_assistant, tmp_path):
    """Home Assistant's lock sends what the door requires (a fresh id and its time, see edge/mqtt/commands.py):
    unlock pulses the relay (30 s here), lock switches it off at once (well before the pulse would end)."""
    ha, door = home_assistant, Door("ha-remote", "Remote door")
    replay = frames(tmp_path / "frames", photos_dir, person=None)
    thread, stop, factory, events = start_door(config(tmp_path / "door.toml", door_dir, weights_dir, broker, door,
                                                      replay, pulse=30, commands=True))
    try:
        assert wait_until(lambda: ha.state(door.lock) == "locked")
        pin = factory.pin(PIN)
        ha.call("lock", "unlock", entity_id=door.lock)
        assert wait_until(lambda: pin.state and (ha.state(door.lock), ha.state(door.door)) == ("unlocked", "on"))
        assert [e.detail for e in events if e.type == "door_unlocked"] == [{"cause": "command", "person": None}]
        ha.call("lock", "lock", entity_id=door.lock)
        assert wait_until(lambda: not pin.state and ha.state(door.lock) == "locked")  # within 20 s of a 30 s pulse
        assert [e.type for e in events].count("door_locked") == 1
        ha.call("lock", "unlock", entity_id=door.lock)  # a second press is a new command, not a replay
        assert wait_until(lambda: pin.state and ha.state(door.lock) == "unlocked")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and factory.pin(PIN).state is False
    assert wait_until(lambda: set(states(ha, door).values()) == {UNAVAILABLE}), states(ha, door)


def test_a_crash_during_a_pulse_and_a_restart_show_the_door_locked(door_dir, weights_dir, photos_dir, broker,
                                                                   home_assistant, tmp_path):
    """The real command in its own process, killed (SIGKILL) during a 30 s pulse: Home Assistant hears of it from the
    broker's last will (unavailable); the retained state still says 'unlocked'. The restarted door says 'locked'
    and clears the last person; a clean stop (SIGTERM) makes it unavailable again. Started once more
    without unlock commands, the door has no lock entity any more."""
    ha, door = home_assistant, Door("ha-crash", "Crash door")
    visit, empty = (frames(tmp_path / name, photos_dir, person=who) for name, who in [("visit", "ben_afflek"),
                                                                                       ("empty", None)])
    first = config(tmp_path / "first.toml", door_dir, weights_dir, broker, door, visit, pulse=30, commands=True)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(first)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines_until(proc, "door_unlocked", timeout=120)
        assert wait_until(lambda: ha.state(door.lock) == "unlocked" and ha.state(door.door) == "on")
        assert ha.state(door.last_person) == "ben_afflek"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert wait_until(lambda: set(states(ha, door).values()) == {UNAVAILABLE}), states(ha, door)
    late = Recorder(broker.port, [f"facegate/{door.device}/state/door"], client_id="late-dashboard")
    try:  # what the dead process left on the broker: the lie the restart must overwrite
        assert wait_until(lambda: late.retained(f"facegate/{door.device}/state/door") == ["unlocked"])
    finally:
        late.close()

    second = config(tmp_path / "second.toml", door_dir, weights_dir, broker, door, empty, pulse=30, commands=True)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(second)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines_until(proc, "started", timeout=120)
        # the person cleared too: an empty message, which Home Assistant shows as an empty state
        assert wait_until(lambda: (ha.state(door.door), ha.state(door.lock), ha.state(door.last_person)) == (
            "off", "locked", "")), states(ha, door)
        assert wait_until(lambda: last_event_type(ha, door) == "started")  # this run's first (and only) event
        # and why it is locked, as the door's attributes: the relay driven off at this start
        assert wait_until(lambda: ha.states()[door.door]["attributes"].get("cause") == "start"), ha.states()[door.door]
        assert ha.states()[door.lock]["attributes"]["cause"] == "start"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert wait_until(lambda: set(states(ha, door).values()) == {UNAVAILABLE}), states(ha, door)

    thread, stop, factory, _ = start_door(config(tmp_path / "third.toml", door_dir, weights_dir, broker, door, empty,
                                                 pulse=30, commands=False))
    try:
        # the lock removed (an empty retained config), the rest as before
        assert wait_until(lambda: (ha.state(door.door), ha.state(door.lock), ha.state(door.last_person)) == (
            "off", None, "")), states(ha, door)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and factory.pin(PIN).state is False
