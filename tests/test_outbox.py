"""The durable outbox: order, acknowledgement, reopen, file mode, the row bound, and a full disk (a real one too:
a small tmpfs filled up, for which the tests need root)."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.errors import FacegateError
from edge.storage.outbox import Outbox


def _put(outbox: Outbox, n: int, *, start: int = 0, size: int = 10) -> list[str]:
    ids = [f"ev{i:04d}" for i in range(start, start + n)]
    for event_id in ids:
        outbox.put(event_id, "facegate/d/events", f'{{"id":"{event_id}","pad":"{"x" * size}"}}', 1, False)
    return ids


def test_put_pending_ack_in_order_and_survives_reopen(tmp_path):
    path = tmp_path / "outbox.db"
    with Outbox(path) as outbox:
        ids = _put(outbox, 5)
        assert outbox.put(ids[0], "other/topic", b"again") is True  # same id: ignored
        assert len(outbox) == 5
        entries = outbox.pending(10)
        assert [e.event_id for e in entries] == ids
        assert entries[0].topic == "facegate/d/events" and entries[0].qos == 1 and entries[0].retain is False
        assert entries[0].payload.startswith(b'{"id":"ev0000"')
        assert [e.event_id for e in outbox.pending(2, after=entries[1].seq)] == ids[2:4]
        outbox.ack(ids[1])
        outbox.ack("never-put")
        assert len(outbox) == 4
    with Outbox(path) as reopened:
        assert [e.event_id for e in reopened.pending(10)] == [ids[0], *ids[2:]]
        later = _put(reopened, 1, start=100)
        assert reopened.pending(10)[-1].event_id == later[0]  # sequence continues after the old rows


def test_files_are_private(tmp_path):
    path = tmp_path / "sub" / "outbox.db"
    with Outbox(path) as outbox:
        _put(outbox, 1)
        for name in (path, path.with_name("outbox.db-wal"), path.with_name("outbox.db-shm")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


def test_oldest_dropped_beyond_max_events(tmp_path, caplog):
    with Outbox(tmp_path / "o.db", max_events=5) as outbox, caplog.at_level(logging.WARNING, "edge.storage.outbox"):
        ids = _put(outbox, 12)
        assert len(outbox) == 5
        assert [e.event_id for e in outbox.pending(100)] == ids[-5:]
        assert outbox.counters.dropped == 7
        assert "dropped the 1 oldest" in caplog.text


def test_full_disk_keeps_events_in_memory_and_recovers(tmp_path, caplog):
    """``max_bytes`` caps the file with SQLite's max_page_count: a write past it fails with the very
    'database or disk is full' error of a full disk."""
    path = tmp_path / "o.db"
    with Outbox(path, max_bytes=16 * 1024) as outbox, caplog.at_level(logging.ERROR, "edge.storage.outbox"):
        ids = _put(outbox, 40, size=1000)  # ~40 KB of payload into a 16 KiB file: must not raise
        counters = outbox.counters
        assert counters.write_errors > 0 and counters.in_memory > 0 and counters.dropped == 0
        assert "database or disk is full" in caplog.text
        assert outbox.degraded
        assert len(outbox) == 40
        assert [e.event_id for e in outbox.pending(100)] == ids  # file rows, then memory, in put order
        in_memory = counters.in_memory

        for event_id in ids[:38]:  # acknowledged: the file rows' space is freed
            outbox.ack(event_id)
        more = _put(outbox, 1, start=100, size=10)
        assert not outbox.degraded and outbox.counters.in_memory == 0
        assert [e.event_id for e in outbox.pending(100)] == ids[38:] + more
        assert in_memory > 2
    with Outbox(path) as reopened:  # what was in memory is now on disk
        assert [e.event_id for e in reopened.pending(100)] == ids[38:] + more


def test_memory_bound_while_disk_full(tmp_path):
    with Outbox(tmp_path / "o.db", max_bytes=16 * 1024, max_memory_events=3) as outbox:
        ids = _put(outbox, 40, size=1000)
        assert outbox.counters.in_memory == 3
        assert outbox.counters.dropped > 0
        assert [e.event_id for e in outbox.pending(100)][-3:] == ids[-3:]


def test_close_is_idempotent_and_final(tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    outbox.close()
    outbox.close()
    outbox.ack("x")  # ignored after close
    with pytest.raises(FacegateError, match="closed"):
        outbox.put("x", "t", b"p")


def test_a_file_that_cannot_be_the_outbox_leaves_it_in_memory_and_untouched(tmp_path):
    """The door must keep working: events are kept in memory (delivered while the process runs), the caller is
    told why (open_error), and the file is left as it was."""
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with Outbox(path) as outbox:
        assert not outbox.durable and "not a usable outbox" in outbox.open_error
        outbox.put("e1", "t", b"p1")
        outbox.put("e2", "t", b"p2")
        assert [e.event_id for e in outbox.pending()] == ["e1", "e2"] and len(outbox) == 2
        outbox.ack("e1")
        assert [e.event_id for e in outbox.pending()] == ["e2"]
    assert path.read_bytes() == b"this is not sqlite" * 100
    blocked = tmp_path / "a-file" / "o.db"  # its folder cannot be made: a file is in the way
    (tmp_path / "a-file").write_text("x")
    with Outbox(blocked) as outbox:
        assert not outbox.durable and "cannot open the outbox" in outbox.open_error


def test_an_outbox_in_memory_moves_into_its_file_once_the_file_can_be_opened(tmp_path, caplog):
    """The folder cannot be made at start (a file is in the way); later it can: the pending events move into the
    file, in order, none lost and none twice, and the file is used from then on. Tried at most every
    retry_seconds (a fake clock here)."""
    now = [0.0]
    (tmp_path / "blocked").write_text("a file where the folder should be")
    path = tmp_path / "blocked" / "outbox.db"
    with Outbox(path, retry_seconds=30, clock=lambda: now[0]) as outbox:
        assert not outbox.durable
        ids = _put(outbox, 5)
        outbox.ack(ids[1])
        seqs = {e.event_id: e.seq for e in outbox.pending()}
        now[0] = 31.0
        assert outbox.reopen_file() is None and not outbox.durable  # still blocked
        (tmp_path / "blocked").unlink()
        now[0] = 40.0
        assert outbox.reopen_file() is None  # not due: the last try was at 31
        now[0] = 61.0
        with caplog.at_level(logging.WARNING, "edge.storage.outbox"):
            assert outbox.reopen_file() == 4
        assert outbox.durable and outbox.open_error is None and "durable again" in caplog.text
        assert {e.event_id: e.seq for e in outbox.pending()} == {i: seqs[i] for i in ids if i != ids[1]}
        assert outbox.reopen_file(force=True) is None  # durable already
        outbox.ack(ids[0])  # acknowledged after the move: gone from the file
        later = _put(outbox, 1, start=100)
        assert [e.event_id for e in outbox.pending()] == ids[2:] + later
        assert len(outbox) == 4
    assert _rows(path) == ids[2:] + later  # on disk, once each


def _rows(path: Path) -> list[str]:
    """The event ids in the outbox file, in sequence order, read by a connection of its own."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT event_id FROM outbox ORDER BY seq")]
    finally:
        conn.close()


