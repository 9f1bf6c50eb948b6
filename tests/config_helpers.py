"""Shared by the config's tests: a valid door config text and how to check variations of it."""

from __future__ import annotations

from pathlib import Path

from edge.config import validate_config

# Line numbers below refer to this text: 1 [device], 2 id, 4 [models], 5 encoder, 6 detector, 8 [store],
# 9 path, 11 [camera], 12 type, 13 path, 15 [relay], 16 pin, 17 pin_factory.
BASE = """\
[device]
id = "door-1"

[models]
encoder = "{encoder}"
detector = "{detector}"

[store]
path = "people.sqlite"

[camera]
type = "replay"
path = "{photos}"

[relay]
pin = 17
pin_factory = "mock"
"""

MQTT = """
[mqtt]
host = "broker.lan"
username = "door"
"""


def write(folder: Path, text: str, name: str = "door.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def problems(folder: Path, text: str, **options) -> list[str]:
    return validate_config(write(folder, text), **options)


def only_problem(folder: Path, text: str, **options) -> str:
    found = problems(folder, text, **options)
    assert len(found) == 1, found
    return found[0]
