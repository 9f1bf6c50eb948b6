"""The hardened unit ``systemd/facegate.service`` and the ``facegate relay-off`` command it runs after the daemon.

The unit is read with a small parser that keeps repeated keys (``DeviceAllow=``, ``SystemCallFilter=``) and
checked against the daemon it runs: its command lines parse with the real CLI parser, the example config's
credential and writable paths fit the unit's. ``systemd-analyze`` checks (verify, offline security exposure) run
where it is installed and are skipped otherwise. ``MemoryDenyWriteExecute=`` is checked by running the real daemon
on real photos under the kernel's PR_SET_MDWE (what systemd itself uses on Linux >= 6.3), where the kernel has it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path, PurePosixPath

import pytest
import tomllib
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.cli import main
from edge.cli.app import build_parser

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "facegate.service"
EXAMPLE_CONFIG = REPO / "examples" / "door.toml"
MAX_EXPOSURE = 2.5
RELAY_PIN = 17


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [value, ...]}}`` of a unit file, every assignment kept in order (``""`` = a reset)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            logical += line[:-1].rstrip() + " "
            continue
        line, logical = logical + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"not a unit file line: {raw!r}")
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit, key: str, section: str = "Service") -> str:
    values = unit[section].get(key)
    assert values, f"{key}= missing from [{section}]"
    assert len(values) == 1, f"{key}= set {len(values)} times: {values}"
    return values[0]


def words(unit, key: str, section: str = "Service") -> list[str]:
    """All the space-separated words of every assignment of ``key`` (list-valued directives)."""
    return [w for value in unit[section].get(key, []) for w in value.split()]


# -- the unit's directives -----------------------------------------------------------------------------------


def test_the_parser_keeps_repeated_keys_and_refuses_garbage():
    parsed = parse_unit("[Service]\n# c\nA=1\nA=2 \\\n  3\n\n[Unit]\nB=\n")
    assert parsed == {"Service": {"A": ["1", "2 3"]}, "Unit": {"B": [""]}}
    with pytest.raises(ValueError):
        parse_unit("[Service]\nnot an assignment\n")


def test_notify_watchdog_and_restart(unit):
    assert one(unit, "Type") == "notify"
    assert one(unit, "NotifyAccess") == "main"
    assert int(one(unit, "WatchdogSec")) == 30
    assert int(one(unit, "TimeoutStartSec")) >= 30  # model loading and the first frame before READY=1
    # SIGTERM: the daemon flushes the outbox for at most 5 s (edge.daemon.runner.FLUSH_SECONDS) before it exits
    from edge.daemon.runner import FLUSH_SECONDS

    assert int(one(unit, "TimeoutStopSec")) > FLUSH_SECONDS
    assert one(unit, "Restart") == "on-failure"
    assert int(one(unit, "RestartSec")) == 5
    assert int(one(unit, "StartLimitBurst", "Unit")) >= 1
    assert int(one(unit, "StartLimitIntervalSec", "Unit")) > int(one(unit, "RestartSec")) * int(
        one(unit, "StartLimitBurst", "Unit"))
    assert one(unit, "WantedBy", "Install") == "multi-user.target"


def test_user_groups_and_directories(unit):
    assert one(unit, "User") == "facegate"
    assert one(unit, "Group") == "facegate"
    assert set(words(unit, "SupplementaryGroups")) == {"gpio", "video", "input"}
    assert one(unit, "StateDirectory") == "facegate"
    assert one(unit, "ConfigurationDirectory") == "facegate"
    assert one(unit, "UMask") == "0077"
    # lgpio makes its notification pipes in the working directory: it must be one the service may write
    assert one(unit, "WorkingDirectory") == f"%t/{one(unit, 'RuntimeDirectory')}"


def test_sandbox_directives(unit):
    expected = {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
        "DevicePolicy": "closed", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
        "RemoveIPC": "yes", "SystemCallErrorNumber": "EPERM",
    }
    assert {key: one(unit, key) for key in expected} == expected
    assert unit["Service"].get("SystemCallFilter") == ["@system-service", "~@privileged @resources"]
    assert set(words(unit, "RestrictAddressFamilies")) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    # Not set, on purpose (README): PrivateUsers cuts off the gpio/video groups, ProcSubset=pid hides the Pi's
    # revision from gpiozero, PrivateDevices hides /dev/gpiochip* and the camera.
    for key in ("PrivateUsers", "ProcSubset", "PrivateDevices", "DynamicUser"):
        assert key not in unit["Service"], f"{key}= would break GPIO or camera access"


def test_devices_are_only_gpio_camera_and_a_read_only_badge_reader(unit):
    allowed = dict(value.split() for value in unit["Service"]["DeviceAllow"])
    assert allowed == {"char-gpiochip": "rw", "/dev/gpiomem": "rw", "char-video4linux": "rw", "char-media": "rw",
                       "char-dma_heap": "rw", "char-input": "r"}


def test_command_lines_parse_with_the_real_cli(unit):
    parser = build_parser()
    start = shlex.split(one(unit, "ExecStart"))
    stop_post = shlex.split(one(unit, "ExecStopPost"))
    assert start[0] == stop_post[0] == "/opt/facegate/venv/bin/facegate"
    run = parser.parse_args(start[1:])
    off = parser.parse_args(stop_post[1:])
    assert (run.command, run.max_frames) == ("run", None)
    assert off.command == "relay-off"
    assert run.config == off.config == Path("/etc") / one(unit, "ConfigurationDirectory") / "door.toml"


def test_the_example_config_fits_the_unit(unit):
    """The credential name matches, and every file the daemon writes is in the unit's StateDirectory."""
    config = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    name, source = one(unit, "LoadCredential").split(":", 1)
    assert name == config["mqtt"]["password_credential"]
    assert PurePosixPath(source).parent == PurePosixPath("/etc") / one(unit, "ConfigurationDirectory")
    state = PurePosixPath("/var/lib") / one(unit, "StateDirectory")
    for written in (config["store"]["path"], config["mqtt"]["outbox_path"]):
        assert PurePosixPath(written).is_relative_to(state), f"{written} is read-only under ProtectSystem=strict"


