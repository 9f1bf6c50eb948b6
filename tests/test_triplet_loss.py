"""The triplet loss against hand-worked cases, a numpy reference, its gradient and Keras' own plumbing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from convert.loss import TripletLoss, split_triplets, triplet_loss, triplet_terms


def numpy_triplet_loss(anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray, alpha: float) -> float:
    """Independent reference, in float64: the spec's formula written with numpy."""
    a, p, n = (np.asarray(x, dtype=np.float64) for x in (anchor, positive, negative))
    pos_dist = ((a - p) ** 2).sum(axis=1)
    neg_dist = ((a - n) ** 2).sum(axis=1)
    return float(np.maximum(pos_dist - neg_dist + alpha, 0.0).sum())


def _value(tensor) -> float:
    return float(np.asarray(tensor))


def test_hand_computed_two_triplets():
    # Triplet 1: A=(0,0) P=(1,0) N=(2,0): pos = 1, neg = 4   -> max(1 - 4 + 0.2, 0) = 0
    # Triplet 2: A=(1,1) P=(2,3) N=(1,2): pos = 1 + 4 = 5, neg = 0 + 1 = 1 -> max(5 - 1 + 0.2, 0) = 4.2
    # J = 0 + 4.2 = 4.2 (a sum: the mean would be 2.1)
    anchor = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    positive = tf.constant([[1.0, 0.0], [2.0, 3.0]])
    negative = tf.constant([[2.0, 0.0], [1.0, 2.0]])
    assert _value(triplet_loss(None, [anchor, positive, negative])) == pytest.approx(4.2, abs=1e-6)
    np.testing.assert_allclose(triplet_terms(anchor, positive, negative, alpha=0.2), [0.0, 4.2], atol=1e-6)


def test_hand_computed_sum_over_examples_not_mean():
    # Three copies of A=(0,0,0) P=(0,0,1) N=(0,0,0): pos = 1, neg = 0 -> 1.2 each; J = 3 * 1.2 = 3.6
    anchor = np.zeros((3, 3), np.float32)
    positive = np.tile(np.array([[0.0, 0.0, 1.0]], np.float32), (3, 1))
    negative = np.zeros((3, 3), np.float32)
    assert _value(triplet_loss(None, (anchor, positive, negative))) == pytest.approx(3.6, abs=1e-6)


def test_course_check_matches_numpy_reference():
    # The course's check (its TF1 expected value was 528.143): TF2's random numbers differ from TF1's,
    # so the value is compared with the numpy reference on the same numbers instead.
    tf.random.set_seed(1)
    y_pred = (
        tf.random.normal([3, 128], mean=6, stddev=0.1, seed=1),
        tf.random.normal([3, 128], mean=1, stddev=1, seed=1),
        tf.random.normal([3, 128], mean=3, stddev=4, seed=1),
    )
    loss = _value(triplet_loss(None, y_pred))
    expected = numpy_triplet_loss(*(t.numpy() for t in y_pred), alpha=0.2)
    print(f"course check (TF2 random numbers): J = {loss:.4f} (TF1 course value 528.143)")
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss > 0  # the course's case has active triplets: the hinge is not trivially zero


@pytest.mark.parametrize("m", [1, 2, 7, 64])
def test_random_inputs_match_numpy_reference(m):
    rng = np.random.default_rng(m)
    a, p, n = (rng.normal(size=(m, 128)).astype(np.float32) for _ in range(3))
    # A tight, a loose and a normal margin exercise both sides of the hinge.
    for alpha in (0.0, 0.2, 50.0):
        expected = numpy_triplet_loss(a, p, n, alpha)
        assert _value(triplet_loss(None, [a, p, n], alpha=alpha)) == pytest.approx(expected, rel=1e-5)


def test_zero_when_negatives_are_far():
    rng = np.random.default_rng(0)
    anchor = rng.normal(size=(5, 128)).astype(np.float32)
    positive = anchor + 0.01 * rng.normal(size=(5, 128)).astype(np.float32)
    negative = anchor + 10.0
    assert _value(triplet_loss(None, [anchor, positive, negative])) == 0.0


