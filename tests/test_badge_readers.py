"""Badge readers: the key decoding of keyboard-wedge readers (checked against the kernel's own key codes), the evdev
reader on a stand-in input device (this machine has no /dev/input), and the replay reader."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.devices.badge import open_badge_reader
from edge.devices.badge.keyboard import KeyboardWedgeReader
from edge.devices.badge.keys import CHARACTERS, EV_KEY, KEY_CODES, KeyDecoder
from edge.devices.badge.replay import ReplayBadgeReader, parse_replay
from edge.errors import BadgeReaderError, OptionalDependencyError

HEADER = Path("/usr/include/linux/input-event-codes.h")
SHIFT = KEY_CODES["KEY_LEFTSHIFT"]
ENTER = KEY_CODES["KEY_ENTER"]


def keystrokes(text: str, *, enter: bool = True) -> list[tuple[int, int, int]]:
    """The (type, code, value) events a US-layout keyboard-wedge reader sends for ``text`` (+ Enter)."""
    by_char = {}
    for code, (plain, shifted) in CHARACTERS.items():
        by_char.setdefault(plain, (code, False))
        by_char.setdefault(shifted, (code, True))
    events = []
    for ch in text:
        code, shift = by_char[ch]
        if shift:
            events.append((EV_KEY, SHIFT, 1))
        events += [(EV_KEY, code, 1), (0, 0, 0), (EV_KEY, code, 0)]
        if shift:
            events.append((EV_KEY, SHIFT, 0))
    if enter:
        events += [(EV_KEY, ENTER, 1), (EV_KEY, ENTER, 0)]
    return events


def decode(events, decoder=None, start=0.0, step=0.01):
    decoder = decoder or KeyDecoder()
    out = []
    for k, (type_, code, value) in enumerate(events):
        found = decoder.feed(type_, code, value, start + k * step)
        if found is not None:
            out.append(found)
    return out


@pytest.mark.skipif(not HEADER.is_file(), reason=f"{HEADER} is not installed (linux-libc-dev)")
def test_the_key_codes_are_the_kernels():
    defined = dict(re.findall(r"#define\s+(KEY_\w+)\s+(\d+)\b", HEADER.read_text()))
    assert {name: int(defined[name]) for name in KEY_CODES} == KEY_CODES


def test_a_swipe_is_decoded_with_shift_and_the_keypad():
    (read,) = decode(keystrokes("04a2B9c1"))
    assert read.badge == "04a2B9c1" and read.problem is None
    keypad = [(EV_KEY, KEY_CODES[f"KEY_KP{d}"], v) for d in "123" for v in (1, 0)] + [(EV_KEY, 96, 1)]
    assert [r.badge for r in decode(keypad)] == ["123"]
    assert [r.badge for r in decode(keystrokes("AB-12_x") + keystrokes("99"))] == ["AB-12_x", "99"]


def test_autorepeat_releases_and_a_lone_enter_give_nothing():
    events = [(EV_KEY, ENTER, 1), (EV_KEY, KEY_CODES["KEY_7"], 1), (EV_KEY, KEY_CODES["KEY_7"], 2),
              (EV_KEY, KEY_CODES["KEY_7"], 0), (EV_KEY, ENTER, 1)]
    assert [r.badge for r in decode(events)] == ["7"]


@pytest.mark.parametrize("events, problem", [
    ([(EV_KEY, 59, 1), (EV_KEY, ENTER, 1)], "key code 59 is not a character"),  # F1
    (keystrokes("x" * 129), "more than 128 characters"),
    (keystrokes("04 A2"), "not a badge id"),
])
def test_garbage_is_a_read_with_a_problem_never_an_exception(events, problem):
    (read,) = decode(events)
    assert read.badge is None and problem in read.problem
    assert [r.badge for r in decode(keystrokes("OK1"))] == ["OK1"]  # and the next swipe is read as ever


def test_a_read_cut_off_without_enter_is_reported_and_the_next_one_is_read():
    decoder = KeyDecoder(gap_seconds=1.0)
    assert decode(keystrokes("12", enter=False), decoder) == []
    assert decoder.flush(0.5) is None
    cut = decoder.flush(5.0)
    assert cut is not None and "2 characters without Enter" in cut.problem
    assert [r.badge for r in decode(keystrokes("34"), decoder, start=6.0)] == ["34"]
    late = decode(keystrokes("56", enter=False), decoder, start=10.0) + decode([(EV_KEY, ENTER, 1)], decoder, start=12)
    assert [r.problem for r in late] == ["a read of 2 characters without Enter was cut off"]  # Enter came too late


class StandInDevice:
    """An input device as evdev's InputDevice looks to the reader: a readable fd, ``read()``, grab / ungrab."""

    def __init__(self, *, grab_error: OSError | None = None):
        self._r, self._w = os.pipe()
        self.fd = self._r
        self.events: list = []
        self.grabbed = self.closed = False
        self.grab_error = grab_error
        self.read_error: OSError | None = None

    def push(self, events) -> None:
        self.events += [SimpleNamespace(type=t, code=c, value=v) for t, c, v in events]
        os.write(self._w, b"x")

    def read(self):
        if self.read_error is not None:
            raise self.read_error
        os.read(self._r, 4096)
        out, self.events = self.events, []
        return iter(out)

    def grab(self) -> None:
        if self.grab_error is not None:
            raise self.grab_error
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        assert not self.closed, "closed twice"
        self.closed = True
        os.close(self._r)
        os.close(self._w)


