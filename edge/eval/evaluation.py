"""How well does it recognise? Held-out photos identified against enrolled ones, beside the seed's pixel baseline.

``train`` photos are enrolled in memory (``name -> (k, d)``), each ``val`` photo identified as ``who_is_it`` does
(closest stored encoding, accepted at or below the threshold), every miss explained; the naive pixel-by-pixel
baseline runs on the same face crops, and an open-set check presents each person, removed from the enrolled set,
as a stranger.

:func:`stranger_evaluation` measures the door's own 1:N rule (:mod:`edge.core.openset`: one template per person, the
threshold in force) on photos of people who are nobody enrolled: the share of strangers let in (FPIR) and of
enrolled people's photos not identified as themselves (FNIR), each with an exact binomial interval
(:func:`binomial_interval`), and what FNIR would be at thresholds chosen on those strangers for a few FPIRs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.core.gallery import database_matrix, nearest
from edge.errors import FacegateError
from edge.eval.metrics import equal_error_rate, identify_nearest, pair_distances
from edge.eval.photos import PhotoFaces, people_of, skipped_records

#: The naive baseline's image: face crops resized to this many pixels a side, greyscale.
PIXEL_SIDE = 64

#: Confidence of the binomial intervals reported (two-sided).
CONFIDENCE = 0.95

#: The FPIRs at which :func:`stranger_evaluation` picks thresholds on the strangers themselves (0.1%, 0.5%, 1%).
MEASURED_FPIRS = (0.001, 0.005, 0.01)

#: Largest L2 distance between unit vectors: a threshold of 2 accepts every comparison.
MAX_DISTANCE = 2.0



def pixel_features(crops: np.ndarray, *, side: int = PIXEL_SIDE) -> np.ndarray:
    """The naive baseline's vectors: each (H, W, 3) uint8 RGB crop as ``side`` x ``side`` greyscale, 0..1.

    Returns ``(m, side * side)`` float32; compared by plain L2 distance, pixel by pixel.
    """
    out = np.empty((len(crops), side * side), np.float32)
    for i, crop in enumerate(crops):
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
    return out



def evaluation(train: PhotoFaces, val: PhotoFaces, *, threshold: float) -> dict:
    """Identify ``val`` against ``train`` enrolled as ``name -> (k, d)`` with who_is_it's rule.

    A val photo is identified when its closest stored encoding shows the same person and its distance is
    at most ``threshold``; skipped val photos count as misses. Returns a JSON-ready dict: per-person
    counts with every miss, top-1 (closest regardless of threshold), the pair EER on all photos, the pixel
    baseline on the same crops and the open-set check.
    """
    database = enrolled_database(train)
    names, matrix = database_matrix(database)
    people = people_of(val.labels + [_person_of(path) for path, _ in val.skipped])
    per_person: dict[str, dict[str, Any]] = {p: {"identified": 0, "total": 0, "misses": []} for p in people}
    top1 = 0
    for encoding, person, path in zip(val.vectors, val.labels, val.paths, strict=True):
        dist, closest = nearest(encoding, names, matrix)
        top1 += closest == person
        row = per_person[person]
        row["total"] += 1
        if closest == person and dist <= threshold:
            row["identified"] += 1
        else:
            if closest != person and dist <= threshold:
                why = "someone else, close enough to be accepted"
            elif closest != person:
                why = "the closest is someone else, and farther than the threshold"
            else:
                why = "the right person, but farther than the threshold"
            row["misses"].append({"photo": str(path), "got": closest if dist <= threshold else None,
                                  "closest": closest, "distance": dist, "threshold": threshold, "why": why})
    for path, reason in val.skipped:
        row = per_person[_person_of(path)]
        row["total"] += 1
        row["misses"].append({"photo": str(path), "got": None, "closest": None, "distance": None,
                              "threshold": threshold, "why": reason})
    identified = sum(r["identified"] for r in per_person.values())
    total = sum(r["total"] for r in per_person.values())
    both_labels = train.labels + val.labels
    eer = equal_error_rate(*pair_distances(np.concatenate([train.vectors, val.vectors]), both_labels))
    return {
        "identified": identified, "total": total, "top1": top1, "encoded": len(val.labels),
        "per_person": per_person, "pair_eer": {"rate": eer.far, "threshold": eer.threshold},
        "pixel_baseline": _pixel_baseline(train, val),
        "open_set": _open_set_check(train, val, threshold=threshold),
        "enrolled": {"people": len(database), "photos": len(train.labels),
                     "skipped": skipped_records(train.skipped)},
        "skipped": skipped_records(val.skipped),
    }



def enrolled_database(train: PhotoFaces) -> dict[str, np.ndarray]:
    """``name -> (k, d)``: every encoded train photo of each person, as the door enrols them (people sorted)."""
    return {name: train.vectors[[i for i, n in enumerate(train.labels) if n == name]]
            for name in people_of(train.labels)}



def _person_of(path: Path) -> str:
    return Path(path).parent.name



def _pixel_baseline(train: PhotoFaces, val: PhotoFaces) -> dict:
    train_px, val_px = pixel_features(train.crops), pixel_features(val.crops)
    predicted, _ = identify_nearest(val_px, train_px, train.labels)
    top1 = sum(p == t for p, t in zip(predicted, val.labels, strict=True))
    eer = equal_error_rate(*pair_distances(np.concatenate([train_px, val_px]), train.labels + val.labels))
    return {"method": f"the same face crops as {PIXEL_SIDE}x{PIXEL_SIDE} greyscale (0..1), flattened, L2, "
                      "nearest neighbour",
            "top1": top1, "total": len(val.labels), "pair_eer": {"rate": eer.far, "threshold": eer.threshold}}



def _open_set_check(train: PhotoFaces, val: PhotoFaces, *, threshold: float) -> dict:
    """Each val person in turn removed from the enrolled set, their val photos presented as strangers."""
    train_labels = np.asarray(train.labels)
    per_person: dict[str, dict[str, Any]] = {}
    for person in people_of(val.labels):
        gallery = train_labels != person
        probes = [i for i, n in enumerate(val.labels) if n == person]
        if not gallery.any():
            continue
        matched, dists = identify_nearest(val.vectors[probes], train.vectors[gallery],
                                          list(train_labels[gallery]))
        k = int(np.argmin(dists))
        per_person[person] = {"strangers": len(probes), "accepted": int(np.sum(dists <= threshold)),
                              "nearest": float(dists[k]), "nearest_is": matched[k],
                              "nearest_photo": str(val.paths[probes[k]])}
    strangers = sum(r["strangers"] for r in per_person.values())
    accepted = sum(r["accepted"] for r in per_person.values())
    smallest = min((r["nearest"] for r in per_person.values()), default=None)
    return {"strangers": strangers, "accepted": accepted, "threshold": threshold,
            "smallest_distance": smallest, "margin": None if smallest is None else smallest - threshold,
            "per_person": per_person}



# -- the door's rule against strangers ------------------------------------------------------------------------


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``, summed term by term (the shorter tail; logs of the terms).

    Equal to the regularised incomplete beta ``I_{1-p}(n - k, k + 1)``.
    """
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def term(i: int) -> float:
        return math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)

    if k < n - k:
        return min(1.0, math.fsum(term(i) for i in range(k + 1)))
    return max(0.0, 1.0 - math.fsum(term(i) for i in range(k + 1, n + 1)))



