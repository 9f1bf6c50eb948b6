"""One real Home Assistant core on loopback, with a config dir the test made, talking to the test's own broker.

:class:`HomeAssistant` writes ``configuration.yaml`` (HTTP on a free port of 127.0.0.1, the REST API) and the
MQTT integration's config entry (``.storage/core.config_entries``: there is no YAML for the broker), starts
``hass --skip-pip`` (nothing is installed at run time), creates the owner user through the onboarding API and
exchanges its auth code for an access token, which every request then carries. Only the standard library here:
the test's venv is facegate's, Home Assistant's is another (:mod:`tests.homeassistant.venv`).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.mosquitto import free_port

#: Seconds Home Assistant may take to start (it takes a few here; a cold disk cache on 2 cores, longer).
START_TIMEOUT = 180.0
#: The config entry id of the MQTT integration (any 32 hex digits).
MQTT_ENTRY_ID = "f00dfacegate0000000000000000mqtt"

_CONFIGURATION = """\
homeassistant:
  name: facegate test
  time_zone: UTC
  unit_system: metric
  country: CH
  latitude: 0
  longitude: 0
  elevation: 0
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""
#: A log line's start: time, level, (thread), [logger].
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<level>[A-Z]+) \(.*?\) \[(?P<logger>[^\]]+)\] ")


class HomeAssistantError(RuntimeError):
    """Home Assistant did not start, or answered a request with an error."""


class HomeAssistant:
    """A Home Assistant core process: ``hass`` of its venv, ``config_dir`` (made if missing), the MQTT broker at
    ``mqtt_host:mqtt_port`` (discovery on, prefix ``homeassistant``, birth message on). Use as a context manager,
    or :meth:`start` and :meth:`stop`."""

    def __init__(self, hass: Path, config_dir: Path, *, mqtt_port: int, mqtt_host: str = "127.0.0.1"):
        self.hass = hass
        self.config_dir = config_dir
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = config_dir / "home-assistant.log"
        self.token: str | None = None
        self.proc: subprocess.Popen | None = None

    # -- lifetime ------------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> HomeAssistant:
        self._write_config()
        with (self.config_dir / "hass.out").open("ab") as out:
            self.proc = subprocess.Popen([str(self.hass), "--config", str(self.config_dir), "--skip-pip",
                                          "--log-file", str(self.log_path)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise HomeAssistantError(f"hass exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise HomeAssistantError(f"Home Assistant did not answer within {timeout} s: {self.log_tail()}")
            time.sleep(0.2)
        if self.token is None:
            self._onboard()
        while self.mqtt_entry_state() != "loaded":
            if time.monotonic() > deadline:
                raise HomeAssistantError(f"the MQTT integration is {self.mqtt_entry_state()!r}: {self.log_tail()}")
            time.sleep(0.2)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> HomeAssistant:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _write_config(self) -> None:
        storage = self.config_dir / ".storage"
        storage.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(_CONFIGURATION.format(port=self.port))
        entry = {"entry_id": MQTT_ENTRY_ID, "version": 1, "minor_version": 1, "domain": "mqtt",
                 "title": f"{self.mqtt_host}:{self.mqtt_port}", "source": "user", "unique_id": None,
                 "data": {"broker": self.mqtt_host, "port": self.mqtt_port, "discovery": True,
                          "discovery_prefix": "homeassistant"},
                 "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False,
                 "disabled_by": None}
        (storage / "core.config_entries").write_text(json.dumps(
            {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}, indent=1))

    def _answers(self) -> bool:
        try:
            self.request("GET", "/api/onboarding", auth=False)
        except (OSError, HomeAssistantError):
            return False
        return True

    def _onboard(self) -> None:
        """The owner user (onboarding's first step), then its auth code exchanged for an access token."""
        client_id = f"{self.url}/"
        answer = self.request("POST", "/api/onboarding/users", {
            "client_id": client_id, "name": "Door test", "username": "doortest", "password": secrets.token_hex(16),
            "language": "en"}, auth=False)
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": answer["auth_code"],
                                       "client_id": client_id}).encode()
        token = self._send(urllib.request.Request(f"{self.url}/auth/token", data=form, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"}))
        self.token = token["access_token"]

    # -- the REST API ----------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        """``path``'s JSON answer (``None`` for 404). Raises HomeAssistantError on another HTTP error."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        try:
            return self._send(urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise HomeAssistantError(f"{method} {path}: HTTP {err.code}: {err.read()[:300]!r}") from None

    @staticmethod
    def _send(request: urllib.request.Request) -> Any:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def states(self) -> dict[str, dict]:
        """Every entity's state object (``/api/states``), by entity id."""
        return {s["entity_id"]: s for s in self.request("GET", "/api/states")}

    def state(self, entity_id: str) -> str | None:
        """One entity's state (``unavailable`` included), or ``None`` if Home Assistant has no such entity."""
        answer = self.request("GET", f"/api/states/{entity_id}")
        return None if answer is None else answer["state"]

    def call(self, domain: str, service: str, **data: Any) -> Any:
        """``POST /api/services/<domain>/<service>`` (a button pressed in the dashboard)."""
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    def mqtt_entry_state(self) -> str | None:
        entries = self.request("GET", "/api/config/config_entries/entry") or []
        return next((e["state"] for e in entries if e["entry_id"] == MQTT_ENTRY_ID), None)

    # -- its log -----------------------------------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def log_records(self, *, levels: tuple[str, ...] = ("WARNING", "ERROR", "CRITICAL"),
                    logger_prefix: str = "") -> list[str]:
        """The log records (their first line and whatever follows, a traceback) at ``levels`` from loggers whose
        name starts with ``logger_prefix``."""
        records: list[list[str]] = []
        keep = False
        for line in self.log().splitlines():
            match = _LOG_LINE.match(line)
            if match:
                keep = match["level"] in levels and match["logger"].startswith(logger_prefix)
                if keep:
                    records.append([line])
            elif keep and records:
                records[-1].append(line)
        return ["\n".join(r) for r in records]
