"""Where things are in TOML text, found without parsing it: each key's line, how deep values nest, a table's lines.

:mod:`tomllib` gives values without line numbers, and recurses once per level of nesting: a value nested a
thousand levels deep makes it raise :class:`RecursionError`. :func:`scan_lines` reads the text line by line
instead, knowing just enough TOML for that: table headers, dotted and quoted keys, strings (one-line and
multi-line: what is inside one is never taken for structure), comments, and the ``[`` and ``{`` of arrays and
inline tables, which may span lines. It reads any text, valid TOML or not: a line it cannot read is passed
over, and a value nested more than :data:`MAX_DEPTH` levels is given up at the end of its line, so that it
cannot swallow the rest of the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

#: What a line of TOML text is: a table header, a key's first line, more of a value, anything else.
LineKind = Literal["header", "key", "more", "other"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The deepest nesting a config may have: one level per table or key part, array and inline table.
MAX_DEPTH = 32

_KEY_PART = re.compile(r"""\s*([A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')\s*""")


@dataclass(frozen=True)
class TomlLine:
    """One line of TOML text, as :func:`scan_lines` sees it."""

    number: int  #: 1-based, as tomllib counts lines
    text: str  #: the line, without its ``\n``
    #: ``"header"`` a table header; ``"key"`` the first line of a ``key = value``; ``"more"`` the rest of a
    #: value spanning lines; ``"other"`` a blank line, a comment, or a line that is not TOML.
    kind: LineKind
    table: tuple[str, ...]  #: the table the line is in (a header: the table it opens)
    key: tuple[str, ...]  #: the key, below ``table``, whose value the line holds (``()`` if none)
    depth: int  #: how many levels deep the line nests at its deepest (see :data:`MAX_DEPTH`)


def scan_lines(text: str) -> Iterator[TomlLine]:
    """Every line of ``text`` with its table, key and nesting depth."""
    table: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # the key of a value that spans lines
    depth = 0  # open [ and { of a value that spans lines
    open_string: str | None = None  # the delimiter of a multi-line string that spans lines
    for number, line in enumerate(text.split("\n"), 1):
        kind: LineKind
        if open_string is not None or depth > 0:
            kind, peak = "more", depth
            start = _string_end(line, 0, open_string) if open_string is not None else 0
            if start is not None:
                depth, open_string, peak = _scan_value(line, start, depth)
        else:
            stripped = line.lstrip()
            parsed = _header(stripped) if stripped.startswith("[") else None
            if parsed is not None:
                table, key = tuple(parsed[0]), ()
                yield TomlLine(number, line, "header", table, key, len(table))
                continue
            parsed = None if stripped.startswith("[") else _parse_key(line, 0)
            if parsed is None or not line[parsed[1]:].startswith("="):
                yield TomlLine(number, line, "other", table, (), 0)
                continue
            kind, key = "key", tuple(parsed[0])
            depth, open_string, peak = _scan_value(line, parsed[1] + 1, 0)
        nested = len(table) + len(key) + peak
        yield TomlLine(number, line, kind, table, key, nested)
        if nested > MAX_DEPTH:
            depth, open_string = 0, None  # give the value up: the lines below are read afresh


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a valid TOML document is defined: ``("relay", "pin") -> 1-based line``.

    Table headers (``[relay]``, ``[[x]]``), dotted and quoted keys are understood; keys inside inline tables and
    arrays are not listed (their enclosing key is). The first definition of a path wins.
    """
    lines: dict[tuple[str, ...], int] = {}
    for line in scan_lines(text):
        if line.kind == "header":
            lines.setdefault(line.table, line.number)
        elif line.kind == "key":
            key = line.table + line.key
            for n in range(len(line.table) + 1, len(key) + 1):
                lines.setdefault(key[:n], line.number)
    return lines


def first_too_deep(text: str) -> int | None:
    """The number of the first line of ``text`` nested more than :data:`MAX_DEPTH` levels deep, or ``None``."""
    return next((line.number for line in scan_lines(text) if line.depth > MAX_DEPTH), None)


def table_text(text: str, name: str) -> str:
    """``text`` with every line blanked but those of the top-level table ``name``; line numbers are kept.

    Kept: the table's headers (``[name]``, ``[name.sub]``, ``[[name]]``) and the lines below each up to the next
    header, and top-level ``name = ...`` or ``name.key = ...`` definitions. Headers inside multi-line strings
    and arrays are not taken for headers.
    """
    return "\n".join(line.text if (line.table + line.key)[:1] == (name,) else "" for line in scan_lines(text))


def _header(text: str) -> tuple[list[str], int] | None:
    """The key of the table header ``[key]`` or ``[[key]]`` that ``text`` starts with, or ``None``."""
    brackets = 2 if text.startswith("[[") else 1
    parsed = _parse_key(text, brackets)
    return parsed if parsed is not None and text.startswith("]" * brackets, parsed[1]) else None


def _parse_key(text: str, pos: int) -> tuple[list[str], int] | None:
    """The parts of the (dotted) key at ``text[pos:]`` and where it ends, or ``None`` if there is none."""
    parts = []
    while True:
        match = _KEY_PART.match(text, pos)
        if match is None:
            return None
        parts.append(_key_part(match.group(1)))
        pos = match.end()
        if not text.startswith(".", pos):
            return parts, pos
        pos += 1


def _key_part(token: str) -> str:
    if token[0] != '"':
        return token.strip("'")
    try:
        return tomllib.loads(f"k = {token}")["k"]
    except tomllib.TOMLDecodeError:  # a bad escape: not TOML, and tomllib will say so
        return token[1:-1]


def _string_end(line: str, pos: int, delim: str) -> int | None:
    """Where the multi-line string closed by ``delim`` (``\"\"\"`` or ``'''``) ends in ``line[pos:]``, if it does."""
    quote = delim[0]
    i = pos
    while i < len(line):
        if quote == '"' and line[i] == "\\":
            i += 2  # an escape, or a backslash ending the line
            continue
        if line.startswith(delim, i):
            end = i + 3
            while end < len(line) and line[end] == quote and end - i < 5:  # up to 2 quotes before the delimiter
                end += 1
            return end
        i += 1
    return None


def _scan_value(line: str, pos: int, depth: int) -> tuple[int, str | None, int]:
    """Bracket depth after scanning ``line[pos:]``, the delimiter of a multi-line string left open, and the
    deepest bracket depth reached."""
    peak = depth
    i = pos
    while i < len(line):
        c = line[i]
        if c == "#":
            break
        if line.startswith(('"""', "'''"), i):
            delim = line[i: i + 3]
            end = _string_end(line, i + 3, delim)
            if end is None:
                return depth, delim, peak
            i = end
            continue
        if c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
        elif c == "'":
            i = line.find("'", i + 1)
            if i < 0:
                break
        elif c in "[{":
            depth += 1
            peak = max(peak, depth)
        elif c in "]}":
            depth -= 1
        i += 1
    return depth, None, peak
