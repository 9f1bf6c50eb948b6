"""The 1:N decision for people the threshold never saw: one template per person, and a threshold derived from
how close strangers come to *these* templates, for a target false-accept rate at *this* many people.

Why: a stranger at the door is compared with every enrolled person at once and gets in if any comparison is
close enough, so the chance grows with the size of the gallery: ``FPIR ~ 1 - (1 - FMR)^N`` for ``N`` people and
a per-comparison false-match rate ``FMR``. A fixed threshold that was safe for five people is not for fifty.

The rule (measured on the development photos, see the README's "Strangers" section):

* **Templates**: each person is the mean of their L2-normalised encodings, normalised again (a person with
  twelve photos is one comparison, not twelve). On the development set this alone cut the strangers let in
  from 9.2% to 1.3% at the same threshold, with no enrolled person lost.
* **Threshold**: every model build ships *reference strangers* (encodings of 305 public portraits of people
  who are nobody enrolled; :meth:`edge.core.modelcard.ModelCard.reference_strangers`). Their distances to the
  templates in force are the per-comparison impostor scores; the threshold is the largest distance (rounded
  down to 3 decimals) that lets at most ``FMR * R * N`` of those ``R * N`` comparisons in, where
  ``FMR = 1 - (1 - target) ** (1 / N)``. It tightens by itself as people are enrolled, never exceeds the model
  card's threshold, and says where it came from. With ``R * N`` comparisons no FMR below ``1 / (R * N)`` can
  be told from zero: the threshold then lets none of them in, and :attr:`Threshold.note` says so.

Distances are L2 between unit vectors (0..2); a match is accepted at ``distance <= threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.core.gallery import database_matrix
from edge.errors import ModelCardError

#: Default share of strangers the door may let in (per stranger who tries, over all enrolled people).
DEFAULT_TARGET_FPIR = 0.005


def templates(names: Sequence[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    """One template per person: the mean of their rows of ``matrix`` ``(n, d)``, L2-normalised.

    Returns ``(people, (N, d) float32)`` in order of first appearance; an empty input gives ``([], (0, d))``.
    """
    order: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        order.setdefault(name, []).append(i)
    width = matrix.shape[1] if matrix.ndim == 2 else 0
    if not order:
        return [], np.empty((0, width), np.float32)
    rows = np.stack([np.asarray(matrix[idx], np.float64).mean(axis=0) for idx in order.values()])
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return list(order), rows.astype(np.float32)


@dataclass(frozen=True)
class Threshold:
    """The 1:N threshold in force and where it came from (``source``: ``"reference strangers"``, ``"config"``
    or ``"model card"``), with the figures behind it; ``as_dict()`` for events and JSON output."""

    value: float
    source: str
    target_fpir: float | None
    people: int
    comparisons: int
    card_value: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"value": round(self.value, 4), "source": self.source, "target_fpir": self.target_fpir,
                "people": self.people, "comparisons": self.comparisons, "card_value": self.card_value,
                "note": self.note}

    def describe(self) -> str:
        """One line for a terminal: ``threshold 0.987 (reference strangers: ... )``."""
        if self.source == "reference strangers":
            why = (f"{self.source}: FPIR target {100 * (self.target_fpir or 0):g}% at {self.people} people, "
                   f"{self.comparisons} stranger comparisons; card {self.card_value:.3f}")
        else:
            why = self.source
        return f"threshold {self.value:.3f} ({why})" + (f"; {self.note}" if self.note else "")


def derive_threshold(people: np.ndarray, strangers: np.ndarray | None, *, card_threshold: float,
                     target_fpir: float = DEFAULT_TARGET_FPIR, override: float | None = None) -> Threshold:
    """The threshold for ``people`` templates ``(N, d)`` (see the module docstring).

    Args:
        people: the enrolled templates, L2-normalised rows.
        strangers: the reference strangers ``(R, d)`` of the model, or ``None`` when its card has none.
        card_threshold: the model card's threshold: the ceiling, and the value without reference strangers.
        target_fpir: the share of strangers (0..1) the door may let in.
        override: a threshold set by the site's config: used as it is.
    """
    n = len(people)
    if override is not None:
        return Threshold(float(override), "config", None, n, 0, card_threshold)
    if strangers is None or len(strangers) == 0:
        return Threshold(card_threshold, "model card", None, n, 0,
                         card_threshold, "the model has no reference strangers: the card's threshold is used")
    if n == 0:
        return Threshold(card_threshold, "model card", target_fpir, 0, 0, card_threshold, "nobody is enrolled")
    scores = np.sort(_distances(np.asarray(strangers, np.float32), np.asarray(people, np.float32)).ravel())
    fmr = 1.0 - (1.0 - target_fpir) ** (1.0 / n)
    allowed = int(math.floor(fmr * len(scores)))
    # just below the first comparison that must be refused, rounded down to 3 decimals (as the card's threshold
    # is): distances computed another way differ in the last float32 digits, and a readable value
    value = math.floor(float(np.nextafter(scores[min(allowed, len(scores) - 1)], -np.inf)) * 1000.0) / 1000.0
    note = ""
    if allowed == 0:
        note = (f"{len(scores)} stranger comparisons cannot show a false-match rate of {fmr:.1e}: the threshold "
                "lets none of them in")
    if value > card_threshold:
        value, note = card_threshold, "capped at the model card's threshold"
    return Threshold(value, "reference strangers", target_fpir, n, len(scores), card_threshold, note)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distances ``(len(a), len(b))`` between unit-vector rows (``|x - y|^2 = 2 - 2 x.y``)."""
    return np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("id,jd->ij", a, b), 0.0))


