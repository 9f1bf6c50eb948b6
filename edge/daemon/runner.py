"""Opening everything a door needs from its config, running the daemon, and closing it all in order.

Order matters for a door: the relay is opened (off) first and closed last; signals only set a flag the
loop checks; whatever happens, the relay is forced off, the outbox flushed for a bounded time and
"offline" published before the process exits.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from edge.config import Config, MqttSection
from edge.core.decision import DoorDecider
from edge.core.events import Event
from edge.daemon.loop import Counters, DoorDaemon

log = logging.getLogger(__name__)

#: How long shutdown waits for the broker to acknowledge pending events (they stay in the outbox after).
FLUSH_SECONDS = 5.0


def format_event(event: Event) -> str:
    """One terminal line per event: time, type, person and distance when there are any."""
    parts = [event.time[11:23], f"{event.type:13s}"]
    if event.person:
        parts.append(event.person)
    if event.distance is not None:
        parts.append(f"distance {event.distance:.3f}")
    if event.detail and event.type in ("alarm", "camera_fault", "unknown", "denied", "stopped"):
        parts.append(" ".join(f"{k}={v}" for k, v in event.detail.items()))
    return "  ".join(parts).rstrip()


def run_door(config: Config, *, stop: threading.Event | None = None, pin_factory: Any = None,
             max_frames: int | None = None, echo: TextIO | None = sys.stdout,
             extra_sink: Callable[[Event], None] | None = None, handle_signals: bool = True) -> Counters:
    """Open the camera, model, store, relay and MQTT from ``config`` and run the door until stopped.

    Args:
        config: a validated :class:`edge.config.Config`.
        stop: set it to stop the loop; every signal of :data:`STOP_SIGNALS` switches the relay off and sets it
            too (with ``handle_signals``).
        pin_factory: a gpiozero pin factory to use instead of the config's (tests pass a MockFactory).
        max_frames: stop after this many frames (tests, benchmarks).
        echo: where each event is printed as a line (``None``: nowhere).
        extra_sink: also called with every event (tests).
    """
    from edge.core.door_monitor import DoorMonitor
    from edge.core.recognition import FaceModel
    from edge.daemon.access import open_access_control
    from edge.daemon.store_watch import FollowedStore
    from edge.devices.camera.resilient import ResilientCamera
    from edge.devices.inputs import DoorInputs
    from edge.devices.pins import pin_factory_named
    from edge.devices.relay import DoorRelay
    from edge.devices.sdnotify import SystemdNotifier
    from edge.storage.store import EncodingStore

    stop = stop or threading.Event()
    sinks: list[Callable[[Event], None]] = []
    daemon_ref: list[DoorDaemon] = []

    def publish(event: Event) -> None:
        log.info("event %s %s %s", event.type, event.person or "", event.id)
        if echo is not None:
            print(format_event(event), file=echo, flush=True)
        for sink in sinks:
            sink(event)

    cause: dict[str, Any] = {"cause": None, "person": None}  # what the latest unlock was for

    def unlock(why: str, person: str | None = None) -> bool:
        """Pulse the relay for ``why`` (``face``, ``exit_button``, ``command``): door_unlocked names it."""
        cause.update(cause=why, person=person)
        return relays[0].pulse() if relays else False

    def relay_changed(on: bool) -> None:
        if not daemon_ref:
            return
        if on:
            daemon_ref[0].event("door_unlocked", detail=dict(cause))
        else:
            daemon_ref[0].event("door_locked")

    def alarm(detail: dict[str, Any]) -> None:
        """An alarm raised outside the loop (the outbox durable again): through the daemon once there is one."""
        if daemon_ref:
            daemon_ref[0].event("alarm", detail=detail)
        else:
            publish(Event("alarm", config.device.id, detail=detail))

    if extra_sink is not None:
        sinks.append(extra_sink)
    relays: list[Any] = []  # the relay, once it is open: what a signal switches off first
    alarms: list[dict[str, Any]] = []  # conditions found while opening, reported right after 'started'
    previous = _install_signal_handlers(stop, relays) if handle_signals else {}
    factory = pin_factory if pin_factory is not None else pin_factory_named(config.relay.pin_factory)
    with ExitStack() as stack:
        relay = stack.enter_context(DoorRelay(config.relay.pin, active_high=config.relay.active_high,
                                              pulse_seconds=config.relay.pulse_seconds, pin_factory=factory,
                                              on_change=relay_changed))
        stack.callback(relay.force_off)  # runs first on the way out, before anything else closes
        relays.append(relay)
        rec = config.recognition
        model = FaceModel.from_files(config.models.encoder, config.models.detector, num_threads=config.models.threads,
                                     margin=rec.margin, align=rec.align, threshold=rec.threshold)
        store = stack.enter_context(FollowedStore(
            config.store.path, embedding_size=model.embedding_size,
            open_store=lambda path, create: EncodingStore(path, model_sha256=model.model_sha256,
                                                          embedding_size=model.embedding_size, create=create)))
        gallery = model.open_set(store, target_fpir=rec.target_fpir, override=rec.threshold)
        presentation, frozen_watch = presentation_checks(config)
        access = stack.enter_context(open_access_control(config, gallery=gallery))
        alarms.extend({"reason": "access_policy", "detail": problem} for problem in access.startup_problems())

        def lockdown(on: bool) -> None:
            """A lockdown set or ended by an authenticated command: said as an alarm, so the dashboard sees it."""
            access.set_lockdown(on, by="command")
            alarm({"reason": "lockdown" if on else "lockdown_ended", "by": "command",
                   "effect": "nothing unlocks but the exit button" if on else "the door's policy applies again"})

        def command_unlock(why: str) -> bool:
            """A remote unlock, if the door's policy lets one through now (not in a lockdown); logged either way."""
            if not access.allows_command_unlock().granted:
                log.warning("unlock command refused: the door is in lockdown")
                return False
            return unlock(why)

        if config.mqtt is not None:
            publisher = _open_publisher(config.mqtt, config.device.id, config.device.name, config.store.path, stack,
                                        command_unlock, relay.force_off, alarms, alarm, lockdown)
            sinks.append(publisher.publish_event)
        door_inputs = door_monitor = None
        if config.door is not None:
            door_inputs = stack.enter_context(DoorInputs(
                contact_pin=config.door.contact_pin, exit_pin=config.door.exit_pin, pin_factory=factory,
                on_exit_pressed=lambda: unlock("exit_button")))
            door_monitor = DoorMonitor(held_open_seconds=config.door.held_open_seconds)
        notifier = SystemdNotifier()
        stack.callback(notifier.close)

        def camera_fault(error) -> None:
            if daemon_ref:
                daemon_ref[0].counters.camera_faults += 1
                daemon_ref[0].event("camera_fault", detail={"error": str(error)})

        camera = stack.enter_context(ResilientCamera.from_config(config.camera, on_fault=camera_fault))
        decider = DoorDecider(votes_needed=rec.votes_needed, votes_window=rec.votes_window,
                              window_seconds=rec.window_seconds, min_face_px=rec.min_face_px,
                              cooldown_seconds=rec.cooldown_seconds,
                              unknown_report_interval_seconds=rec.unknown_report_interval_seconds)
        daemon = DoorDaemon(device_id=config.device.id, camera=camera, model=model, gallery=gallery, relay=relay,
                            decider=decider, publish=publish, notifier=notifier, door_inputs=door_inputs,
                            door_monitor=door_monitor, fuse_frames=rec.fuse_frames,
                            report_closest=rec.report_closest_match, startup_alarms=alarms, unlock=unlock,
                            store_watch=store, presentation=presentation, frozen_watch=frozen_watch, access=access)
        daemon_ref.append(daemon)
        access.start()  # the badge reader and the access log's retention purge
        camera.open()
        try:
            return daemon.run(stop, max_frames=max_frames)
        finally:
            relay.force_off()
            _restore_signal_handlers(previous)


