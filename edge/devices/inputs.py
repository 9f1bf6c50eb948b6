"""The door's optional inputs: the door contact (reed switch) and the inside exit button, through gpiozero.

gpiozero is imported in the constructor, so importing this module has no GPIO side effect. Callbacks run on
gpiozero's event thread; their exceptions are logged, never raised into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.devices.pins import open_device

log = logging.getLogger(__name__)


def _safe_call(name: str, callback: Callable[[], object] | None) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("door %s callback failed", name)


class DoorInputs:
    """The optional door contact (reed switch) and inside exit button.

    Default wiring: each input between the GPIO and ground, with the internal pull-up (``pull_up=True``); the
    exit button is pressed when its pin is low; the reed switch is held closed by the magnet of the shut door,
    so the door is open when the contact pin is high (``door_open_when_high=True``). With external pull-downs
    and switches to 3V3 (``pull_up=False``), pass ``door_open_when_high=False``.

    Args:
        contact_pin, exit_pin: GPIOs (BCM number or gpiozero name), ``None`` if not fitted.
        door_open_when_high: the contact pin level that means "door open".
        pull_up: internal pull-up (``True``) or pull-down (``False``) on both inputs.
        bounce_seconds: switch debounce time.
        pin_factory: a gpiozero pin factory (``None``: gpiozero's default).
        on_exit_pressed, on_door_opened, on_door_closed: called with no argument from gpiozero's event thread;
            their exceptions are logged.

    Raises:
        RelayError: an invalid or busy pin, or both inputs on the same pin.
    """

    def __init__(self, *, contact_pin: int | str | None = None, exit_pin: int | str | None = None,
                 door_open_when_high: bool = True, pull_up: bool = True, bounce_seconds: float = 0.05,
                 pin_factory=None, on_exit_pressed: Callable[[], object] | None = None,
                 on_door_opened: Callable[[], object] | None = None,
                 on_door_closed: Callable[[], object] | None = None):
        from gpiozero import Button, DigitalInputDevice

        self.door_open_when_high = door_open_when_high
        self.pull_up = pull_up
        self.on_exit_pressed = on_exit_pressed
        self.on_door_opened = on_door_opened
        self.on_door_closed = on_door_closed
        bounce = bounce_seconds if bounce_seconds > 0 else None
        self._contact = self._exit = None
        try:
            if contact_pin is not None:
                self._contact = open_device("door contact", contact_pin, lambda: DigitalInputDevice(
                    contact_pin, pull_up=pull_up, bounce_time=bounce, pin_factory=pin_factory))
                # gpiozero calls "active" the level opposite the pull; both edges just re-read the door state.
                self._contact.when_activated = self._contact_changed
                self._contact.when_deactivated = self._contact_changed
            if exit_pin is not None:
                self._exit = open_device("exit button", exit_pin, lambda: Button(
                    exit_pin, pull_up=pull_up, bounce_time=bounce, pin_factory=pin_factory))
                self._exit.when_pressed = self._exit_pressed
        except BaseException:
            self.close()
            raise
        log.info("door inputs: contact %s, exit button %s", contact_pin, exit_pin)

    def __enter__(self) -> DoorInputs:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def door_open(self) -> bool | None:
        """``True`` open, ``False`` shut, ``None`` without a contact (or after :meth:`close`)."""
        contact = self._contact
        if contact is None:
            return None
        try:
            active = contact.is_active
        except Exception:  # closed from another thread meanwhile
            return None
        pin_high = active != self.pull_up  # active = pulled away from the pull's level
        return pin_high == self.door_open_when_high

    def close(self) -> None:
        """Release both pins. Safe to call twice."""
        for device in (self._contact, self._exit):
            if device is not None:
                device.close()
        self._contact = self._exit = None

    def _contact_changed(self) -> None:
        is_open = self.door_open
        if is_open is None:
            return
        log.info("door %s", "opened" if is_open else "closed")
        _safe_call("opened" if is_open else "closed", self.on_door_opened if is_open else self.on_door_closed)

    def _exit_pressed(self) -> None:
        log.info("exit button pressed")
        _safe_call("exit button", self.on_exit_pressed)
