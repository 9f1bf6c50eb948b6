"""The Ansible role ``ansible/roles/facegate``: lint, syntax, and real converges into a temporary root.

The target is this machine (``ansible_connection: local``) with ``facegate_root`` pointing every path at a
temporary folder, and no user, OS packages, systemd or pip dependencies (``facegate_manage_*: false``,
``facegate_install_dependencies: false``): the facegate wheel built from this checkout is installed with
``--no-deps`` into a real venv. The models are the real ``weights/facenet_int8.tflite``, its card and the
BlazeFace detector; the store is a real :class:`edge.storage.store.EncodingStore` stamped with the card's sha256;
the "broker" is a listening TCP socket, so the preflight's reachability check really connects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.storage.store import EncodingStore

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOK = BIN / "ansible-playbook"
LINT = BIN / "ansible-lint"

pytestmark = pytest.mark.skipif(
    not (PLAYBOOK.exists() and LINT.exists()),
    reason=f"ansible-core / ansible-lint are not installed in {BIN} (pip install ansible-core ansible-lint)",
)

_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _env() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _recap(output: str) -> dict[str, int]:
    """``{"ok": n, "changed": n, "unreachable": n, "failed": n}`` of the one host in the PLAY RECAP."""
    found = _RECAP.findall(output)
    assert len(found) == 1, f"expected one PLAY RECAP line:\n{output[-3000:]}"
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found[0][1:]), strict=True))


def _card(weights_dir: Path, variant: str) -> dict:
    return json.loads((weights_dir / f"facenet_{variant}.card.json").read_text())


def _make_store(path: Path, model_sha256: str) -> Path:
    """A real store stamped with ``model_sha256``, holding two people of unit-length 128-d encodings."""
    rng = np.random.default_rng(7)
    with EncodingStore(path, model_sha256=model_sha256, embedding_size=128) as store:
        for name in ("alice", "bob"):
            vectors = rng.normal(size=(3, 128)).astype(np.float32)
            store.add(name, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The facegate wheel, built from a copy of this checkout (nothing is written into the tree)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("edge", "convert"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(src), "-w",
                           str(work / "dist")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = (work / "dist").glob("facegate-*.whl")
    return built


@pytest.fixture(scope="module")
def broker():
    """A listening TCP port standing in for the MQTT broker (the preflight only checks it is reachable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, wheel, broker, weights_dir):
    """Inventory, extra vars and a runner for ``ansible-playbook`` against this machine."""
    base = tmp_path_factory.mktemp("ansible")
    inventory = base / "hosts.yml"
    inventory.write_text(json.dumps({"doors": {"hosts": {"test-door": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    secret = f"pw-{uuid.uuid4().hex}"
    card = _card(weights_dir, "int8")

    def variables(root: Path, **overrides) -> dict:
        values = {
            "facegate_root": str(root),
            "facegate_manage_packages": False, "facegate_manage_user": False, "facegate_manage_service": False,
            "facegate_install_dependencies": False, "facegate_validate_config": False,
            "facegate_user": _user(), "facegate_group": _group(),
            "facegate_admin_user": _user(), "facegate_admin_group": _group(),
            "facegate_package_file": str(wheel),
            "facegate_model_dir": str(weights_dir), "facegate_model_variant": "int8",
            "facegate_device_id": "test-door", "facegate_device_name": "Test door",
            "facegate_relay_pin": 17, "facegate_relay_pin_factory": "mock",
            "facegate_door_contact_pin": 27, "facegate_door_exit_pin": 22,
            "facegate_mqtt_host": broker[0], "facegate_mqtt_port": broker[1], "facegate_mqtt_tls": False,
            "facegate_recognition": {"min_face_px": 64, "votes_needed": 2, "votes_window": 3},
            "facegate_camera": {"type": "opencv", "source": 0, "resolution": [640, 480]},
        }
        values.update(overrides)
        return values

    def run(root: Path, *args: str, **overrides) -> tuple[subprocess.CompletedProcess, str]:
        extra = base / f"vars-{uuid.uuid4().hex}.json"
        extra.write_text(json.dumps(variables(root, **overrides)))
        done = subprocess.run(
            [str(PLAYBOOK), "-i", str(inventory), str(ANSIBLE_DIR / "playbook.yml"), "-e", f"@{extra}",
             "-e", f"vault_facegate_mqtt_password={secret}", *args],
            capture_output=True, text=True, cwd=ANSIBLE_DIR, env=_env(), timeout=600)
        return done, done.stdout + done.stderr

    return {"base": base, "run": run, "secret": secret, "card": card}


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


@pytest.fixture(scope="module")
def converged(lab):
    """The first converge (at -vvv), into a fresh root, with a store stamped with the int8 card's sha256."""
    root = lab["base"] / "root"
    root.mkdir()
    store = _make_store(lab["base"] / "people.sqlite", lab["card"]["sha256"])
    done, output = lab["run"](root, "-vvv", facegate_store_file=str(store))
    assert done.returncode == 0, output[-5000:]
    return {"root": root, "store": store, "output": output}


def test_lint_production_profile_is_clean():
    done = subprocess.run([str(LINT), "--profile", "production", "--nocolor", "ansible/"], capture_output=True,
                          text=True, cwd=REPO, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in done.stderr + done.stdout


def test_playbook_syntax_check():
    done = subprocess.run([str(PLAYBOOK), "-i", str(ANSIBLE_DIR / "inventory/example/hosts.yml"),
                           str(ANSIBLE_DIR / "playbook.yml"), "--syntax-check"],
                          capture_output=True, text=True, cwd=ANSIBLE_DIR, env=_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_inventory_gives_each_door_its_own_id_and_pins():
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(ANSIBLE_DIR / "inventory/example/hosts.yml"),
                           "--list"], capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    hostvars = json.loads(done.stdout)["_meta"]["hostvars"]
    assert sorted(hostvars) == ["back-door", "front-door", "lab-door"]
    assert {h: v["facegate_device_id"] for h, v in hostvars.items()} == {h: h for h in hostvars}
    assert len({str(v["facegate_relay_pin"]) for v in hostvars.values()}) == 3
    assert all(v["facegate_mqtt_host"] == "broker.lan" for v in hostvars.values())  # group_vars/doors/ is read


def test_converge_installs_the_door(converged, lab, weights_dir):
    root = converged["root"]
    models = root / "var/lib/facegate/models"
    for name in ("facenet_int8.tflite", "facenet_int8.card.json", "facenet_int8.strangers.npy",
                 "face_detection_short_range.tflite", "liveness.card.json", "liveness_minifasnet_v2.tflite",
                 "liveness_minifasnet_v1se.tflite"):
        assert (models / name).read_bytes() == (weights_dir / name).read_bytes(), name

    store = root / "var/lib/facegate/people.sqlite"
    assert store.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as conn:
        stamp = dict(conn.execute("SELECT key, value FROM facegate_meta"))["model_sha256"]
    assert stamp == lab["card"]["sha256"]

    password = root / "etc/facegate/mqtt_password"
    assert password.read_text() == lab["secret"] + "\n"
    assert password.stat().st_mode & 0o777 == 0o600
    config = root / "etc/facegate/door.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    assert lab["secret"] not in config.read_text()

    unit = (root / "etc/systemd/system/facegate.service").read_text()
    assert "ExecStart=/opt/facegate/venv/bin/facegate run --config /etc/facegate/door.toml" in unit
    assert "LoadCredential=mqtt_password:/etc/facegate/mqtt_password" in unit
    assert "ExecStopPost=/opt/facegate/venv/bin/facegate relay-off --config /etc/facegate/door.toml" in unit
    assert f"User={_user()}" in unit and "StateDirectory=facegate\n" in unit

    version = subprocess.run([str(root / "opt/facegate/venv/bin/python"), "-c",
                              "import edge, importlib.metadata as m; print(m.version('facegate'))"],
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == "0.1.0", version.stderr


def test_rendered_config_is_a_valid_door_config(converged, tmp_path):
    """door.toml names device paths; moved under the test root it must load with edge.config."""
    root = converged["root"]
    text = (root / "etc/facegate/door.toml").read_text().replace('"/var/lib/facegate', f'"{root}/var/lib/facegate')
    (tmp_path / "door.toml").write_text(text)
    config = load_config(tmp_path / "door.toml", read_secrets=False)
    assert config.device.id == "test-door" and config.device.name == "Test door"
    assert config.models.encoder == root / "var/lib/facegate/models/facenet_int8.tflite"
    assert (config.relay.pin, config.door.contact_pin, config.door.exit_pin) == (17, 27, 22)
    assert config.camera.type == "opencv" and config.recognition.min_face_px == 64
    assert config.mqtt.password_credential == "mqtt_password" and config.mqtt.username == "test-door"
    assert config.mqtt.password is None


def test_secret_never_appears_in_verbose_output(converged, lab):
    assert lab["secret"] not in converged["output"]
    assert "'no_log: true' was specified" in converged["output"]  # the password task ran, its result hidden


def test_second_converge_changes_nothing(converged, lab):
    done, output = lab["run"](converged["root"], facegate_store_file=str(converged["store"]))
    assert done.returncode == 0, output[-5000:]
    assert _recap(output)["changed"] == 0, output[-5000:]


def test_check_mode_reports_no_change(converged, lab):
    done, output = lab["run"](converged["root"], "--check", facegate_store_file=str(converged["store"]))
    assert done.returncode == 0, output[-5000:]
    recap = _recap(output)
    assert (recap["changed"], recap["failed"]) == (0, 0), output[-5000:]


def _assert_refused(done: subprocess.CompletedProcess, output: str, root: Path, message: str) -> None:
    assert done.returncode != 0, output[-5000:]
    assert _recap(output)["failed"] == 1
    assert message in output, output[-5000:]
    assert list(root.iterdir()) == [], "a failed preflight changed the target"


def test_refuses_a_store_made_with_another_model(lab, weights_dir):
    root = lab["base"] / "root-other-store"
    root.mkdir()
    other = _card(weights_dir, "float32")["sha256"]
    store = _make_store(lab["base"] / "float32-people.sqlite", other)
    done, output = lab["run"](root, facegate_store_file=str(store))
    _assert_refused(done, output, root, f"it is stamped with model {other[:12]} but facenet_int8.tflite is "
                                        f"{lab['card']['sha256'][:12]}")


def test_refuses_a_missing_model(lab, weights_dir):
    root = lab["base"] / "root-missing-model"
    root.mkdir()
    models = lab["base"] / "models-without-encoder"
    models.mkdir()
    for name in ("facenet_int8.card.json", "facenet_int8.strangers.npy", "face_detection_short_range.tflite"):
        (models / name).symlink_to(weights_dir / name)
    done, output = lab["run"](root, facegate_model_dir=str(models))
    _assert_refused(done, output, root, f"missing on the controller: {models}/facenet_int8.tflite")