# -- systemd-analyze -------------------------------------------------------------------------------------------

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (apt-get install systemd)")


def unit_with_existing_binary(tmp_path: Path) -> Path:
    """A copy of the unit whose commands point at an existing program (verify checks that they exist)."""
    true = shutil.which("true")
    copy = tmp_path / "facegate.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/facegate/venv/bin/facegate", true),
                    encoding="utf-8")
    return copy


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path):
    done = subprocess.run(["systemd-analyze", "verify", str(unit_with_existing_binary(tmp_path))],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@needs_analyze
def test_systemd_analyze_security_exposure(tmp_path):
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                           str(unit_with_existing_binary(tmp_path))],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip(f"this systemd-analyze has no --offline (systemd < 250): {done.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, done.stdout


# -- facegate relay-off ----------------------------------------------------------------------------------------


def write_config(tmp_path: Path, weights_dir: Path, *, relay: str, encoder: str | None = None,
                 camera_path: Path | None = None, mqtt: bool = True) -> Path:
    """A door config in ``tmp_path``: replay camera, the given ``[relay]`` text, and (with ``mqtt``) a broker
    whose password comes from the systemd credential the unit loads."""
    encoder = encoder or str(weights_dir / "facenet_int8.tflite")
    mqtt_section = textwrap.dedent("""\
        [mqtt]
        host = "broker.invalid"
        username = "door"
        password_credential = "mqtt_password"
        """) if mqtt else ""
    config = tmp_path / "door.toml"
    config.write_text(textwrap.dedent(f"""\
        [device]
        id = "relay-test"
        [models]
        encoder = "{encoder}"
        detector = "{weights_dir / 'face_detection_short_range.tflite'}"
        [store]
        path = "{tmp_path / 'people.sqlite'}"
        [camera]
        type = "replay"
        path = "{camera_path or tmp_path}"
        """) + mqtt_section + relay, encoding="utf-8")
    return config


@pytest.fixture
def board(monkeypatch):
    """gpiozero's MockFactory as the default pin factory (what a config's pin_factory = "default" opens)."""
    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    yield factory
    factory.reset()


def left_on(board: MockFactory, *, active_high: bool):
    """The relay pin as a killed daemon leaves it: an output, driven to the relay's on level."""
    pin = board.pin(RELAY_PIN)
    pin.function = "output"
    pin.state = active_high
    return pin


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_off_drives_a_pin_left_on_to_off(board, tmp_path, weights_dir, capsys, monkeypatch, active_high):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)  # as after the service: no MQTT password to read
    monkeypatch.setenv("SERVICE_RESULT", "watchdog")
    monkeypatch.setenv("EXIT_CODE", "dumped")
    monkeypatch.setenv("EXIT_STATUS", "ABRT")
    pin = left_on(board, active_high=active_high)
    config = write_config(tmp_path, weights_dir,
                          relay=f"[relay]\npin = {RELAY_PIN}\nactive_high = {str(active_high).lower()}\n")
    start = len(pin.states)

    assert main(["relay-off", "--config", str(config)]) == 0

    assert [s.state for s in pin.states[start:]][:1] == [not active_high]  # first change: to the off level
    assert pin.state == (not active_high)
    out = capsys.readouterr().out
    assert f"relay on pin {RELAY_PIN} switched off" in out
    assert "after the service's watchdog (dumped ABRT)" in out


