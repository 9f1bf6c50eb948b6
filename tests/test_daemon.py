"""The door daemon end to end: replayed real photos, the real int8 model and store, gpiozero's mock pins,
and a real mosquitto for the events."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import threading
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.cli import main
from edge.config import load_config
from edge.daemon.runner import run_door
from edge.errors import ExitCode
from tests.conftest import REPO, photo_paths
from tests.mosquitto import Mosquitto, Recorder, wait_until

ENROLLED = ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna")  # mindy_kaling is the stranger
PIN = 17


@pytest.fixture(scope="module")
def door_dir(tmp_path_factory, photos_dir) -> Path:
    """visits/ (each val photo 3 frames in a row, people taking turns) and an enrolled store."""
    root = tmp_path_factory.mktemp("door")
    visits = root / "visits"
    visits.mkdir()
    val = photo_paths(photos_dir, "val")
    people = sorted({p for p, _ in val})
    by_person = {person: [p for who, p in val if who == person] for person in people}
    order = [(person, by_person[person][rnd]) for rnd in range(5) for person in people]
    for n, (person, path) in enumerate(order):
        for frame in range(3):
            (visits / f"{n:03d}_{frame}_{person}.jpg").symlink_to(path)
    for person in ENROLLED:
        photos = [str(p) for who, p in photo_paths(photos_dir, "train") if who == person]
        assert main(["enroll", person, *photos, "--store", str(root / "people.sqlite")]) in (0, 3)
    return root


def write_config(path: Path, door_dir: Path, weights_dir: Path, *, camera: str | None = None, extra: str = "",
                 liveness: str = 'mode = "off"') -> Path:
    camera = camera or f'type = "replay"\npath = "{door_dir / "visits"}"\nfps = 0'
    path.write_text(f"""
