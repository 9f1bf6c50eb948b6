"""The field types every config section shares, and :class:`Section`, the base of every section.

Paths are resolved relative to the config file's folder (the ``base_dir`` of the validation context) after
expanding ``~`` and environment variables; GPIO pins are BCM numbers or gpiozero pin names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from edge.config.plain import KeyProblem, gpio_pin, pin_key

__all__ = ["KeyProblem", "pin_key"]  # with the pydantic field types below


# -- paths ------------------------------------------------------------------------------------------------------


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~`` and ``$VAR`` in a path and make it absolute, relative to the config file's folder."""
    text = os.path.expanduser(os.path.expandvars(str(value)))
    unset = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)
    if unset:
        raise ValueError(f"environment variable {unset.group(1)} is not set (in {str(value)!r})")
    base = (info.context or {}).get("base_dir")
    path = Path(text)
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return Path(os.path.normpath(path))


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file {path} does not exist" if not path.exists() else f"{path} is not a file")
    return path


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    return path


#: A path, resolved relative to the config file's folder (see :func:`_resolve_path`).
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
#: A resolved path that must be an existing file.
ExistingFile = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing_file)]
#: A resolved path that must exist (a file or a folder).
ExistingPath = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing)]


# -- GPIO pins --------------------------------------------------------------------------------------------------

#: A GPIO pin as gpiozero takes it.
GpioPin = Annotated[int | str, BeforeValidator(gpio_pin)]


# -- other values -----------------------------------------------------------------------------------------------


def _resolution(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise ValueError(f"Input should be [width, height], 2 numbers (got {list(value)})")
    return value


#: ``(width, height)`` in pixels.
Resolution = Annotated[
    tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]],
    BeforeValidator(_resolution),
]


def _topic_levels(value: str) -> str:
    if any(not level or any(c in level for c in "+#\0") for level in value.split("/")):
        raise ValueError(f"should be non-empty MQTT topic levels separated by / without + or # (got {value!r})")
    return value


#: One or more MQTT topic levels (``home/doors``): no empty level, no ``+`` or ``#`` wildcard.
TopicLevels = Annotated[str, AfterValidator(_topic_levels)]


# -- the base of every section ----------------------------------------------------------------------------------


class Section(BaseModel):
    """Base of every section: unknown keys are errors; inputs never echoed by pydantic (they may be secrets)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
