"""gpiozero pins: the pin factory a config names, and opening a gpiozero device with one-line errors.

gpiozero is imported inside the functions, so importing this module has no GPIO side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.errors import RelayError


def pin_factory_named(name: str) -> Any:
    """The gpiozero pin factory a config's ``relay.pin_factory`` names: ``"mock"`` is gpiozero's own test backend
    (:class:`gpiozero.pins.mock.MockFactory`); ``"default"`` gives ``None``, gpiozero's default (the board's pins)."""
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    return None


def open_device(kind: str, pin: int | str, make: Callable[[], Any]) -> Any:
    """``make()`` a gpiozero device; any gpiozero or OS error becomes a one-line :class:`RelayError`."""
    from gpiozero import GPIOZeroError

    try:
        return make()
    except (GPIOZeroError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RelayError(f"{kind} pin {pin!r} is not a valid GPIO pin: {first_line}") from exc
