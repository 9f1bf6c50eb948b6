"""People's names: the one normal form a name is stored, compared and looked up in.

A name is text, NFC-normalised (so ``"Jose\\u0301"`` and ``"José"`` are one person), with surrounding white
space stripped, 1 to :data:`MAX_NAME_LENGTH` characters, and without control, format or unassigned
characters (Unicode category ``C*``: a newline, a tab, an escape, a zero-width space), which would break a log
line, a terminal or an MQTT payload, or make two names look the same. Any letter of any script is fine.

Pure: the standard library and :mod:`edge.errors` only, so every layer (enrolment, the store, an import file)
checks names the same way.
"""

from __future__ import annotations

import unicodedata

from edge.errors import StoreInputError

MAX_NAME_LENGTH = 100  # characters (code points) after normalisation


def check_name(name: str) -> str:
    """The stored form of a person's name: NFC-normalised, surrounding white space stripped.

    Unicode letters are fine (``"José Ñúñez"``, ``"李小龍"``).

    Raises:
        StoreInputError: not a string, empty, longer than :data:`MAX_NAME_LENGTH` characters, or containing a
            control / format / unassigned character (Unicode category ``C*``); the message says which, and
            starts with ``"name "``.
    """
    if not isinstance(name, str):
        raise StoreInputError(f"name must be text, got {type(name).__name__}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise StoreInputError("name must not be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise StoreInputError(f"name must be at most {MAX_NAME_LENGTH} characters, got {len(clean)}")
    bad = next((ch for ch in clean if unicodedata.category(ch).startswith("C")), None)
    if bad is not None:
        raise StoreInputError(f"name must not contain control characters (found U+{ord(bad):04X})")
    return clean
