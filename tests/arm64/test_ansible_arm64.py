"""The Ansible role converged into the emulated Raspberry Pi OS (Debian Bookworm arm64) root of ``./dev pi-check``.

``tests/arm64/pi_check.sh`` sets ``FACEGATE_ARM64_ROOT`` to the root it has entered (``/proc``, ``/sys`` and
``/dev`` mounted, qemu-user-static running its aarch64 binaries, ansible-core in ``/opt/pi-check/tools``) and
``FACEGATE_ARM64_WHEELS`` to the folder of aarch64 wheels inside it; without them these tests are skipped.

Ansible runs inside the root with the local connection (the ``community.general.chroot`` connection is not part of
ansible-core), so the root is the controller as well as the door: the wheel, the models and the store are put in it
first, as a controller holds them. Everything the role does on a door runs for real on Debian arm64 except the
service (no systemd runs in a chroot: ``facegate_manage_service: false``, the unit file is still written): the apt
task (update and install), the service account, the venv, pip with the device dependencies (from the wheels folder,
``--no-index``), the models checked against the card's sha256, the store checked against its model stamp, the
config validated by the installed ``facegate check-config``, and the unit. A second run must change nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.test_ansible import ANSIBLE_DIR, _card, _make_store, _recap, broker, wheel  # noqa: F401 (fixtures)

ROOT = Path(os.environ.get("FACEGATE_ARM64_ROOT", "/nonexistent"))
WHEELS = os.environ.get("FACEGATE_ARM64_WHEELS", "")
TOOLS = "/opt/pi-check/tools"
LAB = "/opt/pi-check/ansible-lab"  # inside the root: the controller's files
HOST = "pi-door"

pytestmark = pytest.mark.skipif(not (ROOT / TOOLS.lstrip("/") / "bin/ansible-playbook").exists(),
                                reason="needs the emulated arm64 root of ./dev pi-check (FACEGATE_ARM64_ROOT)")


def in_root(*argv: str, cwd: str = "/", timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the root with a clean environment (as ``arm64_run`` of tests/arm64/chroot.sh)."""
    env = ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", "LC_ALL=C.UTF-8",
           f"QEMU_CPU={os.environ.get('PI_CHECK_CPU', 'cortex-a76')}", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0"]
    return subprocess.run(["chroot", str(ROOT), "/usr/bin/env", "-i", "-C", cwd, *env, *argv],
                          capture_output=True, text=True, timeout=timeout)


def _dpkg_installed(package: str) -> bool:
    done = in_root("dpkg-query", "-W", "-f=${Status}", package)
    return done.returncode == 0 and done.stdout == "install ok installed"


def _task_result(output: str, task: str) -> str:
    """``ok``, ``changed``, ``skipping``... of the task named ``task`` in the playbook's output."""
    found = re.search(rf"TASK \[facegate : {re.escape(task)}\][^\n]*\n(\w+): \[{HOST}\]", output)
    assert found, f"task {task!r} not in the output:\n{output[-3000:]}"
    return found.group(1)


def _summary(output: str) -> str:
    """Each task's results (``changed x2, ok``...) and the recap: what ran for real, what was skipped."""
    lines = []
    for name, body in re.findall(r"^TASK \[(?:facegate : )?([^\]]+)\][^\n]*\n(.*?)(?=^TASK |^PLAY RECAP|\Z)", output,
                                 re.M | re.S):
        results = re.findall(rf"^(ok|changed|skipping|failed|fatal): \[{HOST}\]", body, re.M)
        counts = {r: results.count(r) for r in dict.fromkeys(results)}
        lines.append(f"  {name}: " + (", ".join(f"{r} x{n}" if n > 1 else r for r, n in counts.items()) or "-"))
    recap = _recap(output)
    return "\n".join(lines + [f"  recap: {recap}"])