def _bisect_decreasing(f, target: float, low: float, high: float) -> float:
    """The ``p`` in ``[low, high]`` where the decreasing ``f(p)`` crosses ``target``, to float resolution."""
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if f(mid) > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2



def binomial_interval(k: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a rate seen ``k`` times in ``n`` trials.

    The lower bound is the ``p`` at which ``P(X >= k) = alpha / 2``, the upper the ``p`` at which
    ``P(X <= k) = alpha / 2`` (``alpha = 1 - confidence``), found by bisection on :func:`binomial_cdf`;
    ``k = 0`` has lower bound 0 and ``k = n`` upper bound 1. E.g. 0 of 304 gives ``(0, 0.0121)``: 304 trials
    cannot show a rate below about 1.2% with 95% confidence. ``n = 0`` gives ``(0, 1)``: nothing is known.
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n == 0:
        return 0.0, 1.0
    tail = (1.0 - confidence) / 2
    low = 0.0 if k == 0 else _bisect_decreasing(lambda p: binomial_cdf(k - 1, n, p), 1.0 - tail, 0.0, k / n)
    high = 1.0 if k == n else _bisect_decreasing(lambda p: binomial_cdf(k, n, p), tail, k / n, 1.0)
    return low, high



def rate_record(count: int, total: int, *, confidence: float = CONFIDENCE) -> dict:
    """``count`` of ``total`` as a JSON-ready rate: ``{"count", "total", "rate", "interval": [low, high],
    "confidence"}`` (``rate`` is ``None`` when ``total`` is 0)."""
    low, high = binomial_interval(count, total, confidence=confidence)
    return {"count": count, "total": total, "rate": count / total if total else None, "interval": [low, high],
            "confidence": confidence}



def det_curve(genuine: np.ndarray, stranger: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of the 1:N rule ``accept at distance <= t``: ``(thresholds, fpir, fnir)``.

    Args:
        genuine: for each genuine probe, the distance at which it is identified as itself: its distance to
            the nearest template when that is its own person's, ``inf`` when it never is (the nearest template
            is someone else's, or it shows no face).
        stranger: each stranger's distance to the nearest template.

    Returns:
        Thresholds increasing from ``-inf`` (nobody in: FPIR 0, FNIR 1) through every distinct distance, and at
        each the share of strangers accepted (``stranger <= t``) and of genuine probes not identified
        (``genuine > t``), fractions 0..1.
    """
    genuine = np.sort(np.asarray(genuine, np.float64))
    stranger = np.sort(np.asarray(stranger, np.float64))
    values = np.unique(np.concatenate([genuine[np.isfinite(genuine)], stranger]))
    t = np.concatenate([[-np.inf], values])
    fpir = np.searchsorted(stranger, t, side="right") / max(len(stranger), 1)
    fnir = 1.0 - np.searchsorted(genuine, t, side="right") / max(len(genuine), 1)
    return t, fpir, fnir



def threshold_for_fpir(stranger: np.ndarray, target: float) -> float:
    """The largest threshold that lets at most ``target`` (0..1) of ``stranger`` distances in at ``<=``.

    It lies just below the first stranger distance that must be refused; with ``n`` strangers a target below
    ``1 / n`` gives the threshold that lets none of them in.
    """
    stranger = np.sort(np.asarray(stranger, np.float64))
    allowed = int(math.floor(target * len(stranger) + 1e-9))
    if allowed >= len(stranger):
        return MAX_DISTANCE
    return float(np.nextafter(stranger[allowed], -np.inf))



def stranger_evaluation(gallery: Any, val: PhotoFaces, strangers: PhotoFaces, *,
                        fpirs: tuple[float, ...] = MEASURED_FPIRS) -> tuple[dict, dict[str, np.ndarray]]:
    """The door's 1:N rule on ``val`` (enrolled people) and ``strangers`` (one nobody-enrolled person a photo).

    Args:
        gallery: an :class:`edge.core.openset.OpenSetGallery` of the enrolled people (``matrix()`` gives the
            templates, ``threshold`` the :class:`~edge.core.openset.Threshold` in force, ``accepts(distance)``).
        val: photos of enrolled people, labelled by person; photos of anyone not enrolled are counted apart
            and left out of FNIR.
        strangers: photos of people who are nobody enrolled; those without a face are counted apart and left
            out of FPIR (the door never sees them).
        fpirs: the FPIRs at which thresholds are chosen on these strangers, to show what FNIR would be there.

    Each probe is matched with :func:`edge.core.gallery.nearest` against the templates, as the door matches a
    frame. A stranger is let in when the gallery accepts its nearest distance; a val photo is identified when
    its nearest template is its own person's and the gallery accepts the distance, and is otherwise a miss:
    ``wrong_person`` (someone else accepted), ``farther`` (nobody accepted) or ``no_face``.

    Returns:
        ``(report, distances)``: ``report`` is JSON-ready (the threshold, counts, ``fpir`` and ``fnir`` as
        :func:`rate_record`, every stranger let in and every miss, and ``at_fpir``: per target, the threshold
        chosen on these strangers with its FPIR and FNIR); ``distances`` holds ``genuine`` and ``stranger`` as
        :func:`det_curve` takes them.

    Raises:
        FacegateError: nobody is enrolled, no stranger shows a face, or no val photo is of an enrolled person.
    """
    people, matrix = gallery.matrix()
    if not people:
        raise FacegateError("nobody is enrolled: strangers cannot be measured against an empty gallery")
    if not strangers.labels:
        raise FacegateError(f"none of the {len(strangers.skipped)} stranger photos shows a face: FPIR cannot be "
                            "measured")
    threshold = gallery.threshold
    stranger_d = np.empty(len(strangers.labels), np.float64)
    let_in = []
    for i, (encoding, path) in enumerate(zip(strangers.vectors, strangers.paths, strict=True)):
        dist, closest = nearest(encoding, people, matrix)
        stranger_d[i] = dist
        if gallery.accepts(dist):
            let_in.append({"photo": str(path), "as": closest, "distance": dist})
    enrolled = set(people)
    genuine_d: list[float] = []
    misses: list[dict[str, Any]] = []
    counts = {"wrong_person": 0, "farther": 0, "no_face": 0}
    not_enrolled = 0
    for encoding, person, path in zip(val.vectors, val.labels, val.paths, strict=True):
        if person not in enrolled:
            not_enrolled += 1
            continue
        dist, closest = nearest(encoding, people, matrix)
        genuine_d.append(dist if closest == person else np.inf)
        if closest == person and gallery.accepts(dist):
            continue
        why = "wrong_person" if gallery.accepts(dist) else "farther"
        counts[why] += 1
        misses.append({"photo": str(path), "person": person, "why": why, "closest": closest, "distance": dist})
    for path, reason in val.skipped:
        if _person_of(path) not in enrolled:
            not_enrolled += 1
            continue
        genuine_d.append(np.inf)
        counts["no_face"] += 1
        misses.append({"photo": str(path), "person": _person_of(path), "why": "no_face", "closest": None,
                       "distance": None, "reason": reason})
    if not genuine_d:
        raise FacegateError("no val photo shows an enrolled person: FNIR cannot be measured")
    genuine = np.asarray(genuine_d, np.float64)
    n_strangers, n_genuine = len(stranger_d), len(genuine)
    at_fpir = []
    for target in fpirs:
        t = threshold_for_fpir(stranger_d, target)
        at_fpir.append({"target": target, "threshold": t,
                        "fpir": {"count": int(np.sum(stranger_d <= t)), "total": n_strangers,
                                 "rate": float(np.mean(stranger_d <= t))},
                        "fnir": rate_record(int(np.sum(genuine > t)), n_genuine),
                        "resolvable": math.floor(target * n_strangers + 1e-9) >= 1})
    report = {
        "threshold": {**threshold.as_dict(), "text": threshold.describe()},
        "people": len(people), "templates": len(matrix),
        "strangers": {"photos": n_strangers + len(strangers.skipped), "with_face": n_strangers,
                      "no_face": len(strangers.skipped), "skipped": skipped_records(strangers.skipped)},
        "genuine": {"photos": n_genuine, "not_enrolled": not_enrolled},
        "fpir": rate_record(len(let_in), n_strangers),
        "fnir": {**rate_record(len(misses), n_genuine), **counts},
        "note": f"{n_strangers} strangers cannot show a rate below 1/{n_strangers} ({100 / n_strangers:.2g}%)",
        "let_in": let_in, "misses": misses,
        "at_fpir": at_fpir,
        "at_fpir_note": "thresholds chosen on these strangers, to show the trade-off: measured on the strangers, "
                        "not what the door uses",
    }
    return report, {"genuine": genuine, "stranger": stranger_d}
