"""The daemon's access control (edge/daemon/access.py) on a real store, a real access log file and fixed times:
the policy at the door, ``people disable`` taking effect at the next decision, what cannot be decided, and badge+face
on the celebrity photos with the real int8 model (every wrong pair refused, every right one let in)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge.cli import main
from edge.core import access as a
from edge.core.access import DoorPolicy
from edge.core.recognition import img_to_encoding
from edge.core.schedule import Schedule
from edge.daemon.access import AccessControl
from edge.devices.badge.replay import ReplayBadgeReader
from edge.errors import ExitCode
from edge.storage.access_data import AccessReader, badge_fingerprint
from edge.storage.access_log import AccessLog, AccessRecord, utc_text
from edge.storage.store import EncodingStore
from tests.conftest import photo_paths
from tests.store_helpers import unit

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_NOON = datetime(2025, 1, 6, 11, 0, tzinfo=timezone.utc)  # 12:00 in Berlin
MONDAY_NIGHT = datetime(2025, 1, 6, 21, 0, tzinfo=timezone.utc)  # 22:00 in Berlin
OFFICE = DoorPolicy(timezone=BERLIN, groups=frozenset({"staff"}),
                    schedules=(Schedule.parse(["mon-fri"], ["07:00-19:00"]),))


class Wall:
    """A settable wall clock."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def door(tmp_path, weights_dir, rng):
    """A store stamped with the real int8 model (Ada in staff, Bob in no group) and the paths of a door."""
    card = json.loads((weights_dir / "facenet_int8.card.json").read_text())
    path = tmp_path / "people.sqlite"
    with EncodingStore(path, model_sha256=card["sha256"], embedding_size=128) as store:
        store.add("Ada", unit(rng, 2))
        store.add("Bob", unit(rng, 1))
        store.access.set_groups("Ada", ["staff"])
    return {"store": path, "log": tmp_path / "access-log.sqlite"}


def control(door, policy=OFFICE, at=MONDAY_NOON, **kw) -> tuple[AccessControl, Wall]:
    wall = Wall(at)
    return AccessControl(device_id="front", policy=policy, access=AccessReader(door["store"]),
                         access_log=AccessLog(door["log"]), wall=wall, **kw), wall


def logged(door) -> list[AccessRecord]:
    with AccessLog(door["log"], create=False) as log:
        return log.query()


def test_face_mode_grants_and_denies_by_policy_and_logs_every_decision(door):
    access, wall = control(door)
    granted = access.on_recognised("Ada", 0.61, now=1.0)
    assert granted.granted and granted.reason == a.GRANTED and granted.cause == "face" and granted.report
    assert access.on_recognised("Bob", 0.7, now=2.0).reason == a.NOT_IN_GROUP
    wall.at = MONDAY_NIGHT
    first = access.on_recognised("Ada", 0.6, now=3.0)
    again = access.on_recognised("Ada", 0.6, now=4.0)
    later = access.on_recognised("Ada", 0.6, now=14.0)
    assert [r.reason for r in (first, again, later)] == [a.OUTSIDE_HOURS] * 3
    assert (first.report, again.report, later.report) == (True, False, True)  # rate-limited like unknown
    assert first.event_detail() == {"reason": "outside_hours", "mode": "face",
                                    "detail": "Mon 22:00 is outside Ada's hours"}
    access.close()
    rows = logged(door)
    assert [(r.person, r.result, r.reason) for r in rows] == [
        ("Ada", "granted", "granted"), ("Bob", "denied", "not_in_group"), ("Ada", "denied", "outside_hours"),
        ("Ada", "denied", "outside_hours"), ("Ada", "denied", "outside_hours")]  # every decision, reported or not
    assert rows[0].time == utc_text(MONDAY_NOON) and rows[0].door == "front" and rows[0].distance == 0.61


def test_people_disable_takes_effect_at_the_next_decision(door):
    access, _ = control(door, policy=DoorPolicy())
    assert access.on_recognised("Ada", 0.6, now=1.0).granted
    assert main(["people", "disable", "Ada", "--store", str(door["store"])]) == ExitCode.OK
    assert access.on_recognised("Ada", 0.6, now=2.0).reason == a.DISABLED
    assert main(["people", "validity", "Bob", "--until", "2024-12-31", "--store", str(door["store"])]) == 0
    assert access.on_recognised("Bob", 0.6, now=3.0).reason == a.EXPIRED
    assert main(["people", "enable", "Ada", "--store", str(door["store"])]) == ExitCode.OK
    assert access.on_recognised("Ada", 0.6, now=4.0).granted
    access.close()


def test_what_cannot_be_decided_stays_shut_and_says_why(door):
    access, _ = control(door, policy=DoorPolicy())
    nobody = access.on_recognised("Zed", 0.5, now=1.0)
    assert nobody.reason == a.UNDECIDABLE and "no record in the store now" in nobody.detail
    door["store"].unlink()
    gone = access.on_recognised("Ada", 0.5, now=2.0)
    assert not gone.granted and gone.reason == a.UNDECIDABLE and "is not there" in gone.detail
    assert "cannot be read" in access.startup_problems()[0]
    access.close()
    assert [r.reason for r in logged(door)] == [a.UNDECIDABLE, a.UNDECIDABLE]