def presentation_checks(config: Config) -> tuple[Any, Any]:
    """The ``[liveness]`` checks: a :class:`edge.core.presentation.PresentationCheck` (``None`` when off) with its
    models loaded and checked, and the frozen-camera watch (always on: a frozen camera is a fault).

    Raises:
        ModelError: the liveness card or a model is missing or altered (say ``mode = "off"`` to run without).
    """
    from edge.core.liveness import LIVENESS_CARD, LivenessModel
    from edge.core.presentation import FrozenCameraWatch, PresentationCheck
    from edge.errors import ModelError

    live = config.liveness
    watch = FrozenCameraWatch(after_seconds=live.frozen_camera_seconds)
    if live.mode == "off":
        return None, watch
    card = live.card or config.models.encoder.parent / LIVENESS_CARD
    try:
        model = LivenessModel.from_card(card, num_threads=config.models.threads, threshold=live.threshold)
    except ModelError as exc:
        raise type(exc)(f"{exc}; [liveness] mode = {live.mode!r} needs the liveness models (build them with "
                        "'facegate-convert build', or set mode = \"off\" to run without)") from exc
    check = PresentationCheck(model, mode=live.mode, still_max_difference=live.still_max_difference,
                              still_check=live.still_check, report_interval_seconds=live.report_interval_seconds)
    log.info("liveness %s: threshold %.2f, still images at <= %.2f grey levels", live.mode, check.threshold,
             live.still_max_difference)
    return check, watch


