"""The TFLite runtime layer: one small wrapper over whichever interpreter is installed.

The runtimes are tried in order: ``ai_edge_litert`` (LiteRT, maintained), ``tflite_runtime`` (legacy,
still on older Raspberry Pi images) and, last, TensorFlow's own interpreter (workstations only). The
first that imports wins unless the caller names one.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError, RuntimeMissingError

log = logging.getLogger(__name__)

#: Runtime names, in the order they are tried: the module to import and the path of ``Interpreter`` in it.
RUNTIMES: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "Interpreter"),
    "tflite_runtime": ("tflite_runtime.interpreter", "Interpreter"),
    "tensorflow": ("tensorflow", "lite.Interpreter"),
}


def interpreter_class(runtime: str | None = None) -> tuple[str, Any]:
    """Return ``(name, Interpreter class)`` of the first importable runtime, or of ``runtime`` if given.

    Raises :class:`RuntimeMissingError` naming what to install when none can be imported.
    """
    names = [runtime] if runtime else list(RUNTIMES)
    errors = []
    for name in names:
        if name not in RUNTIMES:
            raise RuntimeMissingError(f"unknown TFLite runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
        module_name, attribute = RUNTIMES[name]
        try:
            found = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except Exception as exc:  # ImportError, or a binary built against another numpy
            errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        return name, found
    raise RuntimeMissingError(
        "no TFLite runtime could be imported (" + "; ".join(errors) + "): "
        "install one with 'pip install ai-edge-litert' (or tflite-runtime on older Raspberry Pi images)"
    )


def available_runtimes() -> list[str]:
    """Names of the runtimes that import on this machine, in preference order."""
    found = []
    for name in RUNTIMES:
        try:
            interpreter_class(name)
        except RuntimeMissingError:
            continue
        found.append(name)
    return found


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: shape, dtype and its affine quantisation (scale 0 = not quantised)."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=detail["name"],
        index=detail["index"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values to ``spec``'s integer dtype: ``round(x / scale) + zero_point``, clipped to its range."""
    info = np.iinfo(spec.dtype)
    q = np.round(np.asarray(x, np.float32) / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer values of ``spec`` back to float32: ``(q - zero_point) * scale``."""
    return ((q.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


class TFLiteModel:
    """A TFLite model ready to run: float in, float out, whatever the model's own tensor types are.

    Quantised inputs are quantised and quantised outputs dequantised with the tensors' own parameters,
    so callers always pass and receive float32 arrays. Not thread-safe: use one instance per thread.

    Args:
        path: the ``.tflite`` file.
        num_threads: CPU threads the interpreter may use (``None``: the runtime's default).
        runtime: force one runtime by name (see :data:`RUNTIMES`); ``None`` takes the first available.
    """

    def __init__(self, path: str | Path, *, num_threads: int | None = None, runtime: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist")
        self.runtime, cls = interpreter_class(runtime)
        try:
            self._interpreter = cls(model_path=str(self.path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.runtime} cannot load {self.path.name}: {str(exc).splitlines()[0]}") from exc
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]
        log.debug("loaded %s with %s (%s threads)", self.path.name, self.runtime, num_threads)

    @property
    def input(self) -> TensorSpec:
        """The first (for our models: the only) input tensor."""
        return self.inputs[0]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on one input batch shaped like :attr:`input` and return every output as float32."""
        spec = self.input
        x = np.asarray(x)
        if tuple(x.shape) != spec.shape:
            raise ModelError(f"{self.path.name} expects input shape {spec.shape}, got {tuple(x.shape)}")
        value = quantize(x, spec) if spec.quantized else x.astype(spec.dtype, copy=False)
        try:
            self._interpreter.set_tensor(spec.index, value)
            self._interpreter.invoke()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.runtime} failed to run {self.path.name}: {str(exc).splitlines()[0]}") from exc
        results = []
        for out in self.outputs:
            raw = self._interpreter.get_tensor(out.index)
            results.append(dequantize(raw, out) if out.quantized else raw.astype(np.float32, copy=True))
        return results


def probe(model_paths: list[str | Path], *, runtimes: list[str] | None = None) -> dict[str, dict[str, str]]:
    """Which runtimes can load and run each model: ``{runtime: {model file name: "ok" or the error}}``.

    Each model is loaded and invoked once on zeros. Runtimes that do not import here are reported with
    their import error for every model.
    """
    results: dict[str, dict[str, str]] = {}
    for name in runtimes or list(RUNTIMES):
        row: dict[str, str] = {}
        for path in model_paths:
            try:
                model = TFLiteModel(path, num_threads=1, runtime=name)
                model(np.zeros(model.input.shape, np.float32))
                row[Path(path).name] = "ok"
            except Exception as exc:  # a report of what failed, whatever it was
                row[Path(path).name] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        results[name] = row
    return results


def _probe_main(argv: list[str] | None = None) -> int:
    """``python -m edge.core.runtime MODEL...``: print :func:`probe`'s answer as JSON with the runtime versions."""
    import argparse
    import json
    from importlib import metadata

    parser = argparse.ArgumentParser(description=_probe_main.__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runtime", action="append", choices=list(RUNTIMES))
    args = parser.parse_args(argv)
    versions = {}
    for dist in ("ai-edge-litert", "tflite-runtime", "tensorflow", "tensorflow-cpu", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    print(json.dumps({"versions": versions, "results": probe(args.models, runtimes=args.runtime)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_probe_main())