def test_alpha_is_respected():
    # A = P = N: pos = neg = 0, so every term is exactly alpha and J = m * alpha.
    x = np.ones((4, 128), np.float32)
    assert _value(triplet_loss(None, [x, x, x], alpha=0.2)) == pytest.approx(0.8, abs=1e-6)
    assert _value(triplet_loss(None, [x, x, x], alpha=0.5)) == pytest.approx(2.0, abs=1e-6)
    assert _value(triplet_loss(None, [x, x, x], alpha=0.0)) == 0.0
    assert _value(TripletLoss(alpha=0.5)(np.zeros(4), np.ones((4, 384), np.float32))) == pytest.approx(2.0)


def test_gradient_step_pulls_positive_in_and_pushes_negative_out():
    rng = np.random.default_rng(3)
    anchor = tf.Variable(rng.normal(size=(4, 128)).astype(np.float32))
    positive = tf.Variable(rng.normal(size=(4, 128)).astype(np.float32))
    negative = tf.Variable(rng.normal(size=(4, 128)).astype(np.float32))

    def distances():
        return (
            np.sum((anchor.numpy() - positive.numpy()) ** 2, axis=1),
            np.sum((anchor.numpy() - negative.numpy()) ** 2, axis=1),
        )

    pos_before, neg_before = distances()
    with tf.GradientTape() as tape:
        loss = triplet_loss(None, [anchor, positive, negative])
    grads = tape.gradient(loss, [anchor, positive, negative])
    terms = triplet_terms(anchor, positive, negative).numpy()
    for var, grad in zip((anchor, positive, negative), grads, strict=True):
        var.assign_sub(0.01 * grad)
    pos_after, neg_after = distances()
    active = terms > 0
    assert active.any(), "the random triplets should include at least one with a positive loss"
    assert np.all(pos_after[active] < pos_before[active])
    assert np.all(neg_after[active] > neg_before[active])
    # Inactive triplets get no gradient at all: they do not move.
    np.testing.assert_array_equal(pos_after[~active], pos_before[~active])
    assert _value(triplet_loss(None, [anchor, positive, negative])) < _value(loss)


def test_keras_form_equals_function():
    rng = np.random.default_rng(5)
    a, p, n = (rng.normal(size=(6, 128)).astype(np.float32) for _ in range(3))
    expected = _value(triplet_loss(None, [a, p, n]))
    got = _value(TripletLoss()(np.zeros(6, np.float32), np.concatenate([a, p, n], axis=-1)))
    assert got == pytest.approx(expected, rel=1e-6)
    anchor, positive, negative = split_triplets(np.concatenate([a, p, n], axis=-1))
    np.testing.assert_array_equal(positive.numpy(), p)


def test_keras_form_in_compiled_model():
    # A tiny "encoder" shared by three inputs, its three outputs concatenated: (m, 3 * 8).
    keras.utils.set_random_seed(0)
    dim, m = 8, 5
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(dim)])
    inputs = [keras.Input((4,), name=name) for name in ("anchor", "positive", "negative")]
    outputs = keras.layers.Concatenate(axis=-1)([encoder(x) for x in inputs])
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=TripletLoss(alpha=0.2))

    rng = np.random.default_rng(7)
    x = [rng.normal(size=(m, 4)).astype(np.float32) for _ in range(3)]
    y_dummy = np.zeros((m, 1), np.float32)

    def expected_j() -> float:
        a, p, n = (encoder.predict(xi, verbose=0) for xi in x)
        return numpy_triplet_loss(a, p, n, alpha=0.2)

    before = expected_j()
    assert before > 0
    assert model.evaluate(x, y_dummy, batch_size=m, verbose=0) == pytest.approx(before, rel=1e-5)
    # train_on_batch reports the loss computed before its update step.
    assert model.train_on_batch(x, y_dummy) == pytest.approx(before, rel=1e-5)
    after = expected_j()
    assert model.evaluate(x, y_dummy, batch_size=m, verbose=0) == pytest.approx(after, rel=1e-5)
    assert after < before


def test_keras_form_serialises(tmp_path):
    loss = TripletLoss(alpha=0.35)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, TripletLoss)
    assert restored.alpha == 0.35 and restored.reduction == "sum"

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(6)])
    model.compile(optimizer="sgd", loss=loss)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.loss, TripletLoss) and reloaded.loss.alpha == 0.35


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="3\\*d"):
        TripletLoss()(np.zeros(2), np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="anchor, positive, negative"):
        triplet_loss(None, np.zeros((2, 384), np.float32))
    with pytest.raises(ValueError, match="one shape"):
        triplet_loss(None, [np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 5))])
    with pytest.raises(ValueError, match="alpha"):
        TripletLoss(alpha=-1)
