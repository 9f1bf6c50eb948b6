"""Distances, error rates and thresholds on hand-made numbers, against plain loops."""

from __future__ import annotations

import numpy as np
import pytest

from edge.eval.metrics import (
    equal_error_rate,
    error_curve,
    identify_nearest,
    open_set_distances,
    pair_distances,
    pairwise_distances,
    rates_at,
    threshold_for_far,
)


def test_pairwise_distances_equal_a_loop_of_norms():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((7, 16)), rng.standard_normal((5, 16))
    loop = np.array([[np.linalg.norm(x - y) for y in b] for x in a])
    np.testing.assert_allclose(pairwise_distances(a, b), loop, atol=1e-9)


def test_pair_distances_split_genuine_and_impostor_once_per_pair():
    enc = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 4.0]])
    genuine, impostor = pair_distances(enc, ["a", "a", "b", "b"])
    assert sorted(genuine) == [1.0, 4.0]
    assert sorted(np.round(impostor, 6)) == sorted(np.round([3.0, 5.0, np.sqrt(10), np.sqrt(18)], 6))


def test_rates_at_a_threshold():
    genuine = np.array([0.1, 0.2, 0.9])
    impostor = np.array([0.5, 1.0, 1.5, 2.0])
    r = rates_at(genuine, impostor, 0.6)
    assert r.far == pytest.approx(0.25)  # 0.5 accepted
    assert r.frr == pytest.approx(1 / 3)  # 0.9 rejected


def test_equal_error_rate_of_separable_and_overlapping_sets():
    assert equal_error_rate(np.array([0.1, 0.2]), np.array([0.8, 0.9])).far == 0.0
    # genuine 0.1..1.0, impostor 0.55..1.45: at t=0.8 FRR = 3/10, FAR = 3/10
    genuine = np.linspace(0.1, 1.0, 10)
    impostor = np.linspace(0.55, 1.45, 10)
    eer = equal_error_rate(genuine, impostor)
    assert eer.far == pytest.approx(0.3)
    assert rates_at(genuine, impostor, eer.threshold).far == pytest.approx(0.3)


def test_threshold_for_far_never_exceeds_the_target_and_is_the_largest_such():
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(0.8, 0.15, 400), rng.normal(1.3, 0.1, 2000)
    for target in (0.0, 0.001, 0.01, 0.1):
        op = threshold_for_far(genuine, impostor, target)
        assert op.far <= target
        assert np.mean(impostor <= op.threshold) <= target  # who_is_it's rule: accept if d <= t
        assert rates_at(genuine, impostor, op.threshold + 0.0011).far > target  # at most 0.001 below the best
        assert op.threshold == round(op.threshold, 3)


def test_open_set_distances_leave_each_photo_out():
    enc = np.array([[0.0], [1.0], [5.0], [7.0], [20.0]])
    genuine, stranger = open_set_distances(enc, ["a", "a", "b", "b", "c"])
    assert sorted(genuine) == [1.0, 1.0, 2.0, 2.0]  # c has no other photo
    np.testing.assert_allclose(stranger, [5.0, 4.0, 4.0, 6.0, 13.0])


def test_identify_nearest():
    gallery = np.array([[0.0, 0.0], [10.0, 0.0]])
    labels, dist = identify_nearest(np.array([[1.0, 0.0], [9.0, 1.0]]), gallery, ["near", "far"])
    assert labels == ["near", "far"]
    np.testing.assert_allclose(dist, [1.0, np.sqrt(2)])


def test_error_curve_matches_rates_at():
    genuine = np.array([0.3, 0.5, 0.5, 0.9])
    impostor = np.array([0.6, 1.0, 1.2])
    thresholds, far, frr = error_curve(genuine, impostor)
    assert thresholds[0] == 0.0 and far[0] == 0.0 and frr[0] == 1.0
    assert far[-1] == 1.0 and frr[-1] == 0.0
    assert np.all(np.diff(thresholds) > 0) and np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)
    for t, a, r in zip(thresholds, far, frr, strict=True):
        expected = rates_at(genuine, impostor, t)
        assert (a, r) == pytest.approx((expected.far, expected.frr))


def test_error_curve_of_no_distances_is_the_accept_nothing_point():
    thresholds, far, frr = error_curve(np.array([]), np.array([]))
    assert (list(thresholds), list(far), list(frr)) == ([0.0], [0.0], [1.0])