[device]
id = "test-door"
name = "Test door"
[models]
encoder = "{weights_dir / 'facenet_int8.tflite'}"
detector = "{weights_dir / 'face_detection_short_range.tflite'}"
threads = 2
[store]
path = "{door_dir / 'people.sqlite'}"
[recognition]
min_face_px = 40
window_seconds = 30
cooldown_seconds = 0
unknown_report_interval_seconds = 0
[liveness]
# By default off: these replays repeat one photo per visit, still pictures that enforce refuses. The
# presentation-attack checks have their own tests (tests/test_liveness_door.py).
{liveness}
[camera]
{camera}
[relay]
pin = {PIN}
pulse_seconds = 0.2
pin_factory = "mock"
{extra}
""")
    return path


def run_collecting(config_path: Path, **kw) -> tuple[list, MockFactory, object]:
    events: list = []
    factory = MockFactory()
    counters = run_door(load_config(config_path), pin_factory=factory, echo=None, extra_sink=events.append,
                        handle_signals=False, **kw)
    return events, factory, counters


def on_periods(pin) -> int:
    states = [s.state for s in pin.states]
    return sum(1 for a, b in zip(states, states[1:], strict=False) if not a and b)


def test_enrolled_people_get_in_and_the_stranger_does_not(door_dir, weights_dir, tmp_path):
    events, factory, counters = run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir))
    kinds = [e.type for e in events]
    assert kinds[0] == "started" and kinds[-1] == "stopped"
    let_in = {e.person for e in events if e.type == "recognized"}
    assert let_in == set(ENROLLED)
    assert "mindy_kaling" not in let_in
    assert any(e.type == "unknown" for e in events)  # her visits are reported
    # ... without naming whom she resembles (that would tell an impostor whom to impersonate)
    assert all("closest" not in e.detail for e in events if e.type == "unknown")
    assert kinds.count("recognized") == counters.unlocks >= 15  # 20 enrolled visits
    pin = factory.pin(PIN)
    # Frames replay faster than the 0.2 s pulse, so an unlock may extend a pulse still on: the pin's history
    # and the door_unlocked / door_locked events must agree on how often the door really opened.
    assert on_periods(pin) == kinds.count("door_unlocked") == kinds.count("door_locked") >= 1
    assert pin.state is False
    for e in events:
        if e.type == "recognized":
            assert e.distance is not None and e.timings_ms["encode"] > 0 and len(e.id) == 32
        if e.type == "door_unlocked":  # every unlock names its cause
            assert e.detail["cause"] == "face" and e.detail["person"] in ENROLLED


def test_a_stop_during_a_pulse_leaves_the_relay_off(door_dir, weights_dir, tmp_path):
    config = load_config(write_config(tmp_path / "door.toml", door_dir, weights_dir))
    config.relay = dataclasses.replace(config.relay, pulse_seconds=30.0)  # a long pulse: only the stop ends it
    stop = threading.Event()
    factory = MockFactory()
    events: list = []

    def sink(event):
        events.append(event)
        if event.type == "door_unlocked":
            stop.set()

    run_door(config, stop=stop, pin_factory=factory, echo=None, extra_sink=sink, handle_signals=False)
    assert "door_unlocked" in [e.type for e in events]
    assert factory.pin(PIN).state is False
    assert [e.type for e in events][-2:] == ["door_locked", "stopped"]


def lines_until(proc: subprocess.Popen, marker: str, *, timeout: float) -> list[str]:
    """``proc``'s output lines up to the first that holds ``marker``; kills it and fails after ``timeout`` s.

    A looping replay never ends by itself: reading its output without a deadline would hang the suite.
    """
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout):
        proc.kill()
        pytest.fail(f"no {marker!r} within {timeout} s; the last lines: {lines[-5:]}")
    return lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                                    signal.SIGUSR2, signal.SIGABRT], ids=lambda s: signal.Signals(s).name)
def test_every_terminating_signal_during_a_pulse_switches_the_relay_off(door_dir, weights_dir, tmp_path, signum):
    """The real command in its own process, a 30 s pulse: the signal right after an unlock -> door_locked (the
    relay off) well before the pulse would have ended, then stopped, exit 0. The delay is printed, not asserted
    (the pulse's own timer is 30 s: a door_locked at all proves the signal switched it off)."""
    config = write_config(tmp_path / "door.toml", door_dir, weights_dir).read_text().replace(
        "pulse_seconds = 0.2", "pulse_seconds = 30").replace("fps = 0", "fps = 5\nloop = true")
    (tmp_path / "door.toml").write_text(config)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(tmp_path / "door.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        lines = lines_until(proc, "door_unlocked", timeout=60)
        sent = datetime.now(timezone.utc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=25)  # well under the 30 s pulse
    finally:
        proc.kill()
    lines += out.splitlines()
    kinds = [line.split()[1] for line in lines if len(line.split()) > 1 and not line.startswith("stopped after")]
    assert proc.returncode == 0, err
    assert "door_locked" in kinds[kinds.index("door_unlocked"):]
    assert kinds[-1] == "stopped"
    locked = next(line for line in lines if line.split()[1:2] == ["door_locked"]).split()[0]
    at = datetime.combine(sent.date(), time.fromisoformat(locked), tzinfo=timezone.utc)
    delay = (at - sent).total_seconds()  # event times have millisecond resolution
    print(f"{signal.Signals(signum).name}: relay off {delay:+.3f} s after the signal (event {locked})")


def test_corrupt_frames_are_reported_and_the_loop_goes_on(door_dir, weights_dir, tmp_path):
    visits = tmp_path / "visits"
    visits.mkdir()
    frames = sorted((door_dir / "visits").iterdir())[:6]
    for n, frame in enumerate(frames):
        (visits / f"{n:02d}a.jpg").symlink_to(frame.resolve())
    (visits / "02b.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    camera = f'type = "replay"\npath = "{visits}"\nfps = 0'
    events, factory, counters = run_collecting(write_config(tmp_path / "d.toml", door_dir, weights_dir, camera=camera))
    faults = [e for e in events if e.type == "camera_fault"]
    assert len(faults) == 1 and "02b.jpg" in faults[0].detail["error"]
    assert counters.frames == 6 and factory.pin(PIN).state is False


def test_unknown_events_name_the_closest_person_only_when_asked(door_dir, weights_dir, tmp_path):
    text = write_config(tmp_path / "door.toml", door_dir, weights_dir).read_text()
    (tmp_path / "door.toml").write_text(text.replace("cooldown_seconds = 0", "cooldown_seconds = 0\n"
                                                     "report_closest_match = true"))
    events, _, _ = run_collecting(tmp_path / "door.toml")
    unknown = [e for e in events if e.type == "unknown"]
    assert unknown and all(e.detail["closest"] in ENROLLED for e in unknown)


def test_a_restart_tells_the_dashboard_the_door_is_locked_before_it_says_online(door_dir, weights_dir, tmp_path):
    """A process killed mid-pulse left 'unlocked' (and a person) retained; the next start overwrites the door's
    state, clears the person, and says 'online' only after that. No face in any frame here: nothing but the
    start itself publishes 'locked'."""
    import cv2
    import numpy as np
    import paho.mqtt.publish as publish

    empty = tmp_path / "empty"
    empty.mkdir()
    for n in range(3):
        cv2.imwrite(str(empty / f"{n}.png"), np.full((120, 160, 3), 90, np.uint8))
    base = "facegate/test-door"
    with Mosquitto(tmp_path / "broker") as broker:
        publish.multiple([(f"{base}/state/door", "unlocked", 1, True), (f"{base}/state/last_person", "ben_afflek", 1,
                          True), (f"{base}/availability", "online", 1, True)], hostname="127.0.0.1", port=broker.port)
        live = Recorder(broker.port, [f"{base}/#"], client_id="live-dashboard")
        try:
            assert wait_until(lambda: live.retained(f"{base}/state/door") == ["unlocked"])
            extra = f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\noutbox_path = "{tmp_path / "outbox.db"}"'
            camera = f'type = "replay"\npath = "{empty}"'
            run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir, camera=camera, extra=extra))
            assert wait_until(lambda: live.payloads(f"{base}/availability")[-1:] == ["offline"])
            fresh = [(m.topic, m.payload.decode()) for m in list(live.messages) if not m.retain]
            assert fresh.index((f"{base}/state/door", "locked")) < fresh.index((f"{base}/availability", "online"))
            change = next(json.loads(p) for t, p in fresh if t == f"{base}/state/door_change")
            assert (change["state"], change["cause"]) == ("locked", "start")  # why, and when: this start
            assert datetime.fromisoformat(change["time"]) > datetime.now(timezone.utc) - timedelta(minutes=5)
            assert fresh.index((f"{base}/state/last_person", "")) < fresh.index((f"{base}/availability", "online"))
        finally:
            live.close()
        late = Recorder(broker.port, [f"{base}/#"], client_id="late-dashboard")
        try:  # what a dashboard that starts now is told
            assert wait_until(lambda: late.retained(f"{base}/availability") == ["offline"])
            assert late.retained(f"{base}/state/door") == ["locked"]
            assert late.retained(f"{base}/state/last_person") == []  # an empty retained message clears it
        finally:
            late.close()


def test_an_outbox_that_cannot_be_written_at_start_does_not_keep_the_door_shut(door_dir, weights_dir, tmp_path):
    """The outbox's folder cannot be made (a file is in the way, as a full or read-only disk would refuse it): the
    door still opens for the enrolled, an alarm says events may be lost, and the events still reach the broker."""
    (tmp_path / "blocked").write_text("not a folder")
    with Mosquitto(tmp_path / "broker") as broker:
        dashboard = Recorder(broker.port, ["facegate/#"], client_id="dashboard")
        try:
            extra = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                     f'outbox_path = "{tmp_path / "blocked" / "outbox.db"}"')
            events, factory, counters = run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir,
                                                                    extra=extra))
            alarms = [e.detail for e in events if e.type == "alarm"]
            assert [a["reason"] for a in alarms] == ["outbox_not_durable"] and "lost" in alarms[0]["effect"]
            assert [e.type for e in events][:2] == ["started", "alarm"]
            assert counters.unlocks >= 15 and factory.pin(PIN).state is False
            assert wait_until(lambda: len(dashboard.payloads("facegate/test-door/events")) == len(events))
        finally:
            dashboard.close()