@contextmanager
def small_filesystem(path: Path, *, kib: int = 256) -> Iterator[Path]:
    """A real filesystem of ``kib`` KiB mounted at ``path`` (a tmpfs: root only; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("a small filesystem that fills up (tmpfs) needs root to mount")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill_up(folder: Path) -> Path:
    """Write a file into ``folder`` until its filesystem has no byte left; the file (delete it to make room)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


def test_a_full_filesystem_at_start_and_then_room_again(tmp_path):
    """A real full disk (tmpfs): the outbox a previous process left there cannot even be opened (SQLite cannot make
    its shared-memory file: 'disk I/O error'), so events are kept in memory; once there is room, they move into it,
    before the events that process left, and nothing is lost or doubled."""
    with small_filesystem(tmp_path / "disk") as disk:
        path = disk / "outbox.db"
        with Outbox(path) as before:
            left = _put(before, 3, start=900)
        filler = fill_up(disk)
        with Outbox(path, retry_seconds=0) as outbox:
            assert not outbox.durable and "not a usable outbox" in outbox.open_error
            ids = _put(outbox, 4)
            outbox.ack(ids[0])
            assert outbox.reopen_file() is None and not outbox.durable  # still full
            filler.unlink()
            assert outbox.reopen_file() == 3
            assert outbox.durable
            assert [e.event_id for e in outbox.pending()] == ids[1:] + left
            assert len({e.seq for e in outbox.pending()}) == 6
            later = _put(outbox, 1, start=100)
            outbox.ack(left[0])
        assert _rows(path) == ids[1:] + left[1:] + later
