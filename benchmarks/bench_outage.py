"""Broker outage benchmark: events published while the MQTT broker is down must all arrive, once each, after it returns.

A real mosquitto (persistent, so the dashboard's session and its queued messages survive the restart), a
dashboard subscriber with a persistent session, and an :class:`edge.mqtt.publisher.EventPublisher` with its default
reconnect back-off. The broker is stopped, ``--events`` events are published evenly over ``--outage``
seconds, the broker is started again on the same port, and the script waits until the dashboard has every
event. Prints the events lost, the duplicates the dashboard received, the seconds from the broker's return
to the publisher's reconnection and to the last event delivered.

    .venv/bin/python benchmarks/bench_outage.py --outage 60 --events 200
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.core.events import Event  # noqa: E402
from edge.mqtt.publisher import EventPublisher  # noqa: E402
from edge.storage.outbox import Outbox  # noqa: E402
from tests.mosquitto import Mosquitto, Recorder, wait_until  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the broker is down")
    parser.add_argument("--events", type=int, default=200, help="events published during the outage")
    parser.add_argument("--reconnect-max", type=int, default=30, help="publisher's largest back-off, seconds")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for delivery after return")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        tmp_path = Path(tmp)
        broker = Mosquitto(tmp_path / "broker", persistence=True).start()
        dashboard = Recorder(broker.port, ["facegate/bench/events"], client_id="dashboard", persistent=True)
        outbox = Outbox(tmp_path / "outbox.db")
        pub = EventPublisher(host="127.0.0.1", port=broker.port, device_id="bench", outbox=outbox,
                             reconnect_max_s=args.reconnect_max)
        try:
            pub.start()
            if not wait_until(lambda: pub.connected):
                print("publisher never connected", file=sys.stderr)
                return 1
            warmup = [Event("started", "bench")]
            pub.publish_event(warmup[0])
            pub.flush(20)
            wait_until(lambda: broker.log().count("Received PUBACK from dashboard") >= 1)

            broker.stop()
            wait_until(lambda: not pub.connected)
            down_at = time.monotonic()
            events = [Event("unknown", "bench", detail={"i": i}) for i in range(args.events)]
            for i, event in enumerate(events):
                pub.publish_event(event)
                time.sleep(max(0.0, down_at + (i + 1) * args.outage / (args.events + 1) - time.monotonic()))
            time.sleep(max(0.0, down_at + args.outage - time.monotonic()))
            pending_at_return = len(outbox)
            broker.start()
            back_at = time.monotonic()

            wait_until(lambda: pub.connected, timeout=args.timeout)
            reconnected_s = time.monotonic() - back_at
            expected = {e.id for e in warmup + events}
            done = wait_until(lambda: set(dashboard.event_ids("facegate/bench/events")) >= expected,
                              timeout=args.timeout, step=0.005)
            delivered_s = time.monotonic() - back_at
            pub.flush(10)
            counts = Counter(dashboard.event_ids("facegate/bench/events"))
            lost = len(expected - set(counts))
            duplicates = sum(n - 1 for n in counts.values())
            order = [int(p.split('"i":')[1].split("}")[0]) for p in dashboard.payloads("facegate/bench/events")
                     if '"i":' in p]
            print(f"outage: {args.outage:.0f} s, events published while down: {args.events} "
                  f"(outbox held {pending_at_return} at the broker's return)")
            print(f"events lost: {lost}")
            print(f"duplicates received: {duplicates}")
            print(f"in order: {order == sorted(order)}")
            print(f"seconds from broker return to publisher reconnected: {reconnected_s:.2f}")
            print(f"seconds from broker return to all delivered: {delivered_s:.2f}" + ("" if done else " (TIMEOUT)"))
            print(f"outbox left: {len(outbox)}; publisher counters: {pub.counters}")
            return 0 if done and lost == 0 else 1
        finally:
            pub.stop(timeout=2)
            outbox.close()
            dashboard.close()
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