def _open_publisher(m: MqttSection, device_id: str, device_name: str | None, store_path: Path, stack: ExitStack,
                    unlock: Callable[[str], bool], lock: Callable[[], None], alarms: list[dict[str, Any]],
                    alarm: Callable[[dict[str, Any]], None], lockdown: Callable[[bool], None]) -> Any:
    from edge.mqtt.const import PAYLOAD_LOCKED, STATE_LAST_PERSON
    from edge.mqtt.publisher import EventPublisher
    from edge.storage.outbox import Outbox

    outbox = stack.enter_context(Outbox(m.outbox_path or store_path.with_name("outbox.sqlite")))
    if not outbox.durable:  # a full or read-only disk must not keep the door shut for everyone
        alarms.append({"reason": "outbox_not_durable", "error": outbox.open_error,
                       "effect": f"events are kept in memory until the outbox can be opened (tried every "
                                 f"{outbox.retry_seconds:g} s): lost if the process dies"})

    def outbox_durable(moved: int) -> None:  # the alarm above, cleared
        alarm({"reason": "outbox_durable", "clears": "outbox_not_durable", "moved": moved,
               "effect": "events are durable again"})

    def on_command(command: str) -> None:
        if command == "unlock" and m.allow_unlock_command:
            log.warning("unlock command received over MQTT")
            unlock("command")
        elif command == "lock":
            log.info("lock command received over MQTT: relay off")
            lock()
        elif command in ("lockdown", "end_lockdown"):
            log.warning("%s command received over MQTT", command)
            lockdown(command == "lockdown")
        elif command == "reload_store":
            log.info("reload_store: the store is re-read whenever it changes; nothing to do")

    publisher = EventPublisher(
        host=m.host, port=m.port, device_id=device_id, device_name=device_name, prefix=m.prefix, username=m.username,
        password=m.password.get_secret_value() if m.password is not None else None, tls=m.tls,
        tls_ca=str(m.tls_ca) if m.tls_ca else None, tls_cert=str(m.tls_cert) if m.tls_cert else None,
        tls_key=str(m.tls_key) if m.tls_key else None, outbox=outbox,
        discovery_prefix=m.discovery_prefix if m.discovery else None, commands=m.commands,
        allow_unlock=m.allow_unlock_command, on_command=on_command, on_outbox_durable=outbox_durable)
    # the relay was driven off when it was opened: that is the truth to publish, whatever a process that died
    # mid-pulse left retained on the broker; nobody has been recognised by this process yet
    publisher.set_door_state(PAYLOAD_LOCKED, at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                             cause="start")
    publisher.set_state(STATE_LAST_PERSON, "")
    publisher.start()
    stack.callback(publisher.stop, FLUSH_SECONDS)
    return publisher


#: Every signal that ends the process by default and can be caught: each one switches the relay off at once and
#: stops the loop (a terminal that hangs up, a watchdog's SIGABRT, a stray kill -USR1 included).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGABRT)


def _install_signal_handlers(stop: threading.Event, relays: list[Any]) -> dict:
    """Handlers for :data:`STOP_SIGNALS`: relay off now (from a thread: the handler may interrupt the main
    thread while it holds the relay's lock), then the loop stops and everything closes in order."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        for relay in relays:
            threading.Thread(target=relay.force_off, name="relay-off-on-signal", daemon=True).start()
        log.info("signal %s: relay off, stopping", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


def _restore_signal_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
