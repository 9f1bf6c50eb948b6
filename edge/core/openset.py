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
* **Site calibration** (``facegate calibrate --site``): the same rule on the site's own strangers (the reference
  strangers, every enrolled person left out in turn against the others' templates, photos of local strangers),
  stored in the store with :func:`people_key` of the people it was made for. A gallery uses it only while the
  store still holds those people with those encodings, made by the same model (:func:`site_threshold`);
  otherwise it falls back to the reference strangers and says why in :attr:`Threshold.note`.

Precedence: a config override, else the site calibration, else the reference strangers, else the model card.

Distances are L2 between unit vectors (0..2); a match is accepted at ``distance <= threshold``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge.core.gallery import database_matrix
from edge.errors import ModelCardError

#: Default share of strangers the door may let in (per stranger who tries, over all enrolled people).
DEFAULT_TARGET_FPIR = 0.005

#: :attr:`Threshold.source` of a threshold from the store's site calibration.
SITE_CALIBRATION = "site calibration"


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


def people_key(names: Sequence[str]) -> str:
    """Who is enrolled, as a fingerprint: the hex sha256 of the sorted ``(name, encodings)`` pairs, ``names``
    holding one entry per stored encoding (the names of :func:`edge.core.gallery.database_matrix`). It changes
    when anyone is enrolled, removed or renamed, or an encoding is added or removed."""
    pairs = sorted(Counter(names).items())
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Threshold:
    """The 1:N threshold in force and where it came from (``source``: ``"config"``, ``"site calibration"``,
    ``"reference strangers"`` or ``"model card"``), with the figures behind it (``site``: the site calibration's
    record); ``as_dict()`` for events and JSON output."""

    value: float
    source: str
    target_fpir: float | None
    people: int
    comparisons: int
    card_value: float
    note: str = ""
    #: the site calibration record in force (``source == "site calibration"``), else ``None``
    site: Mapping[str, Any] | None = field(default=None, hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {"value": round(self.value, 4), "source": self.source, "target_fpir": self.target_fpir,
                "people": self.people, "comparisons": self.comparisons, "card_value": self.card_value,
                "note": self.note, "site_calibration": None if self.site is None else dict(self.site)}

    def describe(self) -> str:
        """One line for a terminal: ``threshold 0.987 (reference strangers: ... )``."""
        target = f"FPIR target {100 * (self.target_fpir or 0):g}% at {self.people} people"
        if self.source == "reference strangers":
            why = f"{self.source}: {target}, {self.comparisons} stranger comparisons; card {self.card_value:.3f}"
        elif self.source == SITE_CALIBRATION and self.site is not None:
            groups = self.site.get("strangers", {})
            fnir = self.site.get("fnir", {})
            why = (f"{self.source} of {_date(self.site)}: {target}, {self.comparisons} stranger comparisons "
                   f"({groups.get('reference', 0)} reference, {groups.get('left_out_people', 0)} left-out "
                   f"encodings, {groups.get('folder', 0)} folder faces); leave-one-out FNIR "
                   f"{fnir.get('count', '?')}/{fnir.get('total', '?')}; card {self.card_value:.3f}")
        else:
            why = self.source
        return f"threshold {self.value:.3f} ({why})" + (f"; {self.note}" if self.note else "")


def derive_threshold(people: np.ndarray, strangers: np.ndarray | None, *, card_threshold: float,
                     target_fpir: float = DEFAULT_TARGET_FPIR, override: float | None = None,
                     exclude: np.ndarray | None = None) -> Threshold:
    """The threshold for ``people`` templates ``(N, d)`` (see the module docstring).

    Args:
        people: the enrolled templates, L2-normalised rows.
        strangers: the reference strangers ``(R, d)`` of the model, or ``None`` when its card has none. A site
            calibration passes all its strangers at once, so that their comparisons are pooled.
        card_threshold: the model card's threshold: the ceiling, and the value without reference strangers.
        target_fpir: the share of strangers (0..1) the door may let in.
        override: a threshold set by the site's config: used as it is.
        exclude: ``(R,)`` integers: for each stranger, the template it is *not* compared with (an enrolled person
            left out as a stranger: their own), or -1; default none (every stranger against every template).
    """
    n = len(people)
    if override is not None:
        return Threshold(float(override), "config", None, n, 0, card_threshold)
    if strangers is None or len(strangers) == 0:
        return Threshold(card_threshold, "model card", None, n, 0,
                         card_threshold, "the model has no reference strangers: the card's threshold is used")
    if n == 0:
        return Threshold(card_threshold, "model card", target_fpir, 0, 0, card_threshold, "nobody is enrolled")
    distances = stranger_distances(strangers, people, exclude)
    scores = np.sort(distances[np.isfinite(distances)])
    if len(scores) == 0:
        return Threshold(card_threshold, "model card", target_fpir, n, 0, card_threshold,
                         "no stranger was compared with anyone: the card's threshold is used")
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


def stranger_distances(strangers: np.ndarray, people: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """L2 distances ``(R, N)`` of ``strangers`` to the ``people`` templates; where ``exclude[i] >= 0`` (see
    :func:`derive_threshold`), ``inf`` in column ``exclude[i]`` of row ``i``: that comparison is not made."""
    distances = _distances(np.asarray(strangers, np.float32), np.asarray(people, np.float32))
    if exclude is not None:
        skip = np.asarray(exclude, np.int64).reshape(-1)
        if len(skip) != len(distances):
            raise ValueError(f"exclude has {len(skip)} entries for {len(distances)} strangers")
        rows = np.flatnonzero(skip >= 0)
        distances[rows, skip[rows]] = np.inf
    return distances


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distances ``(len(a), len(b))`` between unit-vector rows (``|x - y|^2 = 2 - 2 x.y``)."""
    return np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("id,jd->ij", a, b), 0.0))


def site_threshold(record: Any, *, names: Sequence[str], model_sha256: str | None, target_fpir: float,
                   card_threshold: float) -> tuple[Threshold | None, str]:
    """The threshold of a site calibration ``record`` (the JSON object ``facegate calibrate --site`` stores) for
    the encodings of ``names`` (one entry per encoding) as they are now, or ``None`` and why it does not hold.

    It holds only if it was made by the model in use (``model_sha256``), for ``target_fpir``, and for exactly these
    people with these encodings (:func:`people_key`). Its value never exceeds ``card_threshold``.
    """
    if not _well_formed(record):
        return None, "the store's site calibration record is malformed: ignored"
    when = _date(record)
    if model_sha256 is None or record["model_sha256"].lower() != model_sha256.lower():
        return None, (f"the site calibration of {when} was made with model {record['model_sha256'][:12]}, not the "
                      "model in use: ignored")
    if not math.isclose(float(record["target_fpir"]), target_fpir, rel_tol=1e-9):
        return None, (f"the site calibration of {when} is for an FPIR target of {100 * record['target_fpir']:g}%, "
                      f"not {100 * target_fpir:g}%: run facegate calibrate --site --target-fpir {target_fpir:g}")
    enrolled = len(set(names))
    if record["people_key"] != people_key(names):
        if record["people"] != enrolled:
            return None, (f"the site calibration of {when} is for {record['people']} people; {enrolled} are "
                          "enrolled now: run facegate calibrate --site again")
        return None, (f"the site calibration of {when} is for other people or encodings than the {enrolled} "
                      "enrolled now: run facegate calibrate --site again")
    value, note = float(record["threshold"]), str(record.get("note") or "")
    if value > card_threshold:
        value, note = card_threshold, "capped at the model card's threshold"
    return Threshold(value, SITE_CALIBRATION, float(record["target_fpir"]), enrolled, int(record["comparisons"]),
                     card_threshold, note, site=record), ""


def _well_formed(record: Any) -> bool:
    """Whether ``record`` has the fields :func:`site_threshold` reads, of their types."""
    if not isinstance(record, Mapping):
        return False
    numbers = [record.get(k) for k in ("threshold", "target_fpir")]
    counts = [record.get(k) for k in ("people", "comparisons")]
    strings = [record.get(k) for k in ("people_key", "model_sha256", "created")]
    return (all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
            and 0.0 <= float(record["threshold"]) <= 2.0
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts)
            and all(isinstance(v, str) for v in strings))


def _date(record: Mapping[str, Any]) -> str:
    """The day a site calibration was made (``created`` is UTC ISO-8601)."""
    return str(record.get("created", "?"))[:10]


class OpenSetGallery:
    """The templates of a database (a store), kept up to date, and the threshold in force for them.

    Pass it wherever a database goes (:meth:`matrix` gives the templates, so the face pipeline's search stage
    compares with templates). The templates and the threshold are recomputed only when the database's
    encodings change (a store returns the same cached matrix until its file changes, a new site calibration
    included).

    Args:
        database: an :class:`edge.storage.store.EncodingStore`, a mapping, anything with ``matrix()``. One with a
            ``site_calibration()`` method (the store) gives its site calibration record, or ``None``.
        strangers: the model's reference strangers ``(R, d)``, or ``None``.
        card_threshold, target_fpir, override: as :func:`derive_threshold` takes them.
        model_sha256: the model in use: a site calibration is used only if it was made by it (never without it).
    """

    def __init__(self, database: Any, *, strangers: np.ndarray | None, card_threshold: float,
                 target_fpir: float = DEFAULT_TARGET_FPIR, override: float | None = None,
                 model_sha256: str | None = None):
        self.database = database
        self.strangers = strangers
        self.card_threshold = card_threshold
        self.target_fpir = target_fpir
        self.override = override
        self.model_sha256 = model_sha256
        self._source: np.ndarray | None = None
        self._templates: tuple[list[str], np.ndarray] = ([], np.empty((0, 0), np.float32))
        self._threshold: Threshold | None = None

    @classmethod
    def for_card(cls, database: Any, card: Any, *, target_fpir: float = DEFAULT_TARGET_FPIR,
                 override: float | None = None) -> OpenSetGallery:
        """The gallery of ``database`` for the model of ``card`` (an :class:`edge.core.modelcard.ModelCard`): its
        reference strangers, its threshold as the ceiling, and its sha256 for the site calibration."""
        ceiling = card.threshold if card.threshold is not None else override
        if ceiling is None:
            raise ModelCardError(f"{card.path.name} records no threshold: pass one")
        return cls(database, strangers=card.reference_strangers(), card_threshold=float(ceiling),
                   target_fpir=target_fpir, override=override, model_sha256=card.sha256)

    def _refresh(self) -> None:
        names, matrix = database_matrix(self.database)
        if self._threshold is not None and matrix is self._source:
            return
        self._source = matrix
        self._templates = templates(names, matrix)
        self._threshold = self._derive(names)

    def _derive(self, names: list[str]) -> Threshold:
        """Config override > site calibration (while it holds) > reference strangers > model card."""
        why_not = ""
        reader = getattr(self.database, "site_calibration", None)
        if self.override is None and callable(reader):
            record = reader()
            if record is not None:
                site, why_not = site_threshold(record, names=names, model_sha256=self.model_sha256,
                                               target_fpir=self.target_fpir, card_threshold=self.card_threshold)
                if site is not None:
                    return site
        derived = derive_threshold(self._templates[1], self.strangers, card_threshold=self.card_threshold,
                                   target_fpir=self.target_fpir, override=self.override)
        if why_not:
            derived = replace(derived, note="; ".join(n for n in (why_not, derived.note) if n))
        return derived

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """``(people, (N, d) templates)``."""
        self._refresh()
        return self._templates

    @property
    def threshold(self) -> Threshold:
        """The threshold in force for the templates as they are now (reads the database for changes)."""
        self._refresh()
        assert self._threshold is not None
        return self._threshold

    @property
    def last_threshold(self) -> Threshold:
        """The threshold of the templates :meth:`matrix` handed out last, without reading the database again:
        the one that belongs to a search just made (and no second store read on the door's hot path)."""
        if self._threshold is None:
            self._refresh()
        assert self._threshold is not None
        return self._threshold

    def accepts(self, distance: float | None) -> bool:
        """Whether a match at ``distance`` to the nearest template (of the last :meth:`matrix`) is close enough
        (``<=`` its threshold)."""
        return distance is not None and distance <= self.last_threshold.value
