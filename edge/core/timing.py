"""Wall-clock latency measurements: timed stages and calls, and their median / 95th percentile, in milliseconds.

Shared by the face pipeline (per-stage timings of every frame), ``facegate bench`` and the conversion report
(``convert.measure``), so all of them measure and summarise the same way.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence


@contextlib.contextmanager
def timed(timings: MutableMapping[str, float], stage: str) -> Iterator[None]:
    """Record the milliseconds the ``with`` block took as ``timings[stage]`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = (time.perf_counter() - start) * 1000.0


def timings(call: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds taken by each of ``runs`` successive calls of ``call()`` (``time.perf_counter``)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def percentiles(times: Sequence[float]) -> dict[str, float]:
    """``{"p50": median, "p95": 95th percentile}`` of ``times`` (same unit as given; at least one sample).

    The 95th percentile is the sample at rank ``int(0.95 * n)`` of the sorted samples (the largest one for
    fewer than 20 samples): an observed value, never an interpolation.
    """
    if not times:
        raise ValueError("percentiles of no samples")
    ordered = sorted(times)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}
