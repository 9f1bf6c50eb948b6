"""People's names: the one normal form a name is stored, compared and looked up in.

A name is text, NFC-normalised (so ``"Jose\\u0301"`` and ``"José"`` are one person), with surrounding white
space stripped, 1 to :data:`MAX_NAME_LENGTH` characters, and without control, format or unassigned
characters (Unicode category ``C*``: a newline, a tab, an escape, a zero-width space), which would break a log
line, a terminal or an MQTT payload, or make two names look the same. Any letter of any script is fine.

Two names are one person when their :func:`name_key` is the same: names that differ only in case, in white
space (surrounding, or inner runs) or in Unicode form (``"ﬁ"`` / ``"fi"``, a full-width ``"Ｂ"``) are one
person, so ``"ben  affleck"`` cannot be enrolled beside ``"Ben Affleck"``. The key is for comparing only; a
person keeps the spelling they were first stored under.

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


def name_key(name: str) -> str:
    """The key two names are compared by: the same key is the same person.

    NFKC-normalised, case-folded (``"ß"`` and ``"SS"`` fold alike) and NFKC-normalised again, with surrounding
    white space stripped and every inner run of white space made one space: ``"  BEN   Affleck "`` and
    ``"ben affleck"`` have the key ``"ben affleck"``. Never shown or stored: a person keeps their spelling.

    Raises:
        StoreInputError: ``name`` is not a valid name (see :func:`check_name`).
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", check_name(name)).casefold())
    return " ".join(folded.split())
