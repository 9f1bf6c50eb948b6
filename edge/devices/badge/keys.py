"""Linux key events to badge ids: what a USB keyboard-wedge reader "types", decoded without the console.

A keyboard-wedge RFID or QR reader is a USB keyboard to the kernel: for each badge it sends one key press per
character of the id, in the US layout (shift held for capitals and symbols), then Enter. :class:`KeyDecoder` turns
the kernel's key events (``EV_KEY`` type, key code, value 1 press / 0 release / 2 repeat) into one
:class:`~edge.devices.badge.base.BadgeRead` per Enter. Garbage is reported as a read with a ``problem``, never raised:
a key the US layout does not give a character for, more than ``max_length`` characters, or keys that stop without an
Enter for ``gap_seconds`` (a cut-off read).

The key codes are the kernel's (``linux/input-event-codes.h``, a stable ABI); :data:`KEY_CODES` names them so a test
can compare them with the header. No evdev needed.
"""

from __future__ import annotations

from edge.devices.badge.base import BadgeRead, badge_read

EV_KEY = 0x01

#: Kernel key names -> codes (``linux/input-event-codes.h``), for every key :data:`CHARACTERS` maps.
KEY_CODES = {
    "KEY_1": 2, "KEY_2": 3, "KEY_3": 4, "KEY_4": 5, "KEY_5": 6, "KEY_6": 7, "KEY_7": 8, "KEY_8": 9, "KEY_9": 10,
    "KEY_0": 11, "KEY_MINUS": 12, "KEY_EQUAL": 13, "KEY_Q": 16, "KEY_W": 17, "KEY_E": 18, "KEY_R": 19, "KEY_T": 20,
    "KEY_Y": 21, "KEY_U": 22, "KEY_I": 23, "KEY_O": 24, "KEY_P": 25, "KEY_LEFTBRACE": 26, "KEY_RIGHTBRACE": 27,
    "KEY_ENTER": 28, "KEY_A": 30, "KEY_S": 31, "KEY_D": 32, "KEY_F": 33, "KEY_G": 34, "KEY_H": 35, "KEY_J": 36,
    "KEY_K": 37, "KEY_L": 38, "KEY_SEMICOLON": 39, "KEY_APOSTROPHE": 40, "KEY_GRAVE": 41, "KEY_LEFTSHIFT": 42,
    "KEY_BACKSLASH": 43, "KEY_Z": 44, "KEY_X": 45, "KEY_C": 46, "KEY_V": 47, "KEY_B": 48, "KEY_N": 49, "KEY_M": 50,
    "KEY_COMMA": 51, "KEY_DOT": 52, "KEY_SLASH": 53, "KEY_RIGHTSHIFT": 54, "KEY_KPASTERISK": 55, "KEY_SPACE": 57,
    "KEY_KP7": 71, "KEY_KP8": 72, "KEY_KP9": 73, "KEY_KPMINUS": 74, "KEY_KP4": 75, "KEY_KP5": 76, "KEY_KP6": 77,
    "KEY_KPPLUS": 78, "KEY_KP1": 79, "KEY_KP2": 80, "KEY_KP3": 81, "KEY_KP0": 82, "KEY_KPDOT": 83,
    "KEY_KPENTER": 96, "KEY_KPSLASH": 98,
}

_PLAIN = {
    "KEY_1": "1!", "KEY_2": "2@", "KEY_3": "3#", "KEY_4": "4$", "KEY_5": "5%", "KEY_6": "6^", "KEY_7": "7&",
    "KEY_8": "8*", "KEY_9": "9(", "KEY_0": "0)", "KEY_MINUS": "-_", "KEY_EQUAL": "=+", "KEY_LEFTBRACE": "[{",
    "KEY_RIGHTBRACE": "]}", "KEY_SEMICOLON": ";:", "KEY_APOSTROPHE": "'\"", "KEY_GRAVE": "`~", "KEY_BACKSLASH": "\\|",
    "KEY_COMMA": ",<", "KEY_DOT": ".>", "KEY_SLASH": "/?", "KEY_SPACE": "  ",
    "KEY_KP0": "00", "KEY_KP1": "11", "KEY_KP2": "22", "KEY_KP3": "33", "KEY_KP4": "44", "KEY_KP5": "55",
    "KEY_KP6": "66", "KEY_KP7": "77", "KEY_KP8": "88", "KEY_KP9": "99", "KEY_KPDOT": "..", "KEY_KPMINUS": "--",
    "KEY_KPPLUS": "++", "KEY_KPASTERISK": "**", "KEY_KPSLASH": "//",
    **{f"KEY_{c}": c.lower() + c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
}
#: Key code -> (character, character with shift), US layout.
CHARACTERS = {KEY_CODES[name]: (pair[0], pair[1]) for name, pair in _PLAIN.items()}
ENTER_KEYS = frozenset({KEY_CODES["KEY_ENTER"], KEY_CODES["KEY_KPENTER"]})
SHIFT_KEYS = frozenset({KEY_CODES["KEY_LEFTSHIFT"], KEY_CODES["KEY_RIGHTSHIFT"]})


class KeyDecoder:
    """Key events in, one :class:`BadgeRead` per Enter out (see the module docstring).

    Args:
        max_length: characters a read may have at most (longer: a problem, reported at its Enter).
        gap_seconds: a read whose keys stop this long without an Enter is dropped as cut off.
    """

    def __init__(self, *, max_length: int = 128, gap_seconds: float = 1.0):
        self.max_length = max_length
        self.gap_seconds = gap_seconds
        self._chars: list[str] = []
        self._bad: str | None = None
        self._shift = False
        self._last = 0.0

    def feed(self, type_: int, code: int, value: int, now: float) -> BadgeRead | None:
        """One kernel input event; a read when it was the Enter that ends one."""
        if type_ != EV_KEY:
            return None
        if code in SHIFT_KEYS:
            self._shift = value != 0
            return None
        if value != 1:  # a release, or a key held down repeating
            return None
        cut = self.flush(now)
        if cut is not None and code not in ENTER_KEYS:  # the cut-off read is reported, this key starts a new one
            self._key(code, now)
            return cut
        if code in ENTER_KEYS:
            if cut is not None:
                return cut
            return self._finish(now) if self._chars or self._bad else None
        self._key(code, now)
        return None

    def flush(self, now: float) -> BadgeRead | None:
        """A read that stopped without Enter more than ``gap_seconds`` ago, as a problem (then forgotten)."""
        if (self._chars or self._bad) and now - self._last > self.gap_seconds:
            count = len(self._chars)
            self._reset()
            return BadgeRead(now, problem=f"a read of {count} characters without Enter was cut off")
        return None

    def _key(self, code: int, now: float) -> None:
        self._last = now
        pair = CHARACTERS.get(code)
        if pair is None:
            self._bad = self._bad or f"key code {code} is not a character of the US layout"
        elif len(self._chars) >= self.max_length:
            self._bad = self._bad or f"more than {self.max_length} characters before Enter"
        else:
            self._chars.append(pair[1] if self._shift else pair[0])

    def _finish(self, now: float) -> BadgeRead:
        text, bad = "".join(self._chars), self._bad
        self._reset()
        return BadgeRead(now, problem=bad) if bad else badge_read(text, now)

    def _reset(self) -> None:
        self._chars, self._bad = [], None