def test_events_reach_a_real_broker_with_the_documented_payloads(door_dir, weights_dir, tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        dashboard = Recorder(broker.port, ["facegate/#", "homeassistant/#"], client_id="dashboard")
        try:
            extra = f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\noutbox_path = "{tmp_path / "outbox.db"}"'
            events, _, _ = run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir, extra=extra))
            assert wait_until(lambda: len(dashboard.payloads("facegate/test-door/events")) == len(events))
            received = [json.loads(p) for p in dashboard.payloads("facegate/test-door/events")]
            assert [r["id"] for r in received] == [e.id for e in events]
            first = next(r for r in received if r["type"] == "recognized")
            assert set(first) >= {"id", "time", "type", "device", "person", "distance", "timings_ms"}
            assert first["device"] == "test-door" and first["person"] in ENROLLED
            assert wait_until(lambda: dashboard.retained("facegate/test-door/availability")[-1:] == ["offline"]
                              or dashboard.payloads("facegate/test-door/availability")[-1:] == ["offline"])
            configs = [json.loads(m.payload) for m in dashboard.messages if m.topic.startswith("homeassistant/")]
            assert configs and {c["device"]["name"] for c in configs} == {"Test door"}  # the config's [device] name
        finally:
            dashboard.close()


def test_a_bad_config_names_the_line_and_touches_no_relay(tmp_path, capsys, door_dir, weights_dir):
    config = write_config(tmp_path / "door.toml", door_dir, weights_dir).read_text()
    (tmp_path / "bad.toml").write_text(config.replace("pin = 17", "pin = 99\ncolour = 3"))
    assert main(["check-config", str(tmp_path / "bad.toml")]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "bad.toml:" in err and "relay.pin" in err and "colour" in err
    assert main(["run", "--config", str(tmp_path / "bad.toml")]) == ExitCode.ERROR
    assert main(["check-config", str(tmp_path / "door.toml")]) == ExitCode.OK


def test_max_frames_stops_the_loop(door_dir, weights_dir, tmp_path):
    _, factory, counters = run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir), max_frames=5)
    assert counters.frames == 5 and factory.pin(PIN).state is False


