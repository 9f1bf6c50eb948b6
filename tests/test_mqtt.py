"""EventPublisher against a real mosquitto: payloads, retained availability and states, the last will, an outage,
a restart with a pending outbox, a full outbox disk, commands, password and TLS."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.core.events import EVENT_TYPES, Event
from edge.mqtt.publisher import EventPublisher
from edge.storage.outbox import Outbox
from tests.mosquitto import WAIT, Mosquitto, Recorder, free_port, wait_until
from tests.test_daemon import PIN, door_dir, write_config
from tests.test_outbox import fill_up, small_filesystem

__all__ = ["door_dir"]  # the enrolled store of tests/test_daemon.py, a fixture of this module too

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def recorders():
    made: list[Recorder] = []

    def make(port: int, topics: list[str], **kw) -> Recorder:
        made.append(Recorder(port, topics, client_id=kw.pop("client_id", f"rec{len(made)}"), **kw))
        return made[-1]

    yield make
    for rec in made:
        rec.close()


@pytest.fixture
def publishers():
    made: list[EventPublisher] = []

    def make(**kw) -> EventPublisher:
        kw.setdefault("host", "127.0.0.1")
        kw.setdefault("reconnect_max_s", 2)
        made.append(EventPublisher(**kw))
        return made[-1]

    yield make
    for pub in made:
        pub.stop(timeout=1)


def _events(device: str, n: int) -> list[Event]:
    return [Event("unknown", device, distance=1.0 + i / 1000, timings_ms={"total": 12.5}, detail={"i": i})
            for i in range(n)]


def test_events_states_availability_and_discovery(tmp_path, broker, recorders, publishers):
    rec = recorders(broker.port, ["facegate/door1/#", "homeassistant/#"])
    with Outbox(tmp_path / "outbox.db") as outbox:
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox)
        pub.start()
        assert wait_until(lambda: pub.connected)
        sent = [Event("recognized", "door1", person="alice", distance=0.61,
                      timings_ms={"detect": 8.0, "encode": 40.5, "total": 55.0}),
                Event("door_unlocked", "door1", detail={"cause": "face", "person": "alice"}),
                Event("alarm", "door1", detail={"reason": "held open"}),
                Event("door_locked", "door1")]
        for event in sent:
            pub.publish_event(event)
        assert pub.flush(WAIT) and len(outbox) == 0
        assert wait_until(lambda: len(rec.payloads("facegate/door1/events")) == len(sent))
        got = [Event.from_json(p) for p in rec.payloads("facegate/door1/events")]
        assert got == sent  # every field, in order
        assert json.loads(rec.payloads("facegate/door1/events")[0])["timings_ms"]["encode"] == 40.5
        assert wait_until(lambda: rec.payloads("facegate/door1/state/door")[-1:] == ["locked"])
        assert rec.payloads("facegate/door1/state/door") == ["unlocked", "locked"]
        assert rec.payloads("facegate/door1/state/last_person") == ["alice"]
        assert rec.payloads("facegate/door1/availability") == ["online"]
        # each door state comes with when and why, from the event that changed it
        changes = [json.loads(p) for p in rec.payloads("facegate/door1/state/door_change")]
        assert [(c["state"], c["cause"], c["person"], c["event"], c["time"]) for c in changes] == [
            ("unlocked", "face", "alice", sent[1].id, sent[1].time), ("locked", None, None, sent[3].id, sent[3].time)]

        configs = {m.topic: json.loads(m.payload) for m in rec.messages if m.topic.startswith("homeassistant/")}
        assert set(configs) == {"homeassistant/binary_sensor/facegate_door1/door/config",
                                "homeassistant/sensor/facegate_door1/last_person/config",
                                "homeassistant/event/facegate_door1/events/config"}
        assert len({c["unique_id"] for c in configs.values()}) == 3
        for config in configs.values():
            assert config["availability_topic"] == "facegate/door1/availability"
            assert config["device"]["identifiers"] == ["facegate_door1"]
        door = configs["homeassistant/binary_sensor/facegate_door1/door/config"]
        assert (door["state_topic"], door["payload_on"], door["payload_off"]) == (
            "facegate/door1/state/door", "unlocked", "locked")
        assert door["json_attributes_topic"] == "facegate/door1/state/door_change"
        events_config = configs["homeassistant/event/facegate_door1/events/config"]
        assert events_config["event_types"] == list(EVENT_TYPES)
        assert "value_json.time" in events_config["value_template"]  # the door's own time travels with each event
        for config in configs.values():
            assert config["qos"] == 1 and config["origin"]["name"] == "facegate"
        assert "homeassistant/lock/facegate_door1/lock/config (QoS 1)" in broker.log()  # looks for a stale lock

        # Home Assistant restarts and says so (its birth message): the door announces itself again
        before = sum(1 for m in rec.messages if m.topic.startswith("homeassistant/") and m.topic.endswith("/config"))
        rec.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(WAIT)
        assert wait_until(lambda: sum(1 for m in rec.messages if m.topic.startswith("homeassistant/")
                                      and m.topic.endswith("/config")) == before + 3)
        assert wait_until(lambda: rec.payloads("facegate/door1/availability")[-1:] == ["online"]
                          and len(rec.payloads("facegate/door1/availability")) == 2)

        late = recorders(broker.port, ["facegate/door1/#"])  # retained messages, as a new dashboard sees them
        assert wait_until(lambda: late.retained("facegate/door1/availability") == ["online"])
        assert wait_until(lambda: late.retained("facegate/door1/state/door") == ["locked"])
        assert late.retained("facegate/door1/events") == []  # events are not retained

        pub.stop()
        pub.stop()  # idempotent
        assert not pub.connected
        assert wait_until(lambda: rec.payloads("facegate/door1/availability") == ["online", "online", "offline"])
        after = recorders(broker.port, ["facegate/door1/availability"])
        assert wait_until(lambda: after.retained("facegate/door1/availability") == ["offline"])
        counters = pub.counters
        assert counters.sent == counters.acknowledged == len(sent) and counters.connects == 1


def test_events_leave_the_outbox_only_on_puback(tmp_path, broker, publishers):
    with Outbox(tmp_path / "outbox.db") as outbox:
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox)
        pub.start()
        assert wait_until(lambda: pub.connected)
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker is frozen: it can receive nothing, ack nothing
        try:
            events = _events("door1", 5)
            for event in events:
                pub.publish_event(event)
            assert wait_until(lambda: pub.counters.sent == 5)  # handed to the client and written to the socket
            assert len(outbox) == 5 and pub.counters.acknowledged == 0
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert pub.flush(WAIT) and pub.counters.acknowledged == 5


# A door process: connects (and publishes ``n`` events if asked), says so on stdout, then waits to be killed.
CHILD = """
import json, sys, time
from edge.core.events import Event
from edge.mqtt.publisher import EventPublisher
from edge.storage.outbox import Outbox
port, device, outbox_path, n, wait_connected = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    sys.argv[5] == "1"
pub = EventPublisher(host="127.0.0.1", port=port, device_id=device, outbox=Outbox(outbox_path), keepalive=60)
pub.start()
while wait_connected and not pub.connected:
    time.sleep(0.02)
