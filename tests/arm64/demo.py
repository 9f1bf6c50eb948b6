"""The door demo's config in slow motion, for a machine that takes seconds a frame (an emulated arm64 root).

    python demo.py DEMO_TOML OUT_TOML --slowdown K

The demo replays 5 frames a second; under emulation a frame takes seconds, so at that pace the replay would skip
frames and the votes would differ. Here the frame interval and every duration of the config (each ``*_seconds``
key it sets, and the defaults in :data:`DEFAULTS` that a slow replay reaches) are multiplied by K: a frame arrives
when the previous one is done, and every decision is taken on the same frames in the same order. The two keys the
config caps at 60 s (:data:`CAPS`) are cut there when they still span the frames they are about; otherwise this
refuses. ``tests/arm64/pi_check.sh`` runs the x86 and the arm64 demo with the same slowed config, side by side.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import tomllib

#: Durations the demo config leaves at their defaults that a slowed replay would reach: (table, key, default).
DEFAULTS = (("camera", "read_timeout_seconds", 2.0), ("liveness", "frozen_camera_seconds", 5.0))
#: The most the config accepts, and how many frame intervals the capped value must still span for every decision
#: to be the same: the vote window must hold the frames that vote, the read timeout more than a frame's wait.
CAPS = {("recognition", "window_seconds"): (60.0, "votes_window"), ("camera", "read_timeout_seconds"): (60.0, 2)}


def slowed(config: dict, slowdown: float) -> dict:
    """``config`` with every duration ``slowdown`` times longer and the replay ``slowdown`` times slower.

    A duration above what the config accepts (:data:`CAPS`) is cut to that, which changes no decision while it
    still spans the frames it is about; otherwise this refuses.
    """
    if slowdown < 1:
        raise SystemExit(f"--slowdown must be at least 1, got {slowdown:g}")
    out = {table: dict(values) for table, values in config.items()}
    camera = out["camera"]
    if camera.get("type") != "replay" or not camera.get("fps"):
        raise SystemExit('the demo config must replay at a fixed fps ([camera] type = "replay", fps > 0)')
    camera["fps"] = camera["fps"] / slowdown
    interval = 1 / camera["fps"]
    durations = {(table, key): value for table, values in out.items() for key, value in values.items()
                 if key.endswith("_seconds")}
    for table, key, default in DEFAULTS:
        durations.setdefault((table, key), default)
    for (table, key), value in durations.items():
        value *= slowdown
        if (table, key) in CAPS:
            cap, frames = CAPS[table, key]
            frames = out["recognition"].get(frames, 3) if isinstance(frames, str) else frames
            if value > cap and cap < frames * interval:
                raise SystemExit(f"--slowdown {slowdown:g}: [{table}] {key} would need {frames * interval:g} s "
                                 f"({frames} frames of {interval:g} s), more than the {cap:g} s allowed")
            value = min(value, cap)
        out.setdefault(table, {})[key] = value
    return out


def to_toml(config: dict) -> str:
    """Tables of plain values (str, bool, int, float, lists of them), as the demo config has."""
    lines = []
    for table, values in config.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(map(_value, value)) + "]"
    raise SystemExit(f"cannot write {type(value).__name__} values: {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="the demo config (examples/demo.toml)")
    parser.add_argument("out", type=Path, help="where to write the slowed config")
    parser.add_argument("--slowdown", type=float, required=True, help="how many times slower (at least 1)")
    args = parser.parse_args(argv)
    config = slowed(tomllib.loads(args.template.read_text()), args.slowdown)
    args.out.write_text(f"# {args.template.name}, {args.slowdown:g} times slower (tests/arm64/demo.py)\n"
                        + to_toml(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
