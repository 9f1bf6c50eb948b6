"""Measuring an encoder on labelled photos: pair distances, error rates, thresholds, identification.

All distances are Euclidean (L2, not squared) between L2-normalised encodings, as ``verify`` and
``who_is_it`` use them, so a threshold measured here is the threshold the door applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distances between every row of ``a`` (m, d) and every row of ``b`` (n, d): shape (m, n), float64."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    sq = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def pair_distances(encodings: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distances of all unordered pairs of photos: ``(genuine, impostor)``.

    Genuine pairs show the same person, impostor pairs two different people. Each pair counts once.
    """
    labels_arr = np.asarray(labels)
    dist = pairwise_distances(encodings, encodings)
    i, j = np.triu_indices(len(labels_arr), k=1)
    same = labels_arr[i] == labels_arr[j]
    return dist[i, j][same], dist[i, j][~same]


def open_set_distances(encodings: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out 1:N distances, the way the door meets people: ``(genuine, stranger)``.

    For each photo, ``genuine`` holds its distance to the nearest *other* photo of the same person (when the
    person has another), and ``stranger`` its distance to the nearest photo of anyone else, i.e. what
    who_is_it would see if that person were not enrolled. A threshold must keep ``stranger`` distances
    out: each stranger at the door is compared with every stored encoding, so pair-level error rates
    understate how often a stranger finds *somebody* close enough.
    """
    labels_arr = np.asarray(labels)
    dist = pairwise_distances(encodings, encodings)
    np.fill_diagonal(dist, np.inf)
    same = labels_arr[:, None] == labels_arr[None, :]
    genuine = np.where(same, dist, np.inf).min(axis=1)
    stranger = np.where(~same, dist, np.inf).min(axis=1)
    return genuine[np.isfinite(genuine)], stranger[np.isfinite(stranger)]


@dataclass(frozen=True)
class ErrorRates:
    """False-accept and false-reject rates (fractions 0..1) of the rule ``accept if distance < threshold``."""

    threshold: float
    far: float
    frr: float


def rates_at(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> ErrorRates:
    """Error rates of ``accept if distance < threshold`` on the given pair distances."""
    far = float(np.mean(np.asarray(impostor) < threshold)) if len(impostor) else 0.0
    frr = float(np.mean(np.asarray(genuine) >= threshold)) if len(genuine) else 0.0
    return ErrorRates(float(threshold), far, frr)


def _candidate_thresholds(genuine: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    values = np.unique(np.concatenate([genuine, impostor]))
    # Each distinct distance and a point just above it: every distinct operating point of the rule.
    return np.unique(np.concatenate([[0.0], values, np.nextafter(values, np.inf)]))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> ErrorRates:
    """The operating point where false accepts and false rejects are (nearest to) equal.

    The reported rate is the mean of FAR and FRR at the threshold minimising ``|FAR - FRR|``.
    """
    genuine = np.sort(np.asarray(genuine, np.float64))
    impostor = np.sort(np.asarray(impostor, np.float64))
    t = _candidate_thresholds(genuine, impostor)
    far = np.searchsorted(impostor, t, side="left") / max(len(impostor), 1)
    frr = 1.0 - np.searchsorted(genuine, t, side="left") / max(len(genuine), 1)
    k = int(np.argmin(np.abs(far - frr)))
    eer = ErrorRates(float(t[k]), float(far[k]), float(frr[k]))
    return ErrorRates(eer.threshold, (eer.far + eer.frr) / 2, (eer.far + eer.frr) / 2)


def error_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of ``accept if distance < t``: ``(thresholds, far, frr)``, thresholds increasing.

    ``far`` is the share of ``impostor`` distances accepted, ``frr`` the share of ``genuine`` refused
    (fractions 0..1); the thresholds run from 0 (accept nothing) to just above the largest distance.
    """
    genuine = np.sort(np.asarray(genuine, np.float64))
    impostor = np.sort(np.asarray(impostor, np.float64))
    values = np.unique(np.concatenate([genuine, impostor]))
    t = np.concatenate([[0.0], values, [np.nextafter(values[-1], np.inf)]]) if len(values) else np.array([0.0])
    far = np.searchsorted(impostor, t, side="left") / max(len(impostor), 1)
    frr = 1.0 - np.searchsorted(genuine, t, side="left") / max(len(genuine), 1)
    return t, far, frr


def threshold_for_far(genuine: np.ndarray, impostor: np.ndarray, target_far: float) -> ErrorRates:
    """A threshold whose false-accept rate is at most ``target_far`` (0..1), as large as that allows.

    Larger thresholds accept more genuine attempts, so this is the most convenient threshold that still
    keeps impostors out as often as asked. It lies just below the first impostor distance that must be
    refused, so that impostor is refused under both ``d < t`` (verify) and ``d <= t`` (who_is_it), and
    is rounded *down* to 3 decimals. With ``n`` impostor distances no rate below ``1/n`` can be told from
    zero: a target below that gives the threshold that accepted none of them.
    """
    impostor = np.sort(np.asarray(impostor, np.float64))
    allowed = int(np.floor(target_far * len(impostor)))
    if allowed >= len(impostor):
        return rates_at(genuine, impostor, float(np.inf))
    t = np.floor(np.nextafter(impostor[allowed], -np.inf) * 1000.0) / 1000.0
    return rates_at(genuine, impostor, float(t))


def identify_nearest(
    probes: np.ndarray, gallery: np.ndarray, gallery_labels: list[str]
) -> tuple[list[str], np.ndarray]:
    """For each probe (m, d), the label of the nearest gallery encoding (n, d) and that distance (m,)."""
    dist = pairwise_distances(probes, gallery)
    nearest = np.argmin(dist, axis=1)
    return [gallery_labels[k] for k in nearest], dist[np.arange(len(probes)), nearest]


def cosine_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (m, d) arrays: 1 means the same direction."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)
