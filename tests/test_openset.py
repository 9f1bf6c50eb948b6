"""The 1:N rule for strangers: templates, and a threshold derived for a target FPIR at the gallery's size.

Made-up unit vectors in a few dimensions (so that strangers do come close), checked against what the rule
promises: the share of *other* strangers let in stays near the target, the threshold tightens as people are
enrolled, it never exceeds the card's, and it is recomputed only when the encodings change.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.core.gallery import nearest
from edge.core.openset import OpenSetGallery, derive_threshold, templates


def unit(rng: np.random.Generator, n: int, d: int = 6) -> np.ndarray:
    v = rng.standard_normal((n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_templates_are_normalised_means_in_first_seen_order():
    matrix = np.array([[1, 0], [0, 1], [1, 0], [-1, 0]], np.float32)
    people, rows = templates(["b", "a", "b", "c"], matrix)
    assert people == ["b", "a", "c"]
    np.testing.assert_allclose(rows, [[1, 0], [0, 1], [-1, 0]], atol=1e-6)
    people, rows = templates(["a", "a"], np.array([[1, 0], [0, 1]], np.float32))
    np.testing.assert_allclose(rows, [[2 ** -0.5, 2 ** -0.5]], atol=1e-6)
    assert templates([], np.empty((0, 4), np.float32))[1].shape == (0, 4)


@pytest.mark.parametrize("target", [0.02, 0.05, 0.2])
def test_the_share_of_new_strangers_let_in_is_near_the_target(target):
    """Reference strangers set the threshold; 20,000 other strangers from the same population then test it."""
    rng = np.random.default_rng(1)
    people = unit(rng, 8)
    th = derive_threshold(people, unit(rng, 3000), card_threshold=2.0, target_fpir=target)
    fresh = unit(rng, 20_000)
    let_in = np.mean([nearest(s, list(range(8)), people)[0] <= th.value for s in fresh])
    assert th.source == "reference strangers" and th.people == 8 and th.comparisons == 24_000
    assert target * 0.7 <= let_in <= target * 1.3, (let_in, th)


def test_the_threshold_tightens_as_the_gallery_grows_and_never_exceeds_the_card():
    rng = np.random.default_rng(2)
    strangers, everyone = unit(rng, 2000), unit(rng, 64)
    values = [derive_threshold(everyone[:n], strangers, card_threshold=2.0, target_fpir=0.05).value
              for n in (1, 4, 16, 64)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    capped = derive_threshold(everyone[:1], strangers, card_threshold=0.5, target_fpir=0.05)
    assert capped.value == 0.5 and "capped" in capped.note


def test_at_most_the_allowed_comparisons_are_accepted():
    rng = np.random.default_rng(3)
    people, strangers = unit(rng, 5), unit(rng, 400)
    th = derive_threshold(people, strangers, card_threshold=2.0, target_fpir=0.01)
    d = np.sqrt(np.maximum(2 - 2 * strangers @ people.T, 0))
    allowed = int((1 - (1 - 0.01) ** (1 / 5)) * d.size)
    assert (d <= th.value).sum() <= allowed < (d <= np.nextafter(th.value, 3)).sum() + 1


def test_too_few_comparisons_let_none_in_and_say_so():
    rng = np.random.default_rng(4)
    people, strangers = unit(rng, 2), unit(rng, 30)
    th = derive_threshold(people, strangers, card_threshold=2.0, target_fpir=0.001)
    d = np.sqrt(np.maximum(2 - 2 * strangers @ people.T, 0))
    assert (d <= th.value).sum() == 0 and "cannot show" in th.note


def test_without_reference_strangers_or_with_an_override():
    rng = np.random.default_rng(5)
    people = unit(rng, 3)
    assert derive_threshold(people, None, card_threshold=1.05).as_dict()["source"] == "model card"
    th = derive_threshold(people, unit(rng, 50), card_threshold=1.05, override=0.8)
    assert (th.value, th.source) == (0.8, "config")
    empty = derive_threshold(np.empty((0, 6), np.float32), unit(rng, 50), card_threshold=1.05)
    assert (empty.value, empty.source, empty.note) == (1.05, "model card", "nobody is enrolled")


class CountingStore:
    """A database whose matrix() returns one cached array until it is changed, as the encoding store does."""

    def __init__(self, names, matrix):
        self.names, self._matrix, self.calls = names, matrix, 0

    def matrix(self):
        self.calls += 1
        return self.names, self._matrix

    def change(self, names, matrix):
        self.names, self._matrix = names, matrix


def test_the_gallery_recomputes_only_when_the_encodings_change(monkeypatch):
    import edge.core.openset as openset

    rng = np.random.default_rng(6)
    store = CountingStore(["a", "a", "b"], unit(rng, 3))
    gallery = OpenSetGallery(store, strangers=unit(rng, 500), card_threshold=2.0, target_fpir=0.05)
    derived = []
    real = openset.derive_threshold
    monkeypatch.setattr(openset, "derive_threshold", lambda *a, **k: derived.append(1) or real(*a, **k))
    first = gallery.threshold
    assert gallery.matrix()[0] == ["a", "b"] and gallery.threshold == first and len(derived) == 1
    store.change(["a", "b", "c", "d"], unit(rng, 4))  # someone enrolled: a new matrix object
    assert gallery.threshold.people == 4 and len(derived) == 2