def test_relay_off_still_works_when_another_section_is_broken(board, tmp_path, weights_dir, capsys):
    pin = left_on(board, active_high=True)
    config = write_config(tmp_path, weights_dir, encoder=str(tmp_path / "deleted.tflite"),
                          relay=f"[relay]\npin = {RELAY_PIN}\n")

    assert main(["relay-off", "--config", str(config)]) == 0

    assert not pin.state
    assert "switched off" in capsys.readouterr().out


def test_relay_off_with_a_bad_relay_section_fails_and_touches_nothing(board, tmp_path, weights_dir, capsys):
    pin = left_on(board, active_high=True)
    before = len(pin.states)
    config = write_config(tmp_path, weights_dir, relay="[relay]\npin = 99\n")

    assert main(["relay-off", "--config", str(config)]) == 1

    assert len(pin.states) == before
    assert "relay.pin" in capsys.readouterr().err


def test_relay_off_in_a_fresh_process_with_the_mock_factory(tmp_path, weights_dir):
    config = write_config(tmp_path, weights_dir, relay=f'[relay]\npin = {RELAY_PIN}\npin_factory = "mock"\n')
    done = subprocess.run([sys.executable, "-m", "edge.cli", "relay-off", "--config", str(config)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"relay on pin {RELAY_PIN} switched off (driven low, active_high) and released" in done.stdout


# -- MemoryDenyWriteExecute= -----------------------------------------------------------------------------------

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

#: Runs argv[1:] with W+X memory refused by the kernel (inherited across exec), as MemoryDenyWriteExecute= does.
MDWE_WRAPPER = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit(f"PR_SET_MDWE failed: errno {{ctypes.get_errno()}}")
os.execv(sys.argv[1], sys.argv[1:])
"""


def kernel_has_mdwe() -> bool:
    """PR_SET_MDWE works here (Linux >= 6.3), tried in a child process so this one stays unrestricted."""
    if not sys.platform.startswith("linux"):
        return False
    done = subprocess.run([sys.executable, "-c", MDWE_WRAPPER, sys.executable, "-c", "pass"], capture_output=True)
    return done.returncode == 0


needs_mdwe = pytest.mark.skipif(not kernel_has_mdwe(), reason="the kernel has no PR_SET_MDWE (Linux < 6.3)")


@needs_mdwe
def test_the_wrapper_does_refuse_writable_executable_memory():
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0  # allowed without the wrapper
    refused = subprocess.run([sys.executable, "-c", MDWE_WRAPPER, sys.executable, "-c", probe],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr


@needs_mdwe
def test_the_daemon_runs_with_writable_executable_memory_refused(tmp_path, weights_dir, photos_dir):
    """Both models (TFLite + XNNPACK), OpenCV and numpy on real photos, as under MemoryDenyWriteExecute=yes."""
    config = write_config(tmp_path, weights_dir, relay=f'[relay]\npin = {RELAY_PIN}\npin_factory = "mock"\n',
                          camera_path=photos_dir / "val" / "madonna", mqtt=False)
    done = subprocess.run([sys.executable, "-c", MDWE_WRAPPER, sys.executable, "-m", "edge.cli", "run",
                           "--config", str(config), "--max-frames", "4"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    frames = re.search(r"stopped after (\d+) frames", done.stdout)
    assert frames and int(frames.group(1)) >= 1, done.stdout
    assert "unknown" in done.stdout  # faces were detected and encoded (the store is empty: nobody is known)

