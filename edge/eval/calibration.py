"""Which threshold? Error rates of an encoder on labelled photos, for photo pairs and for the open set.

A face is accepted when its L2 distance (between unit-length encodings, 0..2) is below the threshold. Pair rates
compare two photos at a time; the *open set* compares each photo, its person left out, with everyone else's
photos, as the door meets a stranger. Pair rates understate the door's risk: a stranger is compared with every
stored encoding at once and gets in if *any* is close enough. The threshold to ship is the largest whose
open-set stranger acceptance is at most the target.
"""

from __future__ import annotations

import numpy as np

from edge.errors import FacegateError
from edge.eval.metrics import equal_error_rate, open_set_distances, pair_distances, rates_at, threshold_for_far
from edge.eval.photos import people_of

#: The threshold of the course the product follows (its model and preprocessing, not ours).
COURSE_THRESHOLD = 0.7


#: Thresholds of calibrate's table: 0.60, 0.65, ... 1.40 (plus the recommended, the course's and the current).
TABLE_THRESHOLDS = tuple(round(0.6 + 0.05 * k, 2) for k in range(17))



def pct(rate: float) -> str:
    """A fraction 0..1 as a percentage with one decimal: ``0.0123`` -> ``"1.2%"``."""
    return f"{100.0 * rate:.1f}%"



def calibration(encodings: np.ndarray, labels: list[str], *, target_far: float,
                current_threshold: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Error rates of ``encodings`` (n, d) showing ``labels`` and the threshold to ship for ``target_far``.

    Returns:
        ``(report, distances)``. ``report`` is JSON-ready: pair and open-set counts, the pair EER, the
        recommended threshold with its rates, whether ``target_far`` can be resolved with this many
        strangers (with a note if not), and a table of rates at :data:`TABLE_THRESHOLDS` plus the
        recommended, the course's 0.7 and ``current_threshold``. ``distances`` holds the 1-D arrays
        ``genuine`` and ``impostor`` (pairs), ``open_set_genuine`` and ``open_set_stranger``.

    Raises:
        FacegateError: fewer than 2 people, or nobody with 2 photos (no genuine pairs).
    """
    genuine, impostor = pair_distances(encodings, labels)
    if len(people_of(labels)) < 2:
        raise FacegateError(f"calibration needs encodings of at least 2 people, got {len(people_of(labels))}")
    if len(genuine) == 0:
        raise FacegateError("calibration needs at least one person with 2 usable photos (no genuine pairs)")
    os_genuine, os_stranger = open_set_distances(encodings, labels)
    eer = equal_error_rate(genuine, impostor)
    chosen = threshold_for_far(os_genuine, os_stranger, target_far)
    marks: dict[float, list[str]] = {}
    for t, name in ((chosen.threshold, "recommended"), (COURSE_THRESHOLD, "course"), (current_threshold, "current")):
        if t is not None:
            marks.setdefault(round(float(t), 6), []).append(name)
    table = []
    for t in sorted(set(TABLE_THRESHOLDS) | set(marks)):
        pair = rates_at(genuine, impostor, t)
        open_set = rates_at(os_genuine, os_stranger, t)
        table.append({"threshold": t, "pair_far": pair.far, "pair_frr": pair.frr,
                      "stranger_acceptance": open_set.far, "genuine_rejection": open_set.frr,
                      "mark": ", ".join(marks.get(t, []))})
    pair_at_chosen = rates_at(genuine, impostor, chosen.threshold)
    smallest = 1.0 / len(os_stranger)
    resolvable = target_far >= smallest
    note = None if resolvable else (
        f"{len(os_stranger)} strangers cannot show a rate below 1/{len(os_stranger)} = {pct(smallest)}, so a "
        f"target of {pct(target_far)} is not resolved: the recommended threshold let none of them in. "
        f"Calibrate on at least {int(np.ceil(1.0 / target_far)) if target_far > 0 else 'many more'} photos of "
        "several people to measure it.")
    report = {
        "people": len(people_of(labels)), "photos": len(labels),
        "pairs": {"genuine": len(genuine), "impostor": len(impostor)},
        "open_set": {"strangers": len(os_stranger), "genuine": len(os_genuine)},
        "target_far": target_far,
        "pair_eer": {"rate": eer.far, "threshold": eer.threshold},
        "recommended": {"threshold": chosen.threshold, "stranger_acceptance": chosen.far,
                        "genuine_rejection": chosen.frr, "pair_far": pair_at_chosen.far,
                        "pair_frr": pair_at_chosen.frr},
        "resolvable": resolvable, "note": note,
        "current_threshold": current_threshold,
        "table": table,
    }
    distances = {"genuine": genuine, "impostor": impostor, "open_set_genuine": os_genuine,
                 "open_set_stranger": os_stranger}
    return report, distances

