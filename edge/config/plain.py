"""The parts of the config that need no pydantic: reading and parsing the text (with the nesting limit), the
error that blames one key, and GPIO pins.

``facegate relay-off`` (systemd's safety net after the daemon died) reads the ``[relay]`` table with these and
:mod:`edge.config.relay` alone, so it starts without importing pydantic at all (measured: pydantic's import and
model building are most of a config check's time).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from edge.config.toml_lines import MAX_DEPTH, first_too_deep, tomllib
from edge.errors import ConfigError


class KeyProblem(ValueError):
    """Raised by a model validator to blame one key (a name or a path below the model) of that model."""

    def __init__(self, key: str | tuple[str, ...], message: str):
        super().__init__(message)
        self.key = (key,) if isinstance(key, str) else tuple(key)


class KeyProblems(ValueError):
    """Several :class:`KeyProblem` s of one table at once (each becomes its own line)."""

    def __init__(self, problems: list[KeyProblem]):
        super().__init__("; ".join(f"{'.'.join(p.key)}: {p}" for p in problems))
        self.problems = problems


def located(name: str, keys: list | tuple, message: str, lines: dict[tuple[str, ...], int]) -> str:
    """``<file>:<line>: <key.path>: <message>``, the line of the deepest of ``keys`` the file defines."""
    line = next((lines[tuple(keys[:n])] for n in range(len(keys), 0, -1) if tuple(keys[:n]) in lines), None)
    where = f"{name}:{line}" if line else name
    return f"{where}: {'.'.join(str(k) for k in keys) or '(top level)'}: {message}"


# -- text ---------------------------------------------------------------------------------------------------------


def read_text(path: str | os.PathLike, *, strict: bool = True) -> str:
    """The file's text; ``strict=False`` replaces bytes that are not UTF-8 instead of refusing the file.

    Raises:
        ConfigError: the file cannot be read, or (``strict``) is not UTF-8, naming the line.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError([f"{name}: cannot read: {err.strerror or err}"]) from None
    if not strict:
        return raw.decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError([f"{name}:{line}: not UTF-8 text"]) from None


def parse_toml(name: str, text: str) -> dict[str, Any]:
    """The TOML document ``text`` of the file ``name``, refused if it nests more than ``MAX_DEPTH`` levels.

    Raises:
        ConfigError: one line: a TOML syntax error, or the first line nested too deep.
    """
    deep = first_too_deep(text)
    if deep is not None:
        raise ConfigError([f"{name}:{deep}: nested more than {MAX_DEPTH} levels deep"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([syntax_problem(name, err)]) from None
    except RecursionError:  # a nesting the line scanner did not see: still a message, not a traceback
        raise ConfigError([f"{name}: nested too deeply to parse"]) from None


def syntax_problem(name: str, err: Exception) -> str:
    """A :class:`tomllib.TOMLDecodeError` as ``<file>:<line>: TOML syntax: <reason> (column <n>)``."""
    lineno = getattr(err, "lineno", None)
    message = getattr(err, "msg", None) or str(err)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        lineno = lineno or int(match.group(1))
        message = f"{message[: match.start()]} (column {match.group(2)})"
    message = re.sub(r"\s*\(at end of document\)$", " (at the end of the file)", message)
    where = f"{name}:{lineno}" if lineno else name
    return f"{where}: TOML syntax: {message}"


# -- GPIO pins --------------------------------------------------------------------------------------------------

_PIN_NAME = re.compile(r"(?:GPIO|BCM|BOARD|J8:)(\d{1,2})")


def gpio_pin(value: Any) -> int | str:
    """A BCM GPIO number 0..27 or a gpiozero pin name: ``GPIO17``/``BCM17`` (0..27), ``BOARD11``/``J8:11``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 27:
            raise ValueError(f"Input should be a BCM GPIO number 0..27 (got {value})")
        return value
    if isinstance(value, str):
        match = _PIN_NAME.fullmatch(value)
        if match:
            number = int(match.group(1))
            board = value.startswith(("BOARD", "J8:"))
            if (1 <= number <= 40) if board else (number <= 27):
                return value
            raise ValueError(f"pin number out of range: GPIO/BCM 0..27, BOARD/J8 header pins 1..40 (got {value!r})")
    raise ValueError('Input should be a BCM GPIO number 0..27 or a gpiozero pin name such as "GPIO17" or "BOARD11"'
                     f" (got {value!r})")


def pin_key(pin: int | str) -> tuple[str, int]:
    """``("bcm", n)`` or ``("board", n)``: the same pin written two ways compares equal."""
    if isinstance(pin, int):
        return "bcm", pin
    match = _PIN_NAME.fullmatch(pin)
    if match is None:
        raise ValueError(f"not a pin name: {pin!r}")
    number = int(match.group(1))
    return ("board" if pin.startswith(("BOARD", "J8:")) else "bcm"), number
