"""convert/facenet.py against the real facenet_keras.h5 and the real celebrity photos.

The architecture is compared with the h5's own Keras 2 ``model_config`` layer by layer, every tensor with
the h5 read here independently with h5py, and the loaded network must tell the five people apart on
centre-cropped photos (there is no detector in this test), while the same network with the residual
shortcut dropped (the known broken public rebuild) must do clearly worse.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import keras
import numpy as np
import pytest
from conftest import photo_paths

from convert.facenet import ScaleSum, assign_weights, h5_model_config, load_facenet, read_h5_weights
from edge.core.preprocess import l2_normalize, prewhiten
from edge.errors import WeightsError

CROP_FRACTION = 0.6
"""Side of the centre crop, as a fraction of the photo's shorter side (the photos are uncropped)."""

BATCH = 16

MIN_HITS = 15
"""Of the 25 val photos, how many must have a same-person nearest neighbour (chance: 5)."""


@pytest.fixture(scope="module")
def model(facenet_h5: Path):
    return load_facenet(facenet_h5)


@pytest.fixture(scope="module")
def h5_layers(facenet_h5: Path) -> dict[str, dict]:
    return {layer["name"]: layer for layer in h5_model_config(facenet_h5)["config"]["layers"]}


def _centre_crop(path: Path) -> np.ndarray:
    """The middle square (``CROP_FRACTION`` of the shorter side) of the photo, 160x160x3 uint8 RGB."""
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cannot read {path}"
    h, w = bgr.shape[:2]
    side = int(CROP_FRACTION * min(h, w))
    top, left = (h - side) // 2, (w - side) // 2
    face = cv2.resize(bgr[top:top + side, left:left + side], (160, 160), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def faces(photos_dir: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """``{split: (people, prewhitened crops (m, 160, 160, 3) float32)}`` for train and val."""
    out = {}
    for split in ("train", "val"):
        pairs = photo_paths(photos_dir, split)
        crops = np.stack([_centre_crop(path) for _, path in pairs])
        out[split] = ([person for person, _ in pairs], prewhiten(crops))
    return out


def _eager(model, x: np.ndarray) -> np.ndarray:
    """Encodings by calling the model eagerly (each layer's ``call`` runs, unlike predict's traced graph)."""
    batches = [x[i:i + BATCH] for i in range(0, len(x), BATCH)]
    return np.concatenate([np.asarray(model(batch, training=False)) for batch in batches])


@pytest.fixture(scope="module")
def encodings(model, faces) -> dict[str, tuple[list[str], np.ndarray]]:
    """``{split: (people, L2-normalised encodings (m, 128))}`` of the loaded model."""
    return {split: (people, l2_normalize(model.predict(x, batch_size=BATCH, verbose=0)))
            for split, (people, x) in faces.items()}


def _nearest_hits(query_people, query, ref_people, ref, *, leave_one_out: bool = False) -> int:
    """How many query encodings have a same-person nearest neighbour (L2) among the references."""
    dist = np.linalg.norm(query[:, None] - ref[None], axis=-1)
    if leave_one_out:  # query and references are the same set: a photo may not match itself
        np.fill_diagonal(dist, np.inf)
    return sum(ref_people[i] == person for i, person in zip(dist.argmin(axis=1), query_people, strict=True))


def _mean_distances(people: list[str], enc: np.ndarray) -> tuple[float, float]:
    """Mean L2 distance over all same-person pairs, and over all different-person pairs."""
    dist = np.linalg.norm(enc[:, None] - enc[None], axis=-1)
    upper = np.triu(np.ones(dist.shape, dtype=bool), k=1)
    same = np.array(people)[:, None] == np.array(people)[None]
    return float(dist[same & upper].mean()), float(dist[~same & upper].mean())


def _inbound(node) -> list[str]:
    """Names of the layers feeding a Keras 3 config node (``keras_history`` entries), in argument order."""
    if isinstance(node, dict):
        if "keras_history" in node:
            return [node["keras_history"][0]]
        return [name for value in node.values() for name in _inbound(value)]
    if isinstance(node, list):
        return [name for value in node for name in _inbound(value)]
    return []


_KEY_CONFIG = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation"),
    "BatchNormalization": ("momentum", "epsilon", "center", "scale"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "Dense": ("units", "use_bias", "activation"),
    "Activation": ("activation",),
    "Concatenate": ("axis",),
}


def test_structure_matches_the_h5_model_config(model, h5_layers):
    ours = {layer["name"]: layer for layer in json.loads(json.dumps(model.get_config()))["layers"]}
    assert set(ours) == set(h5_layers)
    assert len(model.layers) == len(h5_layers) == 426
    for name, theirs in h5_layers.items():
        mine, cls = ours[name], theirs["class_name"]
        if cls == "Lambda":
            assert mine["class_name"] == "ScaleSum", name
            assert mine["config"]["scale"] == pytest.approx(theirs["config"]["arguments"]["scale"]), name
        else:
            assert mine["class_name"] == cls, name
        for key in _KEY_CONFIG.get(cls, ()):
            assert mine["config"][key] == theirs["config"][key], f"{name}.{key}"
        if cls == "Dropout":
            assert mine["config"]["rate"] == pytest.approx(theirs["config"]["rate"]), name
        expected = [entry[0] for entry in theirs["inbound_nodes"][0]] if theirs["inbound_nodes"] else []
        assert _inbound(mine["inbound_nodes"]) == expected, name
    assert model.input_shape == (None, 160, 160, 3)
    assert model.output_shape == (None, 128)
    assert model.layers[-1].name == "Bottleneck_BatchNorm"


def test_scale_sum_adds_the_scaled_branch_to_the_shortcut():
    shortcut, branch = np.full((1, 2, 2, 3), 2.0, np.float32), np.full((1, 2, 2, 3), 10.0, np.float32)
    layer = ScaleSum(0.17, name="s")
    np.testing.assert_allclose(np.asarray(layer([shortcut, branch])), 2.0 + 1.7, rtol=1e-6)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, ScaleSum) and clone.scale == pytest.approx(0.17)


def test_every_weight_equals_the_h5_tensor(model, facenet_h5):
    variables = {v.path: v for layer in model.layers for v in layer.weights}
    compared = 0
    with h5py.File(facenet_h5, "r") as h5:
        group = h5["model_weights"]
        for layer_name in group.attrs["layer_names"]:
            layer_name = layer_name.decode()
            for weight_name in group[layer_name].attrs["weight_names"]:
                weight_name = weight_name.decode()  # "<layer>/<weight>:0"
                variable = variables[weight_name.split(":")[0]]
                np.testing.assert_array_equal(np.asarray(variable), group[layer_name][weight_name][()],
                                              err_msg=weight_name)
                compared += 1
    # every h5 tensor matched a distinct variable (paths are unique) and no variable was left over
    assert compared == len(variables) == len(model.weights)


def test_same_person_closer_and_identification_well_above_chance(encodings):
    (train_people, train), (val_people, val) = encodings["train"], encodings["val"]
    hits = _nearest_hits(val_people, val, train_people, train)
    same, different = _mean_distances(train_people + val_people, np.concatenate([train, val]))
    print(f"\ncentre crops: {hits}/{len(val_people)} val photos identified against train; mean L2 distance "
          f"same person {same:.3f}, different people {different:.3f}")
    assert same < different - 0.05
    assert hits >= MIN_HITS  # chance is 5/25; measured 20/25 with these crops


def test_dropping_the_residual_shortcut_is_caught(model, faces, encodings, monkeypatch):
    """The known broken rebuild (``inputs[1] * scale`` only) loads every tensor but must score far worse."""
    people, val = encodings["val"]
    monkeypatch.setattr(ScaleSum, "call", lambda self, inputs: inputs[1] * self.scale)
    broken = l2_normalize(_eager(model, faces["val"][1]))

    good_hits = _nearest_hits(people, val, people, val, leave_one_out=True)
    broken_hits = _nearest_hits(people, broken, people, broken, leave_one_out=True)
    good_same, good_different = _mean_distances(people, val)
    broken_same, broken_different = _mean_distances(people, broken)
    print(f"\nval leave-one-out: {good_hits}/25 identified, without the shortcut {broken_hits}/25; "
          f"same/different distance ratio {good_same / good_different:.3f} vs "
          f"{broken_same / broken_different:.3f}")
    assert broken_hits <= good_hits - 5
    assert broken_hits < MIN_HITS  # the identification floor above would fail too


def test_truncated_h5_is_a_weights_error(facenet_h5, tmp_path):
    truncated = tmp_path / "facenet_keras.h5"
    with open(facenet_h5, "rb") as src:
        truncated.write_bytes(src.read(1 << 20))
    with pytest.raises(WeightsError, match="not a readable HDF5 file"):
        load_facenet(truncated)


def test_missing_h5_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_facenet(tmp_path / "nothing.h5")


def test_mismatched_weights_are_refused_and_leave_the_model_untouched(model, facenet_h5):
    weights = read_h5_weights(facenet_h5)
    before = np.asarray(model.get_layer("Bottleneck").kernel).copy()

    without = {name: tensors for name, tensors in weights.items() if name != "Block17_3_Conv2d_1x1"}
    with pytest.raises(WeightsError, match="Block17_3_Conv2d_1x1"):
        assign_weights(model, without)

    extra = {**weights, "Logits": {"kernel": np.zeros((128, 10), np.float32)}}
    with pytest.raises(WeightsError, match="Logits"):
        assign_weights(model, extra)

    wrong_shape = dict(weights)
    wrong_shape["Bottleneck"] = {"kernel": np.zeros((1792, 64), np.float32)}
    with pytest.raises(WeightsError, match="Bottleneck/kernel"):
        assign_weights(model, wrong_shape)

    no_bias = dict(weights)
    no_bias["Block8_6_Conv2d_1x1"] = {"kernel": weights["Block8_6_Conv2d_1x1"]["kernel"]}
    with pytest.raises(WeightsError, match="Block8_6_Conv2d_1x1"):
        assign_weights(model, no_bias)

    np.testing.assert_array_equal(np.asarray(model.get_layer("Bottleneck").kernel), before)
    assert before.any()

