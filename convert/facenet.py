"""The FaceNet Inception-ResNet-v1 network as Keras 3 code, and its pretrained weights read from the h5.

``weights/facenet_keras.h5`` is a Keras 2.1.2 save whose 21 residual-scaling layers are ``Lambda`` layers
holding Python 3.6 bytecode (``inputs[0] + inputs[1] * scale``), so ``keras.models.load_model`` cannot
read it on a current Python. This module writes the same architecture as code, with the residual scaling
as a serialisable :class:`ScaleSum` layer, and copies every tensor of the h5 onto it by layer name with
h5py, checking names, shapes and counts (nothing is skipped silently).

Network (names equal the h5's layer names): input ``(160, 160, 3)`` float32, RGB, prewhitened pixels;
stem -> 5 x Block35 (scale 0.17) -> Mixed_6a -> 10 x Block17 (0.1) -> Mixed_7a -> 5 x Block8 (0.2) ->
Block8_6 (scale 1.0, no activation) -> global average pool -> dropout 0.2 -> ``Bottleneck`` (dense 128,
no bias) -> ``Bottleneck_BatchNorm``. The output is the raw 128-d encoding, NOT L2-normalised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import keras
import numpy as np

from edge.errors import WeightsError

log = logging.getLogger(__name__)

INPUT_SHAPE = (160, 160, 3)
"""Height, width, channels (RGB) of one face crop."""

EMBEDDING_SIZE = 128

_BN_MOMENTUM = 0.995
_BN_EPSILON = 0.001
_DROPOUT_RATE = 0.2


@keras.saving.register_keras_serializable(package="facegate")
class ScaleSum(keras.layers.Layer):
    """Residual sum ``shortcut + scale * branch`` of two tensors of the same shape.

    Called on ``[shortcut, branch]`` (in that order): the block's input and the output of its closing
    1x1 convolution. Replaces the h5's ``Lambda(lambda inputs, scale: inputs[0] + inputs[1] * scale)``.
    """

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, branch = inputs
        return shortcut + branch * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


class _Conv(NamedTuple):
    """One convolution + batch norm + ReLU unit; ``name`` is the conv's layer name without its prefix."""

    name: str
    filters: int
    kernel_size: int | tuple[int, int]
    strides: int = 1
    padding: str = "same"


def _conv_bn_relu(x, unit: _Conv, *, prefix: str = ""):
    """Conv2D (no bias) -> BatchNorm (no gamma) -> ReLU, named ``<name>``, ``_BatchNorm``, ``_Activation``."""
    name = f"{prefix}{unit.name}"
    x = keras.layers.Conv2D(unit.filters, unit.kernel_size, strides=unit.strides, padding=unit.padding,
                            use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(axis=3, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, scale=False,
                                        name=f"{name}_BatchNorm")(x)
    return keras.layers.Activation("relu", name=f"{name}_Activation")(x)


def _branch(x, units: Sequence[_Conv], *, prefix: str):
    for unit in units:
        x = _conv_bn_relu(x, unit, prefix=prefix)
    return x


def _max_pool(x, *, name: str):
    return keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)


# The branches of the three residual block types: branch i is named "<block>_Branch_<i>_...".
_BLOCK35 = (
    (_Conv("Conv2d_1x1", 32, 1),),
    (_Conv("Conv2d_0a_1x1", 32, 1), _Conv("Conv2d_0b_3x3", 32, 3)),
    (_Conv("Conv2d_0a_1x1", 32, 1), _Conv("Conv2d_0b_3x3", 32, 3), _Conv("Conv2d_0c_3x3", 32, 3)),
)
_BLOCK17 = (
    (_Conv("Conv2d_1x1", 128, 1),),
    (_Conv("Conv2d_0a_1x1", 128, 1), _Conv("Conv2d_0b_1x7", 128, (1, 7)),
     _Conv("Conv2d_0c_7x1", 128, (7, 1))),
)
_BLOCK8 = (
    (_Conv("Conv2d_1x1", 192, 1),),
    (_Conv("Conv2d_0a_1x1", 192, 1), _Conv("Conv2d_0b_1x3", 192, (1, 3)),
     _Conv("Conv2d_0c_3x1", 192, (3, 1))),
)