@pytest.fixture(scope="module")
def controller(wheel, broker, weights_dir):  # noqa: F811 (the fixtures imported above)
    """The controller's files inside the root, an inventory of the root itself, and a runner."""
    lab = ROOT / LAB.lstrip("/")
    if lab.exists():
        shutil.rmtree(lab)
    (lab / "models").mkdir(parents=True)
    shutil.copytree(ANSIBLE_DIR, lab / "ansible", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(wheel, lab / wheel.name)
    for pattern in ("facenet_int8.*", "face_detection_short_range.tflite", "liveness*"):
        for path in weights_dir.glob(pattern):
            shutil.copy2(path, lab / "models" / path.name)
    card = _card(weights_dir, "int8")
    _make_store(lab / "people.sqlite", card["sha256"])
    (lab / "hosts.json").write_text(json.dumps({"doors": {"hosts": {HOST: {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    (lab / "vars.json").write_text(json.dumps({
        "facegate_manage_packages": True, "facegate_manage_user": True, "facegate_manage_service": False,
        "facegate_install_dependencies": True, "facegate_validate_config": True,
        "facegate_pip_extra_args": f"--no-index --find-links {WHEELS}",
        "facegate_package_file": f"{LAB}/{wheel.name}", "facegate_model_dir": f"{LAB}/models",
        "facegate_store_file": f"{LAB}/people.sqlite", "facegate_device_id": HOST,
        "facegate_mqtt_host": broker[0], "facegate_mqtt_port": broker[1], "facegate_mqtt_tls": False,
    }))
    secret = f"pw-{uuid.uuid4().hex}"

    def run(*args: str) -> tuple[subprocess.CompletedProcess, str]:
        done = in_root(f"ANSIBLE_CONFIG={LAB}/ansible/ansible.cfg", f"{TOOLS}/bin/ansible-playbook", "-i",
                       f"{LAB}/hosts.json", "playbook.yml", "-e", f"@{LAB}/vars.json",
                       "-e", f"vault_facegate_mqtt_password={secret}", *args, cwd=f"{LAB}/ansible", timeout=3600)
        return done, done.stdout + done.stderr

    return {"run": run, "card": card, "secret": secret}


@pytest.fixture(scope="module")
def converged(controller):
    had_pip = _dpkg_installed("python3-pip")
    done, output = controller["run"]()
    assert done.returncode == 0, output[-5000:]
    print(f"first converge (python3-pip installed before: {had_pip}):\n{_summary(output)}")
    return {"output": output, "had_pip": had_pip}


def test_arm64_converge_installs_the_door(converged, controller, weights_dir):
    output = converged["output"]
    assert in_root("dpkg", "--print-architecture").stdout.strip() == "arm64"
    # apt really ran: python3-pip is not in the root's package list (tests/arm64/root-packages.txt)
    assert _dpkg_installed("python3-pip") and _dpkg_installed("python3-venv")
    assert _task_result(output, "Install | OS packages") == ("ok" if converged["had_pip"] else "changed")

    passwd = {line.split(":")[0]: line.split(":") for line in (ROOT / "etc/passwd").read_text().splitlines()}
    assert passwd["facegate"][6] == "/usr/sbin/nologin" and passwd["facegate"][5] == "/var/lib/facegate"
    uid = int(passwd["facegate"][2])
    gid = int(next(line.split(":")[2] for line in (ROOT / "etc/group").read_text().splitlines()
                   if line.startswith("facegate:")))

    venv = in_root("/opt/facegate/venv/bin/python", "-c", "import importlib.metadata as m, importlib.util as u, "
                   "platform; import ai_edge_litert.interpreter, edge.core.pipeline; print(platform.machine(), "
                   "m.version('facegate'), u.find_spec('tensorflow') is None)")
    assert venv.stdout.split() == ["aarch64", "0.1.0", "True"], venv.stderr

    models = ROOT / "var/lib/facegate/models"
    for path in (ROOT / LAB.lstrip("/") / "models").iterdir():
        copied = models / path.name
        assert copied.read_bytes() == path.read_bytes(), path.name
        assert (copied.stat().st_mode & 0o777, copied.stat().st_gid) == (0o640, gid), path.name
    assert _task_result(output, "Models | the encoder on the device matches its card") == "ok"

    store = ROOT / "var/lib/facegate/people.sqlite"
    assert (store.stat().st_mode & 0o777, store.stat().st_uid) == (0o600, uid)
    with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as conn:
        stamp = dict(conn.execute("SELECT key, value FROM facegate_meta"))["model_sha256"]
    assert stamp == controller["card"]["sha256"]

    config = ROOT / "etc/facegate/door.toml"
    assert (config.stat().st_mode & 0o777, config.stat().st_gid) == (0o640, gid)
    assert controller["secret"] not in config.read_text()
    check = in_root("/opt/facegate/venv/bin/facegate", "check-config", "--no-secrets", "/etc/facegate/door.toml")
    assert check.returncode == 0, check.stdout + check.stderr
    unit = (ROOT / "etc/systemd/system/facegate.service").read_text()
    assert "ExecStart=/opt/facegate/venv/bin/facegate run --config /etc/facegate/door.toml" in unit
    assert "User=facegate\n" in unit


def test_arm64_installed_facegate_finds_the_door_models_and_store_without_flags(converged):
    """On the door the role made, ``facegate people list`` needs no flag: /var/lib/facegate/models and the store."""
    done = in_root("/opt/facegate/venv/bin/facegate", "people", "list", "--json", cwd="/tmp")
    assert done.returncode == 0, done.stdout + done.stderr
    people = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(p["name"] for p in people if "name" in p) == ["alice", "bob"], done.stdout


def test_arm64_second_converge_changes_nothing(converged, controller):
    done, output = controller["run"]()
    assert done.returncode == 0, output[-5000:]
    print(f"second converge:\n{_summary(output)}")
    assert _recap(output)["changed"] == 0, output[-5000:]
