"""Where ``./dev ha-setup`` builds Home Assistant's venv, and whether it is there.

The venv lives outside the clone, in ``$FACEGATE_CACHE/venv-homeassistant-<key>`` (``$FACEGATE_CACHE`` defaults to
``~/.cache/facegate``, as in ``./dev``), where ``<key>`` is the first 16 hex digits of the sha256 of
:data:`PINS`: a changed pin list is a new venv. ``./dev`` writes the key into ``.facegate-installed`` in the venv
once pip has installed everything; without that stamp the venv is not built (or not finished).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Home Assistant's pin list (one package a line, every version pinned).
PINS = Path(__file__).with_name("requirements.txt")
#: The command that builds the venv.
SETUP_COMMAND = "./dev ha-setup"


def cache_dir() -> Path:
    """``$FACEGATE_CACHE``, else ``$XDG_CACHE_HOME/facegate``, else ``~/.cache/facegate`` (as ``./dev`` says)."""
    if os.environ.get("FACEGATE_CACHE"):
        return Path(os.environ["FACEGATE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facegate"


def venv_key() -> str:
    return hashlib.sha256(PINS.read_bytes()).hexdigest()[:16]


def venv_dir() -> Path:
    return cache_dir() / f"venv-homeassistant-{venv_key()}"


def hass_executable() -> Path | None:
    """The ``hass`` command of a finished venv for the current pin list, else ``None``."""
    venv = venv_dir()
    stamp, hass = venv / ".facegate-installed", venv / "bin" / "hass"
    try:
        built = stamp.read_text().strip() == venv_key()
    except OSError:
        return None
    return hass if built and os.access(hass, os.X_OK) else None


def not_built_reason() -> str:
    return (f"Home Assistant's venv is not built ({venv_dir()} for {PINS.name} key {venv_key()}): "
            f"run {SETUP_COMMAND} (./dev test builds it too)")
