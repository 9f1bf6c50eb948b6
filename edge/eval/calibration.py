"""Which threshold? Error rates of an encoder on labelled photos, for photo pairs and for the open set.

A face is accepted when its L2 distance (between unit-length encodings, 0..2) is below the threshold. Pair rates
compare two photos at a time; the *open set* compares each photo, its person left out, with everyone else's
photos, as the door meets a stranger. Pair rates understate the door's risk: a stranger is compared with every
stored encoding at once and gets in if *any* is close enough. The threshold to ship is the largest whose
open-set stranger acceptance is at most the target.

:func:`site_calibration` measures the door's own 1:N rule (templates, a threshold derived for a target FPIR at the
number enrolled, :mod:`edge.core.openset`) on a store's people: ``facegate calibrate --site``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.core.openset import derive_threshold, people_key, stranger_distances, templates
from edge.errors import FacegateError
from edge.eval.evaluation import rate_record
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



def site_calibration(names: Sequence[str], matrix: np.ndarray, *, reference: np.ndarray | None,
                     folder: np.ndarray | None, card_threshold: float, target_fpir: float) -> dict:
    """The door's 1:N threshold for the people of a store, derived from the site's strangers, and what it does.

    Args:
        names, matrix: the store's encodings (``names[i]`` is the person of row ``i`` of the ``(n, d)`` matrix).
        reference: the model's reference strangers ``(R, d)``, or ``None``.
        folder: encodings of local strangers ``(F, d)`` (one face of one stranger each), or ``None``.
        card_threshold, target_fpir: as :func:`edge.core.openset.derive_threshold` takes them.

    The strangers are the reference strangers, every stored encoding with its own person left out (against the
    other people's templates), and the folder's faces; :func:`derive_threshold` gives each group's threshold
    for the number enrolled, and the smallest is the site's (so the calibration can only tighten the door:
    pooled, faraway strangers would make room for close ones). At that threshold: the FPIR of each group (a
    stranger is let in when their nearest template is within it), and the FNIR leave-one-out (each encoding
    against its person's template made without it and the others' templates: missed unless the nearest is its own
    person, within the threshold; a person with one encoding cannot be measured so).

    Returns:
        A JSON-ready record: ``threshold``, ``target_fpir``, ``people``, ``people_key``, ``comparisons``,
        ``strangers`` (per group), ``fnir`` and ``fpir`` (per group and ``all``: :func:`rate_record` figures),
        ``card_threshold``, ``note`` (the derivation's), ``notes`` (what the data can and cannot show) and
        ``folder_let_in`` (``{"index", "as", "distance"}`` of each folder stranger let in).

    Raises:
        FacegateError: fewer than 2 people (nobody to leave out against the others).
    """
    names = list(names)
    matrix = np.asarray(matrix, np.float32)
    people, rows = templates(names, matrix)
    if len(people) < 2:
        raise FacegateError(f"a site calibration needs at least 2 people enrolled, the store has {len(people)}"
                            + (f" ({people[0]})" if people else ""))
    width = rows.shape[1]
    index = {person: i for i, person in enumerate(people)}
    own = np.array([index[name] for name in names], np.int64)
    groups = {"reference": _rows(reference, width), "left_out_people": matrix, "folder": _rows(folder, width)}
    excluded = {"reference": np.full(len(groups["reference"]), -1, np.int64), "left_out_people": own,
                "folder": np.full(len(groups["folder"]), -1, np.int64)}
    # One threshold per group of strangers, and the smallest of them: pooled, strangers far from everyone
    # enrolled would make room for close ones (a folder unlike the door's visitors would loosen the door); this
    # way a site calibration can only tighten what the reference strangers alone give.
    per_group = {group: derive_threshold(rows, encodings, card_threshold=card_threshold, target_fpir=target_fpir,
                                         exclude=excluded[group])
                 for group, encodings in groups.items() if len(encodings)}
    decided_by = min(per_group, key=lambda group: per_group[group].value)
    threshold = per_group[decided_by]
    fpir, nearest = {}, {}
    for group, encodings in groups.items():
        distances = stranger_distances(encodings, rows, excluded[group])
        closest = distances.argmin(axis=1) if len(encodings) else np.empty(0, np.int64)
        nearest[group] = (closest, distances[np.arange(len(encodings)), closest])
        fpir[group] = rate_record(int(np.sum(nearest[group][1] <= threshold.value)), len(encodings))
    let_in = sum(f["count"] for f in fpir.values())
    fpir["all"] = rate_record(let_in, sum(len(e) for e in groups.values()))
    fnir = _leave_one_out_fnir(names, matrix, people, rows, threshold.value)
    closest, distances = nearest["folder"]
    report = {
        "threshold": threshold.value, "target_fpir": target_fpir, "people": len(people),
        "people_key": people_key(names), "comparisons": threshold.comparisons,
        "strangers": {group: len(encodings) for group, encodings in groups.items()},
        "fnir": fnir, "fpir": fpir, "card_threshold": card_threshold, "note": threshold.note,
        "group_thresholds": {group: th.value for group, th in per_group.items()}, "decided_by": decided_by,
        "folder_let_in": [{"index": int(i), "as": people[closest[i]], "distance": round(float(distances[i]), 4)}
                          for i in np.flatnonzero(distances <= threshold.value)],
    }
    report["notes"] = _site_notes(report)
    return report


def _rows(encodings: np.ndarray | None, width: int) -> np.ndarray:
    return np.empty((0, width), np.float32) if encodings is None else np.asarray(encodings, np.float32)


def _leave_one_out_fnir(names: list[str], matrix: np.ndarray, people: list[str], rows: np.ndarray,
                        threshold: float) -> dict:
    """Each stored encoding against its person's template made without it and everyone else's templates."""
    rows_of: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        rows_of.setdefault(name, []).append(i)
    position = {person: k for k, person in enumerate(people)}
    missed = wrong = measured = single = 0
    for i, name in enumerate(names):
        mine = [j for j in rows_of[name] if j != i]
        if not mine:
            single += 1
            continue
        k = position[name]
        probe = rows.copy()
        probe[k] = templates([name] * len(mine), matrix[mine])[1][0]
        distances = stranger_distances(matrix[i:i + 1], probe)[0]
        nearest = int(distances.argmin())
        measured += 1
        if nearest != k or distances[nearest] > threshold:
            missed += 1
            if nearest != k and distances[nearest] <= threshold:
                wrong += 1
    return {**rate_record(missed, measured), "as_someone_else": wrong, "single_encoding": single}


def _site_notes(r: dict) -> list[str]:
    """What a site calibration's data can and cannot show, one sentence each."""
    groups, fnir, target = r["strangers"], r["fnir"], r["target_fpir"]
    total = sum(groups.values())
    notes = [f"{total} strangers cannot show an FPIR below 1/{total} = {pct(1.0 / total)}"
             + ("" if target >= 1.0 / total else f": the target of {100 * target:g}% is not resolved by them")]
    fmr = 1.0 - (1.0 - target) ** (1.0 / r["people"])
    if fmr < 1.0 / r["comparisons"]:
        notes.append(f"the target at {r['people']} people is a false-match rate of {fmr:.1e} per comparison, below "
                     f"1/{r['comparisons']} comparisons: not resolved (the threshold lets none of them in)")
    notes.append(f"the {groups['left_out_people']} left-out encodings are {r['people']} people, not "
                 f"{groups['left_out_people']} independent strangers")
    if fnir["total"]:
        notes.append(f"{fnir['total']} leave-one-out encodings cannot show an FNIR below 1/{fnir['total']} = "
                     f"{pct(1.0 / fnir['total'])}; enrolment photos are kinder than door frames (light, pose, "
                     "distance)")
    if fnir["single_encoding"]:
        notes.append(f"{fnir['single_encoding']} people with a single encoding cannot be measured leave-one-out")
    if not groups["folder"]:
        notes.append("no photos of local strangers (--strangers DIR): the site's own visitors are not measured")
    return notes
