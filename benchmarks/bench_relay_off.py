"""How long ``facegate relay-off`` takes, the systemd ExecStopPost= safety net that switches the relay off after
the daemon died: the whole process, start to exit, as systemd runs it.

    .venv/bin/python benchmarks/bench_relay_off.py [--runs 20] [--baseline OTHER_CHECKOUT] [--config FILE]

Each run is a fresh ``python -m edge.cli relay-off --config FILE`` (mock pins by default: examples/demo.toml).
With ``--baseline``, the same command from another checkout of facegate (e.g. a ``git worktree`` of an older
commit) runs in turns with this one, in the same interpreter and environment, and the ratio is printed. Wall
times are medians; this prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(checkout: Path, config: Path, env: dict[str, str]) -> float:
    """Seconds of one ``relay-off`` process run from ``checkout``; raises if it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edge.cli", "relay-off", "--config", str(config)], cwd=checkout,
                          env={**env, "PYTHONPATH": str(checkout)}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"relay-off from {checkout} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each checkout (default 20)")
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "demo.toml")
    parser.add_argument("--baseline", type=Path, help="another facegate checkout to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as demo:
        # examples/demo.toml names $FACEGATE_DEMO; relay-off needs only its [relay] table, but an older facegate
        # validates the whole file first: give it a folder that exists.
        Path(demo, "visits").mkdir()
        env = {**os.environ, "FACEGATE_DEMO": demo}
        checkouts = {"this checkout": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
        times: dict[str, list[float]] = {name: [] for name in checkouts}
        for checkout in checkouts.values():
            one_run(checkout, args.config.resolve(), env)  # warm the file cache and the bytecode
        for _ in range(args.runs):
            for name, checkout in checkouts.items():
                times[name].append(one_run(checkout, args.config.resolve(), env))
    print(f"facegate relay-off --config {args.config}: {args.runs} runs each, in turns (wall time, whole process)")
    for name, series in times.items():
        print(f"  {name:14s} median {1000 * statistics.median(series):7.1f} ms   min {1000 * min(series):7.1f} ms"
              f"   ({checkouts[name]})")
    if args.baseline:
        ratio = statistics.median(times["baseline"]) / statistics.median(times["this checkout"])
        print(f"  this checkout is {ratio:.2f}x as fast as the baseline (median against median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
