"""Multiply-accumulates of the door's models, counted from their graphs: a machine-free measure of their cost.

For every operator of a ``.tflite`` graph (read with the TFLite interpreter, no delegate applied, so the ops are the
file's own): a convolution costs ``output pixels x output channels x kernel height x kernel width x input
channels`` MACs, a depthwise convolution the same without the input channels, a fully-connected layer
``outputs x inputs`` per row; everything else (adds, pooling, concatenation, padding, activations, the
resize and reshape ops) is listed by its output elements, as a few percent of the time at most. The README's
Raspberry Pi estimate ("On arm64") divides these counts by published int8 throughput figures.

    .venv/bin/python benchmarks/model_macs.py [MODEL.tflite ...]     (default: the int8 FaceNet and BlazeFace short)

Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = (REPO / "weights/facenet_int8.tflite", REPO / "weights/face_detection_short_range.tflite")


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # the converter's venv: TensorFlow's own interpreter
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def count(path: Path) -> dict:
    """``{"macs": {op: n}, "elements": {op: n}, "ops": {op: n}, "weights": n, "input": shape}`` of one model."""
    interpreter = _interpreter(path)
    shapes = {t["index"]: tuple(int(v) for v in t["shape"]) for t in interpreter.get_tensor_details()}
    macs: dict[str, int] = defaultdict(int)
    elements: dict[str, int] = defaultdict(int)
    ops: dict[str, int] = defaultdict(int)
    weights = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 (the only graph walk the runtime offers)
        name, inputs, outputs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        ops[name] += 1
        out = shapes[outputs[0]]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            kernel = shapes[inputs[1]]
            weights += int(np.prod(kernel))
            if name == "CONV_2D":  # kernel (O, KH, KW, I), output (N, OH, OW, O)
                macs[name] += int(np.prod(out)) * kernel[1] * kernel[2] * kernel[3]
            elif name == "DEPTHWISE_CONV_2D":  # kernel (1, KH, KW, O)
                macs[name] += int(np.prod(out)) * kernel[1] * kernel[2]
            else:  # kernel (O, I), output (..., O)
                macs[name] += int(np.prod(out)) * kernel[1]
        else:
            elements[name] += int(np.prod(out))
    input_shape = shapes[interpreter.get_input_details()[0]["index"]]
    return {"macs": dict(macs), "elements": dict(elements), "ops": dict(ops), "weights": weights,
            "input": input_shape}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=list(DEFAULT_MODELS))
    args = parser.parse_args(argv)
    for path in args.models:
        found = count(path)
        total = sum(found["macs"].values())
        print(f"{path.name}: input {'x'.join(map(str, found['input']))}, {sum(found['ops'].values())} ops, "
              f"{found['weights'] / 1e6:.2f} M weights, {total / 1e6:.1f} M MACs")
        for name, n in sorted(found["macs"].items(), key=lambda item: -item[1]):
            print(f"  {name:20s} {found['ops'][name]:4d} ops  {n / 1e6:9.1f} M MACs  ({n / total:.1%})")
        other = sum(found["elements"].values())
        kinds = ", ".join(f"{name.lower()} {found['ops'][name]}" for name in sorted(found["elements"]))
        print(f"  other ops: {other / 1e6:.2f} M output elements ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