def test_lockdown_unknown_faces_presentation_attacks_and_the_remote_unlock(door):
    access, _ = control(door, policy=DoorPolicy())
    assert access.allows_command_unlock(now=1.0).granted
    access.set_lockdown(True)
    assert access.on_recognised("Ada", 0.5, now=2.0).reason == a.LOCKDOWN
    refused = access.allows_command_unlock(now=3.0)
    assert not refused.granted and refused.reason == a.LOCKDOWN and refused.mode == "command"
    access.set_lockdown(False)
    assert access.on_recognised("Ada", 0.5, now=4.0).granted
    unknown = access.on_unknown(1.4, now=5.0)
    assert unknown.reason == a.NOT_RECOGNISED and not unknown.report  # the loop's 'unknown' event reports it
    attack = access.deny(a.PRESENTATION_ATTACK, person="Ada", distance=0.5, detail="screen", now=6.0)
    assert attack.reason == "presentation_attack" and attack.report
    access.close()
    assert [(r.mode, r.reason) for r in logged(door)] == [
        ("command", "granted"), ("face", "lockdown"), ("command", "lockdown"), ("face", "granted"),
        ("face", "not_recognised"), ("face", "presentation_attack")]


def test_startup_names_a_group_of_the_policy_that_nobody_has(door):
    policy = DoorPolicy(timezone=BERLIN, groups=frozenset({"staff", "cleaning"}))
    access, _ = control(door, policy=policy)
    assert access.startup_problems() == ["access policy names group 'cleaning', which nobody in the store has"]
    access.close()


def test_the_purge_thread_keeps_the_retention(door):
    with AccessLog(door["log"]) as log:
        for days in (60, 45, 31, 29, 1):
            when = datetime(2025, 1, 6, tzinfo=timezone.utc) - timedelta(days=days)
            log.record(AccessRecord(utc_text(when), "front", f"{days}d", "face", "granted", "granted"))
    access, _ = control(door, policy=DoorPolicy(), at=datetime(2025, 1, 6, tzinfo=timezone.utc), retention_days=30)
    access.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(logged(door)) > 2:
        time.sleep(0.05)
    access.close()
    assert [r.person for r in logged(door)] == ["29d", "1d"]


# -- badge+face on the celebrity photos, real int8 model ---------------------------------------------------------


@pytest.fixture(scope="module")
def celebrity_door(tmp_path_factory, face_model, celebrity_db, photos_dir):
    """Everyone's train photos in a real store, a badge each; each val photo's encoding (the frames at the door)."""
    root = tmp_path_factory.mktemp("badge-door")
    store = EncodingStore(root / "people.sqlite", model_sha256=face_model.model_sha256, embedding_size=128)
    for name, encodings in celebrity_db.items():
        store.add(name, encodings)
        store.access.add_badge(name, f"BADGE-{name.upper()}")
    val: dict[str, list[np.ndarray]] = {}
    for person, path in photo_paths(photos_dir, "val"):
        val.setdefault(person, []).append(img_to_encoding(path, face_model))
    yield {"root": root, "store": store, "gallery": face_model.open_set(store), "val": val}
    store.close()


def badge_control(celebrity_door, tmp_path, **kw) -> AccessControl:
    return AccessControl(device_id="lab", policy=DoorPolicy(mode=a.MODE_BADGE_FACE),
                         access=AccessReader(celebrity_door["root"] / "people.sqlite"),
                         access_log=AccessLog(tmp_path / "access-log.sqlite"), gallery=celebrity_door["gallery"],
                         wall=Wall(MONDAY_NOON), votes_needed=2, votes_window=3, min_face_px=80, **kw)


def attempt(access: AccessControl, badge: str, encoding: np.ndarray, t: float) -> list:
    """A badge read, then the same face in three frames 0.2 s apart: every result."""
    results = access.on_badge(badge, now=t)
    for k in range(3):
        results += access.on_face(encoding, 150.0, now=t + 0.2 * (k + 1))
    return results + access.poll(now=t + 30.0)


def test_the_right_badge_with_another_enrolled_persons_face_is_refused_on_every_pair(celebrity_door, tmp_path):
    access = badge_control(celebrity_door, tmp_path)
    val, t, refused = celebrity_door["val"], 0.0, 0
    for holder in val:
        for other, photos in val.items():
            if other == holder:
                continue
            for encoding in photos:
                t += 100.0
                results = attempt(access, f"BADGE-{holder.upper()}", encoding, t)
                assert [r.reason for r in results] == [a.BADGE_FACE_MISMATCH], (holder, other, results)
                assert results[0].person == holder and results[0].distance > results[0].threshold
                refused += 1
    assert refused == 5 * 4 * 5
    access.close()