events = [Event("unknown", device, detail={"i": i}) for i in range(n)]
for event in events:
    pub.publish_event(event)
print(json.dumps([e.id for e in events]), flush=True)
time.sleep(600)
"""


def _child(port: int, device: str, outbox: Path, n: int, *, wait_connected: bool) -> tuple[subprocess.Popen, list]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(port), device, str(outbox), str(n),
                             "1" if wait_connected else "0"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"the child publisher exited with {proc.wait()}")
    return proc, json.loads(line)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_last_will_when_the_process_dies(tmp_path, broker, recorders):
    rec = recorders(broker.port, ["facegate/door-will/availability"])
    proc, _ = _child(broker.port, "door-will", tmp_path / "outbox.db", 0, wait_connected=True)
    try:
        assert wait_until(lambda: rec.payloads("facegate/door-will/availability") == ["online"])
    finally:
        _kill(proc)  # no DISCONNECT: the broker sends the will
    assert wait_until(lambda: rec.payloads("facegate/door-will/availability") == ["online", "offline"])
    late = recorders(broker.port, ["facegate/door-will/availability"])
    assert wait_until(lambda: late.retained("facegate/door-will/availability") == ["offline"])


def test_outage_delivers_every_event_once(tmp_path, recorders, publishers):
    """Broker down for ~3 s while 200 events happen; back on the same port: all delivered, none twice."""
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()  # keeps the dashboard's session
    try:
        rec = recorders(broker.port, ["facegate/door1/events"], client_id="dashboard", persistent=True)
        with Outbox(tmp_path / "outbox.db") as outbox:
            pub = publishers(port=broker.port, device_id="door1", outbox=outbox)
            pub.start()
            assert wait_until(lambda: pub.connected)
            before = _events("door1", 10)
            for event in before:
                pub.publish_event(event)
            assert pub.flush(WAIT)
            # the dashboard's own PUBACKs too, or the broker redelivers those (dup) after the restart
            assert wait_until(lambda: broker.log().count("Received PUBACK from dashboard") == len(before))

            broker.stop()
            assert wait_until(lambda: not pub.connected)
            during = _events("door1", 200)
            for event in during:  # spread over ~3 s
                pub.publish_event(event)
                time.sleep(0.015)
            assert len(outbox) == 200
            broker.start()

            assert pub.flush(WAIT)
            topic = "facegate/door1/events"
            expected = {e.id for e in before + during}
            assert wait_until(lambda: set(rec.event_ids(topic)) >= expected)
            counts = Counter(rec.event_ids(topic))
            assert set(counts) == expected  # 0 lost
            assert [n for n in counts.values() if n > 1] == []  # 0 duplicates: nothing was in flight at the cut
            assert [json.loads(p)["detail"]["i"] for p in rec.payloads(topic)[10:]] == list(range(200))  # in order
            assert pub.counters.connects == 2
    finally:
        broker.stop()


def test_restart_sends_what_a_killed_process_left(tmp_path, broker, recorders, publishers):
    outbox_path = tmp_path / "outbox.db"
    broker.stop()  # the door starts while the broker is down, queues 50 events, and is killed
    proc, ids = _child(broker.port, "door1", outbox_path, 50, wait_connected=False)
    _kill(proc)
    broker.start()
    rec = recorders(broker.port, ["facegate/door1/events"])
    with Outbox(outbox_path) as outbox:
        assert [e.event_id for e in outbox.pending(100)] == ids
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox)
        pub.start()
        assert pub.flush(WAIT) and len(outbox) == 0
        assert wait_until(lambda: len(rec.event_ids("facegate/door1/events")) >= 50)
        assert rec.event_ids("facegate/door1/events") == ids


def test_full_outbox_disk_does_not_stop_events(tmp_path, broker, recorders, publishers, caplog):
    rec = recorders(broker.port, ["facegate/door1/events"])
    with Outbox(tmp_path / "outbox.db", max_bytes=16 * 1024) as outbox:
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox)
        events = [Event("unknown", "door1", detail={"i": i, "pad": "x" * 1500}) for i in range(30)]
        with caplog.at_level(logging.ERROR, "edge.storage.outbox"):
            for event in events:
                pub.publish_event(event)  # must not raise although the file is full
        assert outbox.counters.write_errors > 0 and outbox.degraded
        assert "database or disk is full" in caplog.text
        pub.start()  # not connected until now: nothing could be acknowledged and leave the outbox
        assert pub.flush(WAIT)  # the events held in memory are delivered as well
        assert wait_until(lambda: len(rec.event_ids("facegate/door1/events")) >= 30)
        assert sorted(rec.event_ids("facegate/door1/events")) == sorted(e.id for e in events)


def test_commands_are_off_by_default(tmp_path, broker, recorders, publishers):
    got: list[str] = []
    with Outbox(tmp_path / "outbox.db") as outbox:
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox, on_command=got.append)
        pub.start()
        assert wait_until(lambda: pub.connected)
        probe = recorders(broker.port, ["facegate/door1/availability"])
        probe.client.publish("facegate/door1/command", '{"command": "reload_store"}', qos=1).wait_for_publish(WAIT)
        pub.publish_event(Event("started", "door1"))
        assert pub.flush(WAIT)
    assert "facegate/door1/command (QoS" not in broker.log()  # it subscribes only to Home Assistant's status
    assert "homeassistant/status (QoS" in broker.log()
    assert got == [] and pub.counters.commands == 0


def command(name: str, command_id: str, *, age: float = 0.0) -> bytes:
    """A command message as the office sends it: name, a unique id and the time it was sent (``age`` s ago)."""
    sent = datetime.now(timezone.utc) - timedelta(seconds=age)
    return json.dumps({"command": name, "id": command_id, "time": sent.isoformat()}).encode()


def test_commands_when_enabled(tmp_path, broker, recorders, publishers):
    got: list[str] = []

    def on_command(name: str) -> None:
        got.append(name)
        if len(got) == 2:
            raise RuntimeError("handler bug")  # must not break the client

    with Outbox(tmp_path / "a.db") as outbox_a, Outbox(tmp_path / "b.db") as outbox_b:
        sender = recorders(broker.port, ["nothing"]).client
        # a retained command would be acted on at every reconnect: door2 must ignore this one
        sender.publish("facegate/door2/command", command("unlock", "r1"), qos=1, retain=True).wait_for_publish(WAIT)
        pub = publishers(port=broker.port, device_id="door1", outbox=outbox_a, commands=True, on_command=on_command)
        trusted = publishers(port=broker.port, device_id="door2", outbox=outbox_b, commands=True,
                             allow_unlock=True, on_command=got.append)
        pub.start()
        trusted.start()
        assert wait_until(lambda: "Received SUBSCRIBE from facegate-door1" in broker.log()
                          and "Received SUBSCRIBE from facegate-door2" in broker.log())
        assert wait_until(lambda: trusted.counters.commands_rejected == 1)
        for payload in [b"not json", b'{"cmd": "unlock"}', b"[1, 2]", b'{"command": "explode"}', b"\xff\xfe",
                        command("unlock", "u1"),  # not allowed on door1
                        b'{"command": "reload_store"}',  # no id, no time
                        command("reload_store", "bad id!"), command("reload_store", "s1", age=120),  # stale
                        command("reload_store", "s2", age=-120),  # from the future: a clock that is off
                        command("reload_store", "c1"), command("reload_store", "c2")]:
            sender.publish("facegate/door1/command", payload, qos=1)
        assert wait_until(lambda: pub.counters.commands_rejected == 11)  # 10 refused, 1 handler raised
        assert got == ["reload_store", "reload_store"] and pub.counters.commands == 1  # the 2nd handler call raised

        sender.publish("facegate/door2/command", command("unlock", "u2"), qos=1).wait_for_publish(WAIT)
        assert wait_until(lambda: got[-1:] == ["unlock"])
        sender.publish("facegate/door1/command", command("lock", "l1"), qos=1).wait_for_publish(WAIT)
        assert wait_until(lambda: got[-1:] == ["lock"])  # lock (relay off) needs no unlock permission
        got.remove("lock")
        assert trusted.counters.commands == 1 and trusted.counters.commands_rejected == 1
        # a recorded unlock sent again opens nothing
        sender.publish("facegate/door2/command", command("unlock", "u2"), qos=1).wait_for_publish(WAIT)
        assert wait_until(lambda: trusted.counters.commands_rejected == 2)
        assert got.count("unlock") == 1 and trusted.counters.commands == 1


def test_a_lock_entity_only_with_unlock_commands_removed_when_they_are_turned_off(tmp_path, broker, recorders,
                                                                                publishers):
    lock_topic = "homeassistant/lock/facegate_door3/lock/config"
    with Outbox(tmp_path / "a.db") as outbox:
        first = publishers(port=broker.port, device_id="door3", outbox=outbox, commands=True, allow_unlock=True)
        first.start()
        assert wait_until(lambda: first.connected)
        first.stop()
    seen = recorders(broker.port, ["homeassistant/#"])
    assert wait_until(lambda: len(seen.retained(lock_topic)) == 1)
    lock = json.loads(seen.retained(lock_topic)[0])
    assert (lock["command_topic"], lock["state_topic"]) == ("facegate/door3/command", "facegate/door3/state/door")
    assert (lock["payload_unlock"], lock["payload_lock"], lock["state_unlocked"], lock["state_locked"]) == (
        "unlock", "lock", "unlocked", "locked")
    assert lock["retain"] is False and lock["optimistic"] is False and lock["qos"] == 1
    assert "now()" in lock["command_template"]  # a fresh id and the time, rendered by Home Assistant per press

    with Outbox(tmp_path / "b.db") as outbox:  # the same door, unlock commands off: its lock is removed
        second = publishers(port=broker.port, device_id="door3", outbox=outbox)
        second.start()
        assert wait_until(lambda: seen.payloads(lock_topic)[-1:] == [""])
        other = publishers(port=broker.port, device_id="door4", outbox=outbox)  # never had a lock: nothing sent
        other.start()
        assert wait_until(lambda: other.connected)
        assert other.flush(WAIT)
    late = recorders(broker.port, ["homeassistant/#"])
    assert wait_until(lambda: len(late.retained("homeassistant/sensor/facegate_door4/last_person/config")) == 1)
    assert [m.topic for m in late.messages if m.topic.startswith("homeassistant/lock/")] == []
    assert [m.topic for m in seen.messages if "door4" in m.topic and "/lock/" in m.topic] == []


def test_an_outbox_on_a_full_disk_becomes_durable_when_room_returns(tmp_path, recorders, publishers):
    """A real full filesystem (tmpfs) under the outbox at start: events are kept in memory; the broker is down when
    room returns, so they are still pending: they move into the file (the owner is told how many), and once the
    broker is back every event arrives once, in order."""
    durable: list[int] = []
    with small_filesystem(tmp_path / "disk") as disk, Mosquitto(tmp_path / "broker", persistence=True) as broker:
        rec = recorders(broker.port, ["facegate/door1/events"], client_id="dashboard", persistent=True)
        filler = fill_up(disk)
        with Outbox(disk / "outbox.db", retry_seconds=0.2) as outbox:
            assert not outbox.durable
            pub = publishers(port=broker.port, device_id="door1", outbox=outbox, on_outbox_durable=durable.append)
            pub.start()
            assert wait_until(lambda: pub.connected)
            first = _events("door1", 3)
            for event in first:
                pub.publish_event(event)
            assert pub.flush(WAIT) and not outbox.durable  # delivered from memory
            assert wait_until(lambda: broker.log().count("Received PUBACK from dashboard") == len(first))
            broker.stop()
            assert wait_until(lambda: not pub.connected)
            pending = _events("door1", 5)
            for event in pending:
                pub.publish_event(event)
            time.sleep(0.5)  # a few retries, on a disk that is still full
            assert not outbox.durable and durable == []
            filler.unlink()
            assert wait_until(lambda: durable == [5])
            assert outbox.durable and [e.event_id for e in outbox.pending()] == [e.id for e in pending]
            broker.start()
            assert pub.flush(WAIT)
            assert wait_until(lambda: len(rec.event_ids("facegate/door1/events")) >= 8)
            assert rec.event_ids("facegate/door1/events") == [e.id for e in first + pending]


def test_a_door_on_a_full_disk_opens_and_says_when_events_are_durable_again(door_dir, weights_dir, tmp_path,
                                                                           monkeypatch):
    """The door daemon with its outbox on a real full filesystem at start: it opens for the enrolled, an alarm says
    events may be lost; room returns during the run: a second alarm says events are durable again, and every event
    reaches the broker once."""
    import threading

    from gpiozero.pins.mock import MockFactory

    from edge.config import load_config
    from edge.daemon.runner import run_door

    monkeypatch.setattr("edge.storage.outbox.RETRY_SECONDS", 0.2)  # the door's 30 s, shortened
    events: list[Event] = []
    stop = threading.Event()
    with small_filesystem(tmp_path / "disk") as disk, Mosquitto(tmp_path / "broker") as broker:
        filler = fill_up(disk)
        dashboard = Recorder(broker.port, ["facegate/test-door/events"], client_id="dashboard")

        def sink(event: Event) -> None:
            events.append(event)
            if event.type == "recognized" and [e.type for e in events].count("recognized") == 3:
                filler.unlink()  # room again, after the door has opened three times
            if event.type == "alarm" and event.detail["reason"] == "outbox_durable":
                stop.set()

        extra = f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\noutbox_path = "{disk / "outbox.db"}"'
        config = write_config(tmp_path / "door.toml", door_dir, weights_dir, extra=extra)
        config.write_text(config.read_text().replace("fps = 0", "fps = 10\nloop = true"))
        guard = threading.Timer(120, stop.set)  # never hangs the suite; the assertions below say what was missed
        guard.start()
        factory = MockFactory()
        try:
            counters = run_door(load_config(config), stop=stop, pin_factory=factory, echo=None, extra_sink=sink,
                                handle_signals=False)
            assert wait_until(lambda: len(dashboard.event_ids("facegate/test-door/events")) >= len(events))
        finally:
            guard.cancel()
            dashboard.close()
    alarms = [e.detail for e in events if e.type == "alarm"]
    assert [a["reason"] for a in alarms] == ["outbox_not_durable", "outbox_durable"], alarms
    assert "database or disk is full" in alarms[0]["error"] and alarms[1]["clears"] == "outbox_not_durable"
    assert counters.unlocks >= 3 and factory.pin(PIN).state is False
    assert dashboard.event_ids("facegate/test-door/events") == [e.id for e in events]


def test_password_good_and_bad_never_logged(tmp_path, recorders, publishers, caplog):
    secret, wrong = "s3cret-Pw-9431", "wr0ng-Pw-5512"
    caplog.set_level(logging.DEBUG)
    with Mosquitto(tmp_path / "broker", users={"door1": secret, "dash": "dash-pw"}) as broker, \
            Outbox(tmp_path / "a.db") as good_box, Outbox(tmp_path / "b.db") as bad_box:
        good = publishers(port=broker.port, device_id="door1", outbox=good_box, username="door1", password=secret)
        bad = publishers(port=broker.port, device_id="door9", outbox=bad_box, username="door1", password=wrong)
        good.start()
        bad.start()
        assert wait_until(lambda: good.connected)
        good.publish_event(Event("started", "door1"))
        assert good.flush(WAIT)
        bad.publish_event(Event("started", "door9"))
        assert wait_until(lambda: "refused the connection" in caplog.text)
        assert not bad.connected and len(bad_box) == 1
        assert "not authorised" in broker.log()
        bad.stop(timeout=1)
    assert secret not in caplog.text and wrong not in caplog.text
    assert "paho" in caplog.text  # the client's own debug log was captured too


def _certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
    directory.mkdir()
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "server.key", "server.csr",
                                                         "server.crt"))
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


def test_tls_with_the_right_ca_only(tmp_path, publishers, caplog):
    ca, cert, key = _certificates(tmp_path / "pki", "facegate test")
    other_ca, _, _ = _certificates(tmp_path / "other", "someone else")
    with Mosquitto(tmp_path / "broker", tls=(ca, cert, key)) as broker, \
            Outbox(tmp_path / "a.db") as good_box, Outbox(tmp_path / "b.db") as bad_box:
        good = publishers(port=broker.port, device_id="door1", outbox=good_box, tls_ca=str(ca))
        bad = publishers(port=broker.port, device_id="door2", outbox=bad_box, tls_ca=str(other_ca))
        good.start()
        bad.start()
        good.publish_event(Event("started", "door1"))
        assert good.flush(WAIT) and good.connected
        assert wait_until(lambda: "cannot reach" in caplog.text and "127.0.0.1" in caplog.text)
        assert not bad.connected


def test_start_and_stop_never_block_without_a_broker(tmp_path, publishers):
    with Outbox(tmp_path / "o.db") as outbox:
        pub = publishers(port=free_port(), device_id="door1", outbox=outbox)
        pub.start()
        pub.publish_event(Event("started", "door1"))
        assert not pub.flush(0.2)
        pub.stop(timeout=1)
        assert len(outbox) == 1 and not pub.connected
