"""What the conversion report measures: agreement with Keras, recognition quality and speed."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.core.timing import percentiles, timings
from edge.eval.metrics import (
    cosine_agreement,
    equal_error_rate,
    identify_nearest,
    open_set_distances,
    pair_distances,
    threshold_for_far,
)


@dataclass(frozen=True)
class Quality:
    """Recognition quality of one encoder on a labelled photo set (distances are L2 on unit vectors)."""

    identified: int  # val photos whose nearest train photo shows the same person
    probes: int
    eer: float  # equal-error rate over all photo pairs, 0..1
    eer_threshold: float
    threshold: float  # the shipped threshold: open-set stranger acceptance <= target_far
    threshold_far: float  # share of left-out people (strangers) the threshold would let in
    threshold_frr: float  # share of photos whose nearest same-person photo it would reject
    target_far: float
    genuine_pairs: int
    impostor_pairs: int
    strangers: int  # open-set probes: every photo, its person left out of the gallery

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def quality(train: np.ndarray, train_labels: list[str], val: np.ndarray, val_labels: list[str],
            *, target_far: float) -> Quality:
    """Identify ``val`` against ``train``, the pair EER, and the open-set threshold for ``target_far``.

    The threshold is chosen on leave-one-out 1:N distances (:func:`edge.eval.metrics.open_set_distances`), as a
    stranger meets the door: compared with every enrolled encoding at once.
    """
    predicted, _ = identify_nearest(val, train, train_labels)
    hits = sum(p == t for p, t in zip(predicted, val_labels, strict=True))
    encodings, labels = np.concatenate([train, val]), train_labels + val_labels
    genuine, impostor = pair_distances(encodings, labels)
    eer = equal_error_rate(genuine, impostor)
    nearest_genuine, nearest_stranger = open_set_distances(encodings, labels)
    op = threshold_for_far(nearest_genuine, nearest_stranger, target_far)
    return Quality(hits, len(val_labels), eer.far, eer.threshold, op.threshold, op.far, op.frr, target_far,
                   len(genuine), len(impostor), len(nearest_stranger))


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Cosine similarity of candidate encodings to the reference (Keras) ones: min and mean."""
    if not np.all(np.isfinite(candidate)):
        return {"cosine_min": float("nan"), "cosine_mean": float("nan")}
    cos = cosine_agreement(reference, candidate)
    return {"cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}


def latency_ms(run: Callable[[], object], *, warmup: int = 5, runs: int = 30) -> dict[str, float]:
    """Median and 95th-percentile milliseconds of ``run()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    return percentiles(timings(run, runs))


def latency_table(h5: Path | None, models: dict[str, Path], threads: int, *, rounds: int = 6,
                  runs: int = 8) -> dict[str, dict[str, float]]:
    """Batch-1 latency of Keras and each TFLite model, all timed in one fresh process limited to ``threads``.

    TensorFlow fixes its thread pools when it starts, so each thread count needs its own process. Inside
    it the models take turns (``rounds`` rounds of ``runs`` calls each), so a busy moment on a shared
    machine hits all of them alike and their ratios stay fair. Keras is timed with ``predict_on_batch``,
    TFLite with :class:`edge.core.runtime.TFLiteModel` (quantising the input and dequantising the output
    included). Returns ``{name: {"p50": ms, "p95": ms}}``, with ``"keras"`` if ``h5`` is given.
    """
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "convert.measure", "--threads", str(threads), "--rounds", str(rounds),
           "--runs", str(runs)]
    if h5 is not None:
        cmd += ["--h5", str(h5)]
    for name, path in models.items():
        cmd += ["--model", f"{name}={path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=_env_with_path(root), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"latency run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _latency_main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="time models in turns in this process (see latency_table)")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--h5", type=Path)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args(argv)

    from edge.core.runtime import TFLiteModel

    x = np.random.default_rng(0).standard_normal((1, 160, 160, 3)).astype(np.float32)
    calls: dict[str, Callable[[], object]] = {}
    if args.h5 is not None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        from convert.facenet import load_facenet

        keras_model = load_facenet(args.h5)
        calls["keras"] = lambda: keras_model.predict_on_batch(x)
    for item in args.model:
        name, path = item.split("=", 1)
        model = TFLiteModel(path, num_threads=args.threads)
        calls[name] = functools.partial(model, x)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: first calls trace graphs and pack weights
        for _ in range(3):
            call()
    for _ in range(args.rounds):
        for name, call in calls.items():
            samples[name] += timings(call, args.runs)
    print(json.dumps({name: percentiles(times) for name, times in samples.items()}))
    return 0


def _env_with_path(root: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def probe_runtimes(models: list[Path], *, pythons: list[str]) -> dict[str, dict]:
    """Which runtimes run each model, asked of this interpreter and of every extra one in ``pythons``.

    Returns ``{runtime label: {"version": ..., "models": {file name: "ok" or the error}}}``. An extra
    interpreter is how the legacy tflite-runtime (which needs numpy < 2) is checked beside LiteRT.
    """
    root = Path(__file__).resolve().parent.parent
    found: dict[str, dict] = {}
    for python in [sys.executable, *pythons]:
        proc = subprocess.run([python, "-m", "edge.core.runtime", *map(str, models)], capture_output=True, text=True,
                              cwd=root, env=_env_with_path(root), check=False, timeout=600)
        if proc.returncode != 0:
            found[f"({python})"] = {"version": "?", "models": {}, "error": proc.stderr.strip()[-300:]}
            continue
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        for runtime, row in answer["results"].items():
            dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(runtime)
            version = answer["versions"].get(dist) if dist else (
                answer["versions"].get("tensorflow") or answer["versions"].get("tensorflow-cpu"))
            if version is None or runtime in found:
                continue  # not installed in that interpreter, or already asked
            found[runtime] = {"version": version, "models": row}
    return found


if __name__ == "__main__":
    raise SystemExit(_latency_main())