def stranger_only_camera(door_dir: Path, tmp_path: Path) -> str:
    """A replay camera config of Mindy Kaling's visits alone (the stranger), paced at 20 frames a second."""
    visits = tmp_path / "visits"
    visits.mkdir()
    for frame in sorted((door_dir / "visits").iterdir()):
        if "mindy_kaling" in frame.name:
            (visits / frame.name).symlink_to(frame.resolve())
    return f'type = "replay"\npath = "{visits}"\nfps = 20'


def test_door_forced_open_raises_an_alarm(door_dir, weights_dir, tmp_path):
    """Only the stranger walks up; the door contact then reports the door open with the relay off."""
    camera = stranger_only_camera(door_dir, tmp_path)
    extra = "[door]\ncontact_pin = 27\nheld_open_seconds = 60"
    factory = MockFactory()
    events: list = []

    def sink(event):
        events.append(event)
        if event.type == "started":
            factory.pin(27).drive_low()  # the door is closed (reed switch closed to ground)
        elif event.type == "unknown" and [e.type for e in events].count("unknown") == 3:
            factory.pin(27).drive_high()  # a few frames later, someone forces it

    config = load_config(write_config(tmp_path / "d.toml", door_dir, weights_dir, camera=camera, extra=extra))
    run_door(config, pin_factory=factory, echo=None, extra_sink=sink, handle_signals=False)
    alarms = [e.detail["reason"] for e in events if e.type == "alarm"]
    assert alarms == ["door_forced"]
    assert "recognized" not in [e.type for e in events] and factory.pin(PIN).state is False


