"""A real mosquitto broker for tests and benchmarks, and a recording subscriber (a dashboard).

The broker gets its own config in a given directory and a free port of 127.0.0.1; it never depends on a
system service. ``stop()`` then ``start()`` restarts it on the same port (an outage). No pytest import, so
``benchmarks/`` can use it too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

WAIT = 20.0  # seconds a test waits for a condition before failing (never asserted as a timing)


def wait_until(predicate, timeout: float = WAIT, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mosquitto:
    """One broker process. ``users`` maps user name -> password (then anonymous clients are refused);
    ``persistence`` keeps sessions and queued messages across a restart; ``tls`` is (ca, cert, key) files."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, persistence: bool = False,
                 tls: tuple[Path, Path, Path] | None = None):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install -y mosquitto")
        self.exe = exe
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "log_dest file " + str(self.log_path),
                 "log_type all", "log_timestamp false"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user 'mosquitto', who cannot read the tmp dir
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if users:
            passwd = workdir / "passwd"
            for i, (user, password) in enumerate(users.items()):
                create = ["-c"] if i == 0 else []
                subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        before = len(self.log())
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err} {self.log()}")
            if " running" in self.log()[before:]:
                return self
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not start within {timeout} s: {self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Recorder:
    """A dashboard: a paho client recording every message on ``topics`` (QoS 1). ``persistent`` keeps its
    session (and the messages queued for it) across its own or, with a persistent broker, the broker's restart."""

    def __init__(self, port: int, topics: list[str], *, client_id: str, persistent: bool = False):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(WAIT):
            raise RuntimeError(f"the recorder could not subscribe on port {port}")

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def payloads(self, topic: str) -> list[str]:
        with self.lock:
            return [m.payload.decode() for m in self.messages if m.topic == topic]

    def retained(self, topic: str) -> list[str]:
        with self.lock:
            return [m.payload.decode() for m in self.messages if m.topic == topic and m.retain]

    def event_ids(self, topic: str) -> list[str]:
        """The ``id`` of every JSON event received on ``topic``, duplicates included, in arrival order."""
        return [json.loads(p)["id"] for p in self.payloads(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