def _residual_block(x, branches: Sequence[Sequence[_Conv]], *, name: str, scale: float,
                    activate: bool = True):
    """Inception-ResNet block: concatenated branches -> 1x1 "up" conv (with bias) -> ``x + scale * up``."""
    outputs = [_branch(x, units, prefix=f"{name}_Branch_{i}_") for i, units in enumerate(branches)]
    mixed = keras.layers.Concatenate(axis=3, name=f"{name}_Concatenate")(outputs)
    up = keras.layers.Conv2D(x.shape[-1], 1, padding="same", use_bias=True, name=f"{name}_Conv2d_1x1")(mixed)
    x = ScaleSum(scale, name=f"{name}_ScaleSum")([x, up])
    return keras.layers.Activation("relu", name=f"{name}_Activation")(x) if activate else x


def _stem(x):
    """160x160x3 -> 17x17x256."""
    x = _conv_bn_relu(x, _Conv("Conv2d_1a_3x3", 32, 3, strides=2, padding="valid"))
    x = _conv_bn_relu(x, _Conv("Conv2d_2a_3x3", 32, 3, padding="valid"))
    x = _conv_bn_relu(x, _Conv("Conv2d_2b_3x3", 64, 3))
    x = _max_pool(x, name="MaxPool_3a_3x3")
    x = _conv_bn_relu(x, _Conv("Conv2d_3b_1x1", 80, 1, padding="valid"))
    x = _conv_bn_relu(x, _Conv("Conv2d_4a_3x3", 192, 3, padding="valid"))
    return _conv_bn_relu(x, _Conv("Conv2d_4b_3x3", 256, 3, strides=2, padding="valid"))


def _mixed_6a(x):
    """Reduction 17x17x256 -> 8x8x896."""
    name = "Mixed_6a"
    branches = [
        _branch(x, [_Conv("Conv2d_1a_3x3", 384, 3, strides=2, padding="valid")], prefix=f"{name}_Branch_0_"),
        _branch(x, [_Conv("Conv2d_0a_1x1", 192, 1), _Conv("Conv2d_0b_3x3", 192, 3),
                    _Conv("Conv2d_1a_3x3", 256, 3, strides=2, padding="valid")], prefix=f"{name}_Branch_1_"),
        _max_pool(x, name=f"{name}_Branch_2_MaxPool_1a_3x3"),
    ]
    return keras.layers.Concatenate(axis=3, name=name)(branches)


def _mixed_7a(x):
    """Reduction 8x8x896 -> 3x3x1792."""
    name = "Mixed_7a"
    reduce = _Conv("Conv2d_1a_3x3", 256, 3, strides=2, padding="valid")
    branches = [
        _branch(x, [_Conv("Conv2d_0a_1x1", 256, 1), reduce._replace(filters=384)],
                prefix=f"{name}_Branch_0_"),
        _branch(x, [_Conv("Conv2d_0a_1x1", 256, 1), reduce], prefix=f"{name}_Branch_1_"),
        _branch(x, [_Conv("Conv2d_0a_1x1", 256, 1), _Conv("Conv2d_0b_3x3", 256, 3), reduce],
                prefix=f"{name}_Branch_2_"),
        _max_pool(x, name=f"{name}_Branch_3_MaxPool_1a_3x3"),
    ]
    return keras.layers.Concatenate(axis=3, name=name)(branches)


def build_facenet(*, input_shape: tuple[int, int, int] = INPUT_SHAPE,
                  name: str = "inception_resnet_v1") -> keras.Model:
    """The untrained network: ``(m, 160, 160, 3)`` float32 prewhitened RGB -> ``(m, 128)`` raw encodings."""
    inputs = keras.Input(shape=input_shape, name="input_1")
    x = _stem(inputs)
    for i in range(1, 6):
        x = _residual_block(x, _BLOCK35, name=f"Block35_{i}", scale=0.17)
    x = _mixed_6a(x)
    for i in range(1, 11):
        x = _residual_block(x, _BLOCK17, name=f"Block17_{i}", scale=0.1)
    x = _mixed_7a(x)
    for i in range(1, 6):
        x = _residual_block(x, _BLOCK8, name=f"Block8_{i}", scale=0.2)
    x = _residual_block(x, _BLOCK8, name="Block8_6", scale=1.0, activate=False)
    x = keras.layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = keras.layers.Dropout(_DROPOUT_RATE, name="Dropout")(x)
    x = keras.layers.Dense(EMBEDDING_SIZE, use_bias=False, name="Bottleneck")(x)
    outputs = keras.layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, scale=False,
                                              name="Bottleneck_BatchNorm")(x)
    return keras.Model(inputs, outputs, name=name)