class OpenSetGallery:
    """The templates of a database (a store), kept up to date, and the threshold in force for them.

    Pass it wherever a database goes (:meth:`matrix` gives the templates, so the face pipeline's search stage
    compares with templates). The templates and the threshold are recomputed only when the database's
    encodings change (a store returns the same cached matrix until its file changes).

    Args:
        database: an :class:`edge.storage.store.EncodingStore`, a mapping, anything with ``matrix()``.
        strangers: the model's reference strangers ``(R, d)``, or ``None``.
        card_threshold, target_fpir, override: as :func:`derive_threshold` takes them.
    """

    def __init__(self, database: Any, *, strangers: np.ndarray | None, card_threshold: float,
                 target_fpir: float = DEFAULT_TARGET_FPIR, override: float | None = None):
        self.database = database
        self.strangers = strangers
        self.card_threshold = card_threshold
        self.target_fpir = target_fpir
        self.override = override
        self._source: np.ndarray | None = None
        self._templates: tuple[list[str], np.ndarray] = ([], np.empty((0, 0), np.float32))
        self._threshold: Threshold | None = None

    @classmethod
    def for_card(cls, database: Any, card: Any, *, target_fpir: float = DEFAULT_TARGET_FPIR,
                 override: float | None = None) -> OpenSetGallery:
        """The gallery of ``database`` for the model of ``card`` (an :class:`edge.core.modelcard.ModelCard`): its
        reference strangers and its threshold as the ceiling."""
        ceiling = card.threshold if card.threshold is not None else override
        if ceiling is None:
            raise ModelCardError(f"{card.path.name} records no threshold: pass one")
        return cls(database, strangers=card.reference_strangers(), card_threshold=float(ceiling),
                   target_fpir=target_fpir, override=override)

    def _refresh(self) -> None:
        names, matrix = database_matrix(self.database)
        if self._threshold is not None and matrix is self._source:
            return
        self._source = matrix
        self._templates = templates(names, matrix)
        self._threshold = derive_threshold(self._templates[1], self.strangers, card_threshold=self.card_threshold,
                                           target_fpir=self.target_fpir, override=self.override)

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """``(people, (N, d) templates)``."""
        self._refresh()
        return self._templates

    @property
    def threshold(self) -> Threshold:
        """The threshold in force for the templates as they are now."""
        self._refresh()
        assert self._threshold is not None
        return self._threshold

    def accepts(self, distance: float | None) -> bool:
        """Whether a match at ``distance`` to the nearest template is close enough (``<=`` the threshold)."""
        return distance is not None and distance <= self.threshold.value
