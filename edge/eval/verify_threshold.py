"""The 1:1 threshold of a badge+face door, derived like the 1:N one at N = 1, and what it does on labelled photos.

At a badge+face door the badge names the person, so a face is compared with *one* template, not with everyone
enrolled: a stranger holding someone's badge gets in only if their face is close to that one person. The threshold
is therefore the 1:N rule of :mod:`edge.core.openset` at N = 1: the largest distance that lets at most ``target``
of the reference strangers' comparisons in (per comparison, not per stranger over all N). The comparisons of every
enrolled template are pooled (R strangers x N people of them, not the R of one person: a threshold per person from
305 comparisons would move with whoever happens to resemble one portrait). :func:`verify_threshold` reuses
:func:`edge.core.openset.derive_threshold` for it: that rule at N people for an FPIR of ``1 - (1 - target)^N`` is
exactly a per-comparison rate of ``target`` over the pooled comparisons.

So it is looser than the 1:N threshold for the same target and the same people (the same sorted distances, a
larger share of them let in), never tighter: should the 1:N threshold in force be larger (a config override, a site
calibration), that one is used (a badge adds a factor; it must not make the face check stricter than without it).
It is not capped at the model card's threshold, which was chosen for 1:N. It is derived at run time (the daemon,
:mod:`edge.daemon.access`) from the model's reference strangers and the store's people, recomputed when they change,
like the 1:N one; ``[access] verify_threshold`` overrides it. Without reference strangers: the card's threshold.

:func:`verification_report` measures it on labelled photos (``benchmarks/bench_verify_threshold.py`` runs it on the
celebrity photos, the ``johns`` people and the development strangers): FNIR (the right badge with the right face
refused), the impostor pairs (the right badge with another enrolled person's face let in) and strangers (a stranger
holding each enrolled person's badge let in).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from edge.core.openset import Threshold, derive_threshold, stranger_distances, templates
from edge.eval.evaluation import rate_record
from edge.eval.photos import PhotoFaces

#: :attr:`Threshold.source` of a derived 1:1 threshold.
VERIFY_SOURCE = "reference strangers, 1:1"
#: No ceiling but the largest distance between unit vectors (the card's threshold is a 1:N one).
_NO_CEILING = 2.0


def verify_threshold(people: np.ndarray, strangers: np.ndarray | None, *, card_threshold: float,
                     target_fpir: float, override: float | None = None,
                     one_to_n: Threshold | None = None) -> Threshold:
    """The 1:1 threshold for the ``people`` templates ``(N, d)`` (see the module docstring).

    Args:
        people: the enrolled templates, L2-normalised rows.
        strangers: the model's reference strangers ``(R, d)``, or ``None``.
        card_threshold: the model card's threshold: the value without reference strangers.
        target_fpir: the share of a stranger's 1:1 comparisons that may match (per badge presented).
        override: ``[access] verify_threshold``: used as it is.
        one_to_n: the 1:N threshold in force: the result is never below it.
    """
    n = len(people)
    if override is not None:
        return Threshold(float(override), "config", None, n, 0, card_threshold)
    if strangers is None or len(strangers) == 0 or n == 0:
        derived = derive_threshold(people, strangers, card_threshold=card_threshold, target_fpir=target_fpir)
    else:
        pooled = -math.expm1(n * math.log1p(-target_fpir))  # 1 - (1 - target)^N, exact for small targets too
        derived = derive_threshold(people, strangers, card_threshold=_NO_CEILING, target_fpir=pooled)
        per_comparison = 1.0 - (1.0 - pooled) ** (1.0 / n)
        if not math.isclose(per_comparison, target_fpir, rel_tol=1e-6):  # so many people that floats give up
            derived = derive_threshold(people, strangers, card_threshold=card_threshold, target_fpir=target_fpir)
            derived = replace(derived, note=f"{n} people are too many to derive a 1:1 threshold: the 1:N one is used")
        else:
            note = derived.note.replace(f"{per_comparison:.1e}", f"{target_fpir:.1e}")
            derived = replace(derived, source=VERIFY_SOURCE, target_fpir=target_fpir, card_value=card_threshold,
                              note=note)
    if one_to_n is not None and one_to_n.value > derived.value:
        return replace(derived, value=one_to_n.value,
                       note=f"raised to the 1:N threshold in force ({one_to_n.source}): a badge never makes the "
                            "face check stricter")
    return derived


def verification_report(train: PhotoFaces, val: PhotoFaces, *, reference: np.ndarray | None,
                        card_threshold: float, target_fpir: float, strangers: PhotoFaces | None = None) -> dict:
    """The 1:1 threshold for ``train``'s people (one template each) and what it does on ``val`` and ``strangers``.

    Returns a JSON-ready dict: ``threshold`` and ``one_to_n`` (the 1:N threshold for the same people and target,
    :func:`edge.core.openset.derive_threshold`), ``fnir`` (each val photo against its own person's template),
    ``impostor_pairs`` (each val photo against every *other* enrolled person's template: the right badge with another
    enrolled person's face), ``strangers`` (each stranger photo against every template: a stranger holding each
    badge) as :func:`edge.eval.evaluation.rate_record` figures, the closest impostor and stranger distances, and
    ``pairs_let_in``: every ``(badge, face)`` person pair with an impostor comparison let in.
    """
    people, rows = templates(train.labels, train.vectors)
    one_to_n = derive_threshold(rows, reference, card_threshold=card_threshold, target_fpir=target_fpir)
    threshold = verify_threshold(rows, reference, card_threshold=card_threshold, target_fpir=target_fpir)
    index = {person: i for i, person in enumerate(people)}
    enrolled = [i for i, label in enumerate(val.labels) if label in index]
    own = np.array([index[val.labels[i]] for i in enrolled], np.int64)
    distances = stranger_distances(val.vectors[enrolled], rows) if enrolled else np.empty((0, len(people)))
    genuine = distances[np.arange(len(enrolled)), own]
    others = np.ones_like(distances, dtype=bool)
    others[np.arange(len(enrolled)), own] = False
    impostor = distances[others]
    t = threshold.value
    let_in = sorted({(people[j], val.labels[enrolled[i]]) for i, j in zip(*np.nonzero(others & (distances <= t)),
                                                                             strict=True)})
    report: dict[str, Any] = {
        "people": len(people), "target_fpir": target_fpir,
        "threshold": threshold.as_dict(), "one_to_n": one_to_n.as_dict(),
        "fnir": rate_record(int(np.sum(genuine > t)), len(genuine)),
        "genuine_max": _rounded(genuine.max() if len(genuine) else None),
        "impostor_pairs": rate_record(int(np.sum(impostor <= t)), len(impostor)),
        "impostor_min": _rounded(impostor.min() if len(impostor) else None),
        "pairs_let_in": [{"badge": badge, "face": face} for badge, face in let_in],
    }
    if strangers is not None and strangers.labels:
        to_templates = stranger_distances(strangers.vectors, rows).ravel()
        report["strangers"] = {**rate_record(int(np.sum(to_templates <= t)), len(to_templates)),
                               "photos": len(strangers.labels), "closest": _rounded(to_templates.min())}
    return report


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)