def _open_h5(h5_path: str | Path) -> h5py.File:
    path = Path(h5_path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist: fetch facenet_keras.h5 first ('facegate-convert fetch')")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise WeightsError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {err}") from err


def h5_model_config(h5_path: str | Path) -> dict:
    """The Keras 2 architecture saved in the h5 (its root ``model_config`` attribute), as a dict."""
    with _open_h5(h5_path) as h5:
        try:
            return json.loads(h5.attrs["model_config"])
        except (KeyError, OSError, ValueError) as err:
            raise WeightsError(f"{h5_path} holds no readable Keras model_config: {err}") from err


def _text(value) -> str:
    """An h5 attribute string (``bytes`` in files written by Keras 2) as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _short_name(weight_name: str) -> str:
    """``'Block35_1_Conv2d_1x1/kernel:0'`` -> ``'kernel'``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def read_h5_weights(h5_path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Every weighted layer of the h5: ``{layer name: {weight name ('kernel', 'beta', ...): array}}``."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    with _open_h5(h5_path) as h5:
        try:
            group = h5["model_weights"]
            for raw_layer in group.attrs["layer_names"]:
                layer = _text(raw_layer)
                names = [_text(n) for n in group[layer].attrs["weight_names"]]
                if names:
                    weights[layer] = {_short_name(n): np.asarray(group[layer][n]) for n in names}
                    if len(weights[layer]) != len(names):
                        raise WeightsError(f"{h5_path}: layer {layer} repeats a weight name: {names}")
        except WeightsError:  # an OSError too: not to be re-worded below
            raise
        except (KeyError, OSError) as err:
            raise WeightsError(f"{h5_path} is not a readable Keras weights file: {err}") from err
    return weights


def assign_weights(model: keras.Model, weights: dict[str, dict[str, np.ndarray]], *,
                   source: str = "h5") -> int:
    """Copy ``weights`` (as from :func:`read_h5_weights`) onto ``model`` by layer and weight name.

    Raises :class:`WeightsError` unless every weighted layer of the model gets exactly its tensors (same
    names, same shapes) and every layer of ``weights`` exists in the model; on failure nothing is
    assigned. Returns the number of tensors copied.
    """
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    extra = sorted(set(weights) - set(weighted))
    missing = sorted(set(weighted) - set(weights))
    if extra or missing:
        raise WeightsError(f"{source} does not match the network: {len(extra)} layers only in the file "
                           f"{extra[:5]}, {len(missing)} weighted layers missing from it {missing[:5]}")
    pairs = []
    for name, layer in weighted.items():
        tensors = weights[name]
        wanted = {v.name: v for v in layer.weights}
        if set(wanted) != set(tensors) or len(wanted) != len(layer.weights):
            raise WeightsError(f"{source}: layer {name} has weights {sorted(tensors)}, "
                               f"the network wants {[v.name for v in layer.weights]}")
        for weight_name, variable in wanted.items():
            value = tensors[weight_name]
            if tuple(value.shape) != tuple(variable.shape):
                raise WeightsError(f"{source}: {name}/{weight_name} has shape {value.shape}, "
                                   f"the network wants {tuple(variable.shape)}")
            pairs.append((variable, value))
    for variable, value in pairs:  # only once everything matched: a failure leaves the model untouched
        variable.assign(value.astype(variable.dtype, copy=False))
    return len(pairs)


def load_facenet(h5_path: str | Path) -> keras.Model:
    """The pretrained FaceNet: :func:`build_facenet` with every tensor of ``h5_path`` loaded and verified.

    The model is frozen (``trainable = False``: batch norm always uses its moving statistics) for
    inference; set ``model.trainable = True`` to fine-tune. Input ``(m, 160, 160, 3)`` float32
    prewhitened RGB; output ``(m, 128)`` float32 raw encodings (callers L2-normalise).
    """
    weights = read_h5_weights(h5_path)
    model = build_facenet()
    count = assign_weights(model, weights, source=str(h5_path))
    model.trainable = False
    log.info("loaded %s tensors of %s layers from %s", count, len(weights), h5_path)
    return model
