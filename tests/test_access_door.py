"""Access control at the door, end to end: the real daemon, model, store and access log, replayed frames, a
replayed badge reader and gpiozero's mock pins. A policy refuses with its reason; a badge+face door opens only
for the face of the badge's holder."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from tests.test_daemon import door_dir, run_collecting, write_config  # noqa: F401 (door_dir is a fixture)


@pytest.fixture
def door(door_dir, tmp_path) -> Path:  # noqa: F811
    """A copy of the enrolled store, so each test sets its own access data."""
    shutil.copy(door_dir / "people.sqlite", tmp_path / "people.sqlite")
    return tmp_path


def people(door: Path, *args: str) -> None:
    assert main(["people", *args, "--store", str(door / "people.sqlite")]) == 0


def frames(folder: Path, photos_dir: Path, plan: list[tuple[str | None, int]]) -> Path:
    """Replay frames: for each ``(person or None, n)``, n frames of that person's first val photo (None: an empty
    grey frame)."""
    folder.mkdir()
    n = 0
    for person, count in plan:
        for _ in range(count):
            target = folder / f"{n:03d}.png"
            if person is None:
                cv2.imwrite(str(target), np.full((240, 320, 3), 120, np.uint8))
            else:
                target.symlink_to(sorted((photos_dir / "val" / person).iterdir())[0])
            n += 1
    return folder


def config(door: Path, door_dir: Path, weights_dir: Path, camera: Path, access: str, fps: int = 0) -> Path:  # noqa: F811
    text = write_config(door / "door.toml", door_dir, weights_dir,
                        camera=f'type = "replay"\npath = "{camera}"\nfps = {fps}', extra=access).read_text()
    (door / "door.toml").write_text(text.replace(str(door_dir / "people.sqlite"), str(door / "people.sqlite")))
    return door / "door.toml"


def logged(door: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["log", "--json", "--log", str(door / "access-log.sqlite")]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_person_outside_the_doors_groups_is_refused_with_the_reason(door, door_dir, weights_dir, photos_dir,
                                                                      tmp_path, capsys):
    people(door, "groups", "ben_afflek", "staff")
    camera = frames(tmp_path / "visits", photos_dir, [("ben_afflek", 3), (None, 1), ("elton_john", 3)])
    events, factory, counters = run_collecting(config(door, door_dir, weights_dir, camera,
                                                      '[access]\ngroups = ["staff"]'))
    assert [e.person for e in events if e.type == "recognized"] == ["ben_afflek"]
    denied = [e for e in events if e.type == "denied"]
    assert [(e.person, e.detail["reason"]) for e in denied] == [("elton_john", "not_in_group")]
    assert counters.unlocks == 1
    records = logged(door, capsys)
    assert {(r["person"], r["result"], r["reason"]) for r in records} >= {
        ("ben_afflek", "granted", "granted"), ("elton_john", "denied", "not_in_group")}


def test_outside_the_doors_hours_nobody_gets_in(door, door_dir, weights_dir, photos_dir, tmp_path, capsys):
    hour = datetime.now(timezone.utc).hour
    closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # open only in an hour that is not now
    camera = frames(tmp_path / "visits", photos_dir, [("madonna", 3)])
    events, _, counters = run_collecting(config(door, door_dir, weights_dir, camera, f'''[access]
timezone = "UTC"
schedule = [{{days = ["mon-sun"], hours = ["{closed}"]}}]'''))
    assert counters.unlocks == 0 and not any(e.type == "recognized" for e in events)
    assert [(e.person, e.detail["reason"]) for e in events if e.type == "denied"] == [("madonna", "outside_hours")]


def test_badge_and_face_open_only_for_the_badges_holder(door, door_dir, weights_dir, photos_dir, tmp_path, capsys):
    people(door, "badge", "ben_afflek", "BADGE-BEN-0001")
    people(door, "badge", "elton_john", "BADGE-ELTON-002")
    (tmp_path / "badges.txt").write_text("0.0 BADGE-BEN-0001\n2.1 BADGE-ELTON-002\n")
    # 5 fps: Ben's face at 0-0.8 s (his own badge), nobody, then Ben's face again at 2.4-3.2 s under Elton's badge
    camera = frames(tmp_path / "visits", photos_dir, [("ben_afflek", 5), (None, 7), ("ben_afflek", 5), (None, 4)])
    access = f'''[access]
mode = "badge+face"
[access.badge]
type = "replay"
path = "{tmp_path / 'badges.txt'}"'''
    events, factory, counters = run_collecting(config(door, door_dir, weights_dir, camera, access, fps=5))
    granted = [(e.person, e.detail["mode"]) for e in events if e.type == "recognized"]
    assert granted == [("ben_afflek", "badge+face")]
    mismatch = [e for e in events if e.type == "denied" and e.detail["reason"] == "badge_face_mismatch"]
    assert [e.person for e in mismatch] == ["elton_john"]  # the badge's holder, whose face did not come
    assert counters.unlocks == 1
    unlocked = [e for e in events if e.type == "door_unlocked"]
    assert unlocked and unlocked[0].detail["cause"] == "badge+face"
    records = logged(door, capsys)
    assert all("BADGE" not in json.dumps(r) for r in records)  # fingerprints only, never the badge ids


def test_a_lockdown_command_stops_remote_unlocks_until_it_ends(door, door_dir, weights_dir, tmp_path, capsys):
    import threading
    import uuid

    import paho.mqtt.publish as publish
    from gpiozero.pins.mock import MockFactory

    from edge.config import load_config
    from edge.daemon.runner import run_door
    from tests.mosquitto import Mosquitto, wait_until

    camera = frames(tmp_path / "empty", Path("."), [(None, 2)])
    with Mosquitto(tmp_path / "broker") as broker:
        mqtt = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\noutbox_path = "{tmp_path / "outbox.db"}"\n'
                "commands = true\nallow_unlock_command = true")
        path = config(door, door_dir, weights_dir, camera, mqtt, fps=5)
        path.write_text(path.read_text().replace("fps = 5", "fps = 5\nloop = true"))
        stop, factory, events = threading.Event(), MockFactory(), []
        thread = threading.Thread(target=run_door, args=(load_config(path),), kwargs=dict(
            stop=stop, pin_factory=factory, echo=None, extra_sink=events.append, handle_signals=False))
        thread.start()

        def send(name: str) -> None:
            payload = json.dumps({"command": name, "id": uuid.uuid4().hex,
                                  "time": datetime.now(timezone.utc).isoformat()})
            publish.single("facegate/test-door/command", payload, qos=1, hostname="127.0.0.1", port=broker.port)

        def send_until(name: str, done) -> bool:
            """Send the command (a fresh id each time) until ``done()``: the door subscribes to its command topic
            a moment after it starts, and a command sent before that reaches nobody."""
            for _ in range(20):
                send(name)
                if wait_until(done, timeout=1.0):
                    return True
            return False

        def alarms() -> list[str]:
            return [e.detail.get("reason") for e in events if e.type == "alarm"]

        try:
            assert wait_until(lambda: any(e.type == "started" for e in events), timeout=30)
            assert send_until("lockdown", lambda: "lockdown" in alarms())
            send("unlock")
            assert wait_until(lambda: any(r["reason"] == "lockdown" and r["mode"] == "command"
                                          for r in logged(door, capsys)))
            assert not any(e.type == "door_unlocked" for e in events)
            assert not any(s.state for s in factory.pin(17).states)  # never on during the lockdown
            send("end_lockdown")
            assert wait_until(lambda: "lockdown_ended" in alarms())
            send("unlock")
            assert wait_until(lambda: any(e.type == "door_unlocked" for e in events))
            assert [e.detail["cause"] for e in events if e.type == "door_unlocked"] == ["command"]
        finally:
            stop.set()
            thread.join(timeout=30)
