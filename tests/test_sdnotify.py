"""The systemd notify protocol over a real unix datagram socket."""

from __future__ import annotations

import socket

from edge.devices.sdnotify import SystemdNotifier


def test_messages_reach_the_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = SystemdNotifier()
    assert n.enabled
    assert n.ready("camera, relay, store and model open")
    assert server.recv(1024) == b"READY=1\nSTATUS=camera, relay, store and model open"
    assert n.watchdog() and server.recv(1024) == b"WATCHDOG=1"
    assert n.stopping() and server.recv(1024) == b"STOPPING=1"
    n.close()
    n.close()
    server.close()


def test_outside_systemd_nothing_happens(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = SystemdNotifier()
    assert not n.enabled and n.ready() is False


def test_watchdog_interval(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert SystemdNotifier.watchdog_interval() == 10.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert SystemdNotifier.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert SystemdNotifier.watchdog_interval() is None