def test_the_exit_button_unlocks_and_says_so(door_dir, weights_dir, tmp_path):
    """Only the stranger at the camera; someone inside presses the exit button: door_unlocked names the button."""
    camera = stranger_only_camera(door_dir, tmp_path)
    factory = MockFactory()
    events: list = []

    def sink(event):
        events.append(event)
        if event.type == "started":
            factory.pin(22).drive_low()  # pressed (the button pulls the pin to ground)
            factory.pin(22).drive_high()

    config = load_config(write_config(tmp_path / "d.toml", door_dir, weights_dir, camera=camera,
                                      extra="[door]\nexit_pin = 22"))
    run_door(config, pin_factory=factory, echo=None, extra_sink=sink, handle_signals=False)
    unlocked = [e.detail for e in events if e.type == "door_unlocked"]
    assert unlocked == [{"cause": "exit_button", "person": None}]
    assert "recognized" not in [e.type for e in events] and factory.pin(PIN).state is False


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_a_store_replaced_or_deleted_under_the_running_door_is_noticed(door_dir, weights_dir, tmp_path, change):
    """After a few unlocks the store file is replaced by one holding only Mindy Kaling (an operator's push), or
    deleted: an alarm says so, and from then on the door admits from what is on disk (SQLite alone would go on
    reading the old file): only Mindy, or nobody."""
    import shutil

    store = tmp_path / "people.sqlite"
    shutil.copy(door_dir / "people.sqlite", store)
    text = write_config(tmp_path / "door.toml", door_dir, weights_dir).read_text()
    (tmp_path / "door.toml").write_text(text.replace(str(door_dir / "people.sqlite"), str(store))
                                        .replace("fps = 0", "fps = 20"))
    events: list = []

    def sink(event):
        events.append(event)
        if event.type == "recognized" and [e.type for e in events].count("recognized") == 3:
            if change == "deleted":
                store.unlink()
            else:
                pushed = tmp_path / "new.sqlite"
                mindy = [str(p) for p in sorted((door_dir / "visits").glob("*mindy*"))][::3]
                assert main(["enroll", "mindy_kaling", *mindy, "--store", str(pushed)]) in (0, 3)
                pushed.replace(store)

    factory = MockFactory()
    run_door(load_config(tmp_path / "door.toml"), pin_factory=factory, echo=None, extra_sink=sink,
             handle_signals=False)
    kinds = [e.type for e in events]
    alarms = [e.detail for e in events if e.type == "alarm"]
    assert len(alarms) == 1 and alarms[0]["reason"] == "store_changed" and change in alarms[0]["detail"]
    at = kinds.index("alarm")
    admitted_after = {e.person for e in events[at:] if e.type == "recognized"}
    assert admitted_after == (set() if change == "deleted" else {"mindy_kaling"})
    assert "mindy_kaling" not in {e.person for e in events[:at] if e.type == "recognized"}
    assert kinds[:at].count("recognized") >= 3 and factory.pin(PIN).state is False


def test_systemd_hears_ready_and_stopping(door_dir, weights_dir, tmp_path, monkeypatch):
    import socket

    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        run_collecting(write_config(tmp_path / "door.toml", door_dir, weights_dir), max_frames=40)
        messages = []
        server.settimeout(0.5)
        try:
            while True:
                messages.append(server.recv(1024).decode())
        except TimeoutError:
            pass
    finally:
        server.close()
    assert messages[0] == "WATCHDOG=1"  # the loop pings before the first frame
    ready = [m for m in messages if m.startswith("READY=1")]
    assert len(ready) == 1 and messages[-1] == "STOPPING=1"
    # the loop goes on pinging while it watches the door (40 frames take well over the 0.1 s between pings)
    assert "WATCHDOG=1" in messages[messages.index(ready[0]) + 1:-1]