def test_the_right_badge_with_the_right_face_opens_for_every_photo(celebrity_door, tmp_path):
    access = badge_control(celebrity_door, tmp_path)
    t, one_to_n = 0.0, celebrity_door["gallery"].threshold.value
    for person, photos in celebrity_door["val"].items():
        for encoding in photos:
            t += 100.0
            results = attempt(access, f"BADGE-{person.upper()}", encoding, t)
            assert [(r.granted, r.reason, r.person, r.cause) for r in results] == [
                (True, a.GRANTED, person, "badge+face")]
            assert results[0].badge == badge_fingerprint(f"BADGE-{person.upper()}")
            assert results[0].threshold > one_to_n  # the 1:1 threshold is looser than the 1:N one
    access.close()
    with AccessLog(tmp_path / "access-log.sqlite", create=False) as log:
        assert len(log.query(result="granted", reason="granted")) == 25
        assert all(r.badge and "BADGE" not in r.badge for r in log.query())  # fingerprints only


def test_badges_without_faces_faces_without_badges_and_unknown_or_unreadable_badges(celebrity_door, tmp_path):
    access = badge_control(celebrity_door, tmp_path, report_interval=10.0)
    madonna = celebrity_door["val"]["madonna"][0]
    assert access.on_badge("BADGE-MADONNA", now=0.0) == []
    assert [r.reason for r in access.poll(now=6.0)] == [a.BADGE_WITHOUT_FACE]
    no_badge = access.on_face(madonna, 150.0, now=7.0)
    assert [(r.reason, r.report) for r in no_badge] == [(a.FACE_WITHOUT_BADGE, True)]
    assert access.on_face(madonna, 150.0, now=8.0) == []  # one denial per interval, not one per frame
    assert access.on_face(madonna, 20.0, now=30.0) == []  # too small a face counts for nothing
    (unknown,) = access.on_badge("NOBODYS-BADGE", now=40.0)
    assert unknown.reason == a.UNKNOWN_BADGE and unknown.person is None
    assert unknown.badge == badge_fingerprint("NOBODYS-BADGE")
    (garbage,) = access.on_badge(None, now=41.0, problem="key code 59 is not a character of the US layout")
    assert garbage.reason == a.BADGE_UNREADABLE and "key code 59" in garbage.detail
    access.close()


def test_a_disabled_badge_holder_is_refused_at_the_badge_and_their_face_opens_nothing(celebrity_door, tmp_path):
    store = celebrity_door["store"]
    store.access.set_enabled("elton_john", False)
    try:
        access = badge_control(celebrity_door, tmp_path)
        (refused,) = access.on_badge("BADGE-ELTON_JOHN", now=0.0)
        assert refused.reason == a.DISABLED and refused.person == "elton_john" and refused.mode == "badge+face"
        face = celebrity_door["val"]["elton_john"][0]
        assert [r.reason for r in access.on_face(face, 150.0, now=0.2)] == [a.FACE_WITHOUT_BADGE]
        assert access.on_face(face, 150.0, now=0.4) == []
        access.close()
    finally:
        store.access.set_enabled("elton_john", True)


def test_badge_reads_come_from_the_reader_thread(celebrity_door, tmp_path):
    replay = tmp_path / "badges.txt"
    replay.write_text("0.0 NOBODYS-BADGE\n0.0 has space\n0.1 BADGE-MADONNA\n")
    access = badge_control(celebrity_door, tmp_path, badge_reader=lambda: ReplayBadgeReader(replay))
    access.start()
    results: list = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(results) < 2:
        results += access.poll(now=1.0)
        time.sleep(0.05)
    while time.monotonic() < deadline and access.session.pending is None:  # the third read opens a window
        results += access.poll(now=1.0)
        time.sleep(0.05)
    assert [r.reason for r in results] == [a.UNKNOWN_BADGE, a.BADGE_UNREADABLE]
    assert access.session.pending == "madonna"
    face = celebrity_door["val"]["madonna"][1]
    granted = access.on_face(face, 150.0, now=1.2) + access.on_face(face, 150.0, now=1.4)
    assert [r.reason for r in granted] == [a.GRANTED]
    access.close()
    assert access.alarms() == []


def test_a_badge_reader_that_fails_is_an_alarm_and_is_opened_again(celebrity_door, tmp_path):
    opened: list[int] = []
    go = threading.Event()

    def broken():
        go.wait(10)  # the door has already asked for alarms once: the reader thread's alarm must still reach it
        opened.append(1)
        return ReplayBadgeReader(tmp_path / "missing.txt")

    access = badge_control(celebrity_door, tmp_path, badge_reader=broken)
    access.start()
    assert access.alarms() == []
    alarms: list = []
    go.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(opened) < 2 or not alarms):
        alarms += access.alarms()
        time.sleep(0.05)
    access.close()
    alarms += access.alarms()
    assert len(opened) >= 2 and alarms and alarms[0]["reason"] == "badge_reader_fault"
    assert "cannot read the badge replay" in alarms[0]["error"]
