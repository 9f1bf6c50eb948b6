"""The access log: real SQLite files, every record kept across a SIGKILL, the retention purge in batches, filters,
and ``facegate log`` (text, --json, --csv)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from edge.cli import main
from edge.errors import AccessLogError, ExitCode
from edge.storage.access_log import AccessLog, AccessRecord, utc_text
from tests.conftest import REPO

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def record(minutes: float, person: str | None = "Ada", result: str = "granted", reason: str = "granted",
           **kw) -> AccessRecord:
    return AccessRecord(utc_text(T0 + timedelta(minutes=minutes)), kw.pop("door", "front"), person,
                        kw.pop("mode", "face"), result, reason, **kw)


@pytest.fixture
def filled_log(tmp_path):
    path = tmp_path / "access-log.sqlite"
    with AccessLog(path) as log:
        for r in (record(0, distance=0.61, threshold=1.019), record(5, "Bob", "denied", "outside_hours"),
                  record(10, None, "denied", "unknown_badge", mode="badge+face", badge="c266b9542116d6a2"),
                  record(15, "Ada", "denied", "disabled", door="back"), record(60 * 24, "Bob")):
            assert log.record(r)
    return path


def test_records_are_written_and_read_back_with_every_filter(filled_log):
    with AccessLog(filled_log, create=False) as log:
        assert len(log) == 5
        everything = log.query()
        assert [r.reason for r in everything] == ["granted", "outside_hours", "unknown_badge", "disabled", "granted"]
        assert everything[0] == record(0, distance=0.61, threshold=1.019)
        assert [r.reason for r in log.query(person="Ada")] == ["granted", "disabled"]
        assert [r.reason for r in log.query(person="")] == ["unknown_badge"]
        assert [r.person for r in log.query(result="denied")] == ["Bob", None, "Ada"]
        assert [r.door for r in log.query(door="back")] == ["back"]
        window = log.query(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=15))
        assert [r.reason for r in window] == ["outside_hours", "unknown_badge"]  # since inclusive, until exclusive
        assert [r.reason for r in log.query(limit=2, newest_first=True)] == ["granted", "disabled"]
    assert os.stat(filled_log).st_mode & 0o777 == 0o600


def test_the_purge_deletes_only_old_rows_in_batches(tmp_path):
    with AccessLog(tmp_path / "log.sqlite") as log:
        for k in range(1200):
            log.record(record(k * 0.01, person=f"p{k}"))
        log.record(record(60 * 24 * 40))  # 40 days later
        assert log.purge_batch(T0 + timedelta(minutes=5), limit=100) == 100
        assert log.query()[0].person == "p100"  # the oldest went first
        now = T0 + timedelta(days=40, minutes=1)
        assert log.purge(now, retention_days=30, limit=250) == 1100
        assert [r.person for r in log.query()] == ["Ada"] and log.purge(now, retention_days=30) == 0


def test_every_record_survives_a_sigkill(tmp_path):
    """A child process records 50 decisions, says so, and is killed with SIGKILL: all 50 are in the file."""
    path = tmp_path / "access-log.sqlite"
    code = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from tests.test_access_log import record
from edge.storage.access_log import AccessLog
log = AccessLog({str(path)!r})
for k in range(50):
    assert log.record(record(k, person=f"p{{k}}"))
print("written", flush=True)
time.sleep(60)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    with AccessLog(path, create=False) as log:
        assert [r.person for r in log.query()] == [f"p{k}" for k in range(50)]


def test_a_file_that_is_not_an_access_log_is_refused_and_left_alone(tmp_path, filled):
    store, _ = filled
    before = store.read_bytes()
    with pytest.raises(AccessLogError, match="it is another SQLite file"):
        AccessLog(store)
    assert store.read_bytes() == before
    (tmp_path / "junk").write_bytes(b"junk" * 100)
    with pytest.raises(AccessLogError, match="not a usable access log"):
        AccessLog(tmp_path / "junk")
    with pytest.raises(AccessLogError):
        AccessLog(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_write_that_fails_is_counted_never_raised(tmp_path):
    log = AccessLog(tmp_path / "log.sqlite")
    blocker = sqlite3.connect(tmp_path / "log.sqlite", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    log._conn.execute("PRAGMA busy_timeout = 50")
    assert log.record(record(0)) is False and log.write_errors == 1
    blocker.rollback()
    assert log.record(record(1)) is True
    log.close()
    assert log.record(record(2)) is False and log.write_errors == 2
    blocker.close()


# -- facegate log ------------------------------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["log", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_facegate_log_filters_and_prints_text_json_and_csv(capsys, filled_log, tmp_path):
    code, out, _ = run(capsys, "--log", str(filled_log))
    assert code == ExitCode.OK and "5 record(s)" in out and "outside_hours" in out and "(unknown)" in out
    code, out, _ = run(capsys, "--log", str(filled_log), "--json", "--person", "Ada", "--result", "denied")
    assert [json.loads(line)["reason"] for line in out.splitlines()] == ["disabled"]
    code, out, _ = run(capsys, "--log", str(filled_log), "--json", "--unknown")
    (only,) = [json.loads(line) for line in out.splitlines()]
    assert only["badge"] == "c266b9542116d6a2" and only["mode"] == "badge+face"
    since = (T0 + timedelta(minutes=1)).isoformat()
    code, out, _ = run(capsys, "--log", str(filled_log), "--json", "--since", since, "--until", "2025-03-01T08:11Z")
    assert [json.loads(line)["reason"] for line in out.splitlines()] == ["outside_hours", "unknown_badge"]
    target = tmp_path / "export.csv"
    assert run(capsys, "--log", str(filled_log), "--csv", str(target), "--reason", "granted")[0] == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["person"] for r in rows] == ["Ada", "Bob"] and rows[0]["distance"] == "0.61"
    assert os.stat(target).st_mode & 0o777 == 0o600
    code, out, _ = run(capsys, "--log", str(filled_log), "--csv", "-", "--door", "back")
    assert out.splitlines()[0].startswith("time,door,person") and len(out.splitlines()) == 2


def test_facegate_log_finds_the_log_of_a_door_config(capsys, tmp_path, base_text):
    (tmp_path / "door.toml").write_text(base_text + '\n[access]\nlog_path = "logs/door-log.sqlite"\n')
    with AccessLog(tmp_path / "logs" / "door-log.sqlite") as log:
        log.record(record(0))
    code, out, _ = run(capsys, "--config", str(tmp_path / "door.toml"), "--json")
    assert code == ExitCode.OK and json.loads(out)["person"] == "Ada"


def test_facegate_log_refuses_a_missing_log_and_bad_times(capsys, tmp_path):
    code, _, err = run(capsys, "--log", str(tmp_path / "nope.sqlite"))
    assert code == ExitCode.ERROR and "no access log at" in err
    with pytest.raises(SystemExit) as stop:
        main(["log", "--log", str(tmp_path / "nope.sqlite"), "--since", "yesterday"])
    assert stop.value.code == ExitCode.USAGE and "not an ISO-8601 date or time" in capsys.readouterr().err