def test_the_evdev_reader_grabs_reads_and_releases():
    device = StandInDevice()
    reader = KeyboardWedgeReader("/dev/input/by-id/usb-reader-event-kbd", open_device=lambda path: device)
    assert device.grabbed
    assert reader.read(0.05) is None
    device.push(keystrokes("04A2B9C1") + keystrokes("BAD KEY"))
    first, second = reader.read(1.0), reader.read(1.0)
    assert first.badge == "04A2B9C1" and second.badge is None and "not a badge id" in second.problem
    reader.close()
    reader.close()  # idempotent
    assert device.closed and not device.grabbed
    with pytest.raises(BadgeReaderError, match="closed"):
        reader.read(0.01)


def test_an_unplugged_or_busy_reader_is_a_clear_error():
    device = StandInDevice()
    reader = KeyboardWedgeReader("/dev/input/event7", open_device=lambda path: device)
    device.read_error = OSError(19, "No such device")
    device.push([])
    with pytest.raises(BadgeReaderError, match="stopped: No such device"):
        reader.read(1.0)
    reader.close()
    busy = StandInDevice(grab_error=OSError(16, "Device or resource busy"))
    with pytest.raises(BadgeReaderError, match="another program holds it"):
        KeyboardWedgeReader("/dev/input/event7", open_device=lambda path: busy)
    assert busy.closed

    def missing(path):
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(BadgeReaderError, match="cannot open the badge reader /dev/input/nope"):
        KeyboardWedgeReader("/dev/input/nope", open_device=missing)


@pytest.mark.skipif(importlib.util.find_spec("evdev") is not None, reason="evdev is installed here")
def test_without_evdev_the_reader_says_how_to_install_it():
    with pytest.raises(OptionalDependencyError, match=r"pip install 'facegate\[badge\]'"):
        open_badge_reader(SimpleNamespace(type="evdev", device="/dev/input/event0", grab=True, max_length=128))


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_the_replay_reader_gives_each_read_at_its_time(tmp_path):
    (tmp_path / "badges.txt").write_text("# a demo\n1.0 04A2B9C1\n\n2.5   ??garbage here\n2.5 X1\n")
    t = FakeTime()
    reader = ReplayBadgeReader(tmp_path / "badges.txt", clock=t.clock, wait=t.wait)
    assert reader.read(0.5) is None and t.now == 100.5
    first = reader.read(1.0)
    assert first.badge == "04A2B9C1" and first.time == 101.0 and t.now == 101.0
    garbage, third = reader.read(5.0), reader.read(5.0)
    assert garbage.badge is None and "not a badge id" in garbage.problem and third.badge == "X1"
    assert reader.read(2.0) is None and t.now == 104.5  # after the last: a quiet reader
    reader.close()
    with pytest.raises(BadgeReaderError, match="closed"):
        reader.read(0.1)


@pytest.mark.parametrize("text, message", [("abc 123\n", "replay.txt:1: not 'SECONDS TEXT'"),
                                           ("1.0\n", "replay.txt:1: not 'SECONDS TEXT'"),
                                           ("2 A\n1 B\n", "replay.txt:2: 1 s is before the line above"),
                                           ("-1 A\n", "replay.txt:1")])
def test_a_malformed_replay_file_names_its_line(tmp_path, text, message):
    path = tmp_path / "replay.txt"
    path.write_text(text)
    with pytest.raises(BadgeReaderError, match=re.escape(message)):
        ReplayBadgeReader(path)
    assert parse_replay("0 A\n") == [(0.0, "A")]


def test_importing_the_badge_readers_and_the_access_control_imports_no_evdev():
    import subprocess
    import sys

    code = ("import sys\nimport edge.devices.badge, edge.devices.badge.keyboard, edge.devices.badge.replay\n"
            "import edge.daemon.access, edge.config.access\nprint('evdev' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False"
