"""Presentation-attack detection measured as ISO/IEC 30107-3 does: APCER and BPCER on labelled photos.

- **APCER** (attack presentation classification error rate): the share of attack presentations accepted as
  live (``score >= threshold``);
- **BPCER** (bona fide presentation classification error rate): the share of live faces rejected.

Each rate comes with its exact (Clopper-Pearson) interval: four photos cannot show a rate below 1/4, and a site
with 50 live photos cannot show a BPCER below about 6% at 95% confidence. The threshold for a target BPCER is the
largest whose BPCER on these live photos stays at or below the target: the site's own camera, its own people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.eval.evaluation import rate_record


@dataclass(frozen=True)
class ScoredPhoto:
    """One labelled photo's liveness score (``None``: no face found in it)."""

    path: Path
    label: str  # "live" or "attack"
    score: float | None
    error: str | None = None


def threshold_for_bpcer(live_scores: np.ndarray, target: float) -> float:
    """The largest threshold ``t`` with ``mean(live_scores < t) <= target`` (accept at ``score >= t``).

    Raises:
        ValueError: no live scores, or a target outside 0..1.
    """
    scores = np.sort(np.asarray(live_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no live faces to set a threshold on")
    if not 0.0 <= target < 1.0:
        raise ValueError(f"the target BPCER must be in 0..1, got {target}")
    allowed = int(np.floor(target * scores.size + 1e-9))  # how many live faces may be rejected
    return float(scores[allowed])  # rejecting exactly the `allowed` lowest: t = the next score


def pad_rates(photos: list[ScoredPhoto], *, threshold: float, target_bpcer: float) -> dict[str, Any]:
    """APCER and BPCER at ``threshold``, and the threshold (with its APCER) for ``target_bpcer``.

    Photos without a face are counted apart (``no_face``): an attack in which no face is found does not open a
    door, a live face not found is a failure to acquire, not a presentation-attack decision.
    """
    live = np.array([p.score for p in photos if p.label == "live" and p.score is not None], dtype=np.float64)
    attack = np.array([p.score for p in photos if p.label == "attack" and p.score is not None], dtype=np.float64)
    result: dict[str, Any] = {
        "threshold": threshold,
        "live": int(live.size), "attack": int(attack.size),
        "no_face": {label: sum(1 for p in photos if p.label == label and p.score is None)
                    for label in ("live", "attack")},
        "apcer": rate_record(int(np.sum(attack >= threshold)), int(attack.size)),
        "bpcer": rate_record(int(np.sum(live < threshold)), int(live.size)),
        "target_bpcer": target_bpcer,
    }
    if live.size:
        chosen = threshold_for_bpcer(live, target_bpcer)
        result["threshold_for_target"] = {
            "value": round(chosen, 4),
            "apcer": rate_record(int(np.sum(attack >= chosen)), int(attack.size)),
            "bpcer": rate_record(int(np.sum(live < chosen)), int(live.size)),
        }
    return result
