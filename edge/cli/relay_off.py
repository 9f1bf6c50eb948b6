"""``facegate relay-off --config FILE``: drive the door relay off and exit.

systemd runs it as ``ExecStopPost=`` of ``facegate.service`` (see ``systemd/``), after the daemon has exited
in any way: a clean stop, a crash, ``kill -9``, the watchdog's SIGABRT, the OOM killer. The daemon switches the
relay off on every way out it controls; this covers the ways it does not, where a pin left driven could keep
the door unlocked until the next start.

Only ``[relay]`` matters here. The whole config is checked first (without reading the MQTT password: there may
be no credentials after the service stopped); if another section has a problem (a model file deleted, say), the
``[relay]`` table alone is checked and used, with a warning: a broken config elsewhere must not keep the door
open.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli import EXIT_OK

if TYPE_CHECKING:
    from edge.config import RelaySection

log = logging.getLogger(__name__)


def add_parsers(sub) -> list[argparse.ArgumentParser]:
    p = sub.add_parser("relay-off", help="switch the door relay off and exit",
                       description="Open the relay pin of the door config driven off, release it and exit 0 "
                       "(systemd's ExecStopPost= after the daemon exits, however it exits). Only [relay] is "
                       "needed: problems elsewhere in the config are warnings here.")
    p.add_argument("--config", type=Path, required=True, help="the door's TOML config")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=relay_off, json=False)
    return []  # no model or store options: nothing but the relay is opened


def relay_section(path: str | os.PathLike) -> RelaySection:
    """The ``[relay]`` settings of the door config at ``path``.

    The whole file is checked (secrets not read); if it has problems, the ``[relay]`` table alone is, and the
    other problems are logged as a warning.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or its ``[relay]`` table is invalid (the message is the
            whole file's problems, one per line).
    """
    from edge.config import ConfigError, load_config

    try:
        return load_config(path, read_secrets=False).relay
    except ConfigError as err:
        relay = _relay_table(path)
        if relay is None:
            raise
        log.warning("%s has problems outside [relay] (%s); switching the relay off anyway", path,
                    "; ".join(err.problems))
        return relay


def _relay_table(path: str | os.PathLike) -> RelaySection | None:
    """``[relay]`` of the TOML file at ``path`` checked on its own, or ``None`` if that is not possible."""
    from pydantic import ValidationError

    from edge.config import RelaySection, tomllib  # tomllib, or tomli on Python 3.10

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return RelaySection.model_validate(data.get("relay"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValidationError):
        return None


def relay_off(args, env) -> int:
    from edge.relay import DoorRelay
    from edge.runner import pin_factory_named

    relay = relay_section(args.config)
    # gpiozero drives the pin off as it opens it (initial_value=False), whatever state a dead process left it in.
    with DoorRelay(relay.pin, active_high=relay.active_high, pulse_seconds=relay.pulse_seconds,
                   pin_factory=pin_factory_named(relay.pin_factory)) as door_relay:
        door_relay.force_off()
    level = "low" if relay.active_high else "high"
    after = _service_result(os.environ)
    print(f"relay on pin {relay.pin} switched off (driven {level}, active_{'high' if relay.active_high else 'low'}) "
          f"and released{after}", file=env.stdout, flush=True)
    return EXIT_OK


def _service_result(environ) -> str:
    """``" after the service's <result> (<code> <status>)"`` from systemd's ExecStopPost= variables, or ``""``."""
    result = environ.get("SERVICE_RESULT")
    if not result:
        return ""
    code = " ".join(v for v in (environ.get("EXIT_CODE"), environ.get("EXIT_STATUS")) if v)
    return f" after the service's {result}" + (f" ({code})" if code else "")
