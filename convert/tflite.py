"""Keras FaceNet -> TFLite, in four variants.

| variant  | weights | activations | input/output |
|----------|---------|-------------|--------------|
| float32  | float32 | float32     | float32      |
| float16  | float16 | float32     | float32      |
| dynamic  | int8    | float32 (int8 kernels chosen at run time) | float32 |
| int8     | int8    | int8 (calibrated on real face crops)       | int8, quantisation recorded |

The Keras model is exported once as a SavedModel with a fixed batch of one (what the door runs) and each
variant is converted from that. Converting a Keras 3 model directly (``from_keras_model``, or
``from_concrete_functions`` over a ``tf.function`` that calls it) leaves its weights as resource variables
the converter does not freeze: measured here, a 0.46 MB float32 file whose every output is NaN, and an
int8 calibration that crashes. Whatever the path, :mod:`convert.build` checks every result against Keras
before keeping it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VARIANTS = ("float32", "float16", "dynamic", "int8")


def export_saved_model(model, folder: Path) -> Path:
    """Export the Keras model as a SavedModel with input ``(1, H, W, 3)`` float32 named ``face``."""
    import tensorflow as tf

    shape = [1, *model.input_shape[1:]]
    model.export(str(folder), format="tf_saved_model",
                 input_signature=[tf.TensorSpec(shape, tf.float32, name="face")], verbose=False)
    return folder


def convert(saved_model: Path, variant: str, *, calibration: np.ndarray | None = None,
            progress: Callable[[int], None] | None = None) -> bytes:
    """Convert an exported SavedModel (see :func:`export_saved_model`) to TFLite bytes.

    Args:
        saved_model: the folder written by :func:`export_saved_model`.
        variant: one of :data:`VARIANTS`.
        calibration: for ``int8``: prewhitened crops ``(m, 160, 160, 3)`` float32 that set the activation
            ranges; real faces, as the device will see them.
        progress: called with 1 for each calibration sample consumed.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 conversion needs calibration crops")

        def samples() -> Iterator[list[np.ndarray]]:
            for crop in calibration:
                if progress:
                    progress(1)
                yield [crop[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
