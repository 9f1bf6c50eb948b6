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
from collections.abc import Mapping
from pathlib import Path

from edge.cli.context import CliEnv
from edge.errors import ExitCode

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("relay-off", help="switch the door relay off and exit",
                       description="Open the relay pin of the door config driven off, release it and exit 0 "
                       "(systemd's ExecStopPost= after the daemon exits, however it exits). Only [relay] is "
                       "needed: problems elsewhere in the config are warnings here.")
    p.add_argument("--config", type=Path, required=True, help="the door's TOML config")
    p.set_defaults(func=run)
    return p  # no model or store options: nothing but the relay is opened


def run(args: argparse.Namespace, env: CliEnv) -> int:
    from edge.config.relay_reader import relay_section
    from edge.devices.pins import pin_factory_named
    from edge.devices.relay import DoorRelay

    relay = relay_section(args.config)
    # gpiozero drives the pin off as it opens it (initial_value=False), whatever state a dead process left it in.
    with DoorRelay(relay.pin, active_high=relay.active_high, pulse_seconds=relay.pulse_seconds,
                   pin_factory=pin_factory_named(relay.pin_factory)) as door_relay:
        door_relay.force_off()
    level = "low" if relay.active_high else "high"
    after = _service_result(os.environ)
    print(f"relay on pin {relay.pin} switched off (driven {level}, active_{'high' if relay.active_high else 'low'}) "
          f"and released{after}", file=env.stdout, flush=True)
    return ExitCode.OK


def _service_result(environ: Mapping[str, str]) -> str:
    """``" after the service's <result> (<code> <status>)"`` from systemd's ExecStopPost= variables, or ``""``."""
    result = environ.get("SERVICE_RESULT")
    if not result:
        return ""
    code = " ".join(v for v in (environ.get("EXIT_CODE"), environ.get("EXIT_STATUS")) if v)
    return f" after the service's {result}" + (f" ({code})" if code else "")
