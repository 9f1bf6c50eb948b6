"""Enrolment: every photo through the quality gate (:mod:`edge.core.quality`), the ones that pass encoded,
checked against who they claim to be, and added to the store under one name, all in one transaction.

A name is looked up by key (:func:`edge.core.names.name_key`): ``"ben_afflek "`` or ``"BEN_AFFLEK"`` adds to
an enrolled ``ben_afflek``. Because a wrong photo stored under a person opens the door for whoever it shows,
each new face must look like the person it is added to (the *identity checks*, all at the model's threshold,
the distance ``who_is_it`` accepts a match at):

* **an enrolled person**: a photo farther than the threshold from the person's nearest stored encoding is
  refused ("does not look like ..."), and so is one nearer (within the threshold) to another person than to
  them. The distance to the person's mean template (the normalised mean of their encodings) is reported too.
* **a new person**: the photos of the batch must look like each other: they are grouped by "within the
  threshold of one another" (linked chains), the largest group is kept and a photo outside it is refused (a
  tie keeps none). Then, if a kept photo is within the threshold of another person's stored encoding, the
  new person is refused whole and flagged ("looks like ...: the same person under another name?").

``force`` waives the size, sharpness and one-face checks and the identity checks (never a photo that cannot
be read or shows no face); every check it waived is reported in :attr:`EnrolResult.forced`. Everything is
checked before anything is stored, and the accepted encodings are added in one transaction. The checks read
the store just before that transaction, not inside it: an enrolment of the same person by another process in
between is not seen by them (the store still adds to one person per name key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.core.names import check_name
from edge.core.quality import MIN_FACE_PX, MIN_SHARPNESS, PhotoCheck, check_photo

log = logging.getLogger(__name__)


@dataclass
class EnrolResult:
    """What :func:`enrol` did.

    ``name`` is the person's stored spelling (an enrolled person's own when the name given has their key);
    ``existing`` how many encodings they had before (``None``: a new person); ``added`` the photos stored, with
    their store ids; ``rejected`` the ones refused, with why; ``forced`` the photos stored only because of
    ``force``, with the check each failed; ``distances`` for each photo checked against an enrolled person,
    its distance to their nearest stored encoding and to their mean template.
    """

    name: str
    existing: int | None = None
    added: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    forced: list[tuple[str, str]] = field(default_factory=list)
    distances: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class IdentityVerdict:
    """The identity checks on one batch: per photo, its own failed check (``problems``; waived by force) or why
    it goes with the batch's refusal (``collateral``; stored with force), and distances to the person."""

    problems: list[str | None]
    collateral: list[str | None]
    distances: list[tuple[float, float] | None]


def enrol(store: Any, name: str, photos: list, model: Any, *, force: bool = False, min_face_px: float = MIN_FACE_PX,
          min_sharpness: float = MIN_SHARPNESS, progress: Callable[[int], None] | None = None) -> EnrolResult:
    """Check every photo, encode the ones that pass, check them against the person and add them to ``store``.

    ``name`` is looked up by key; an enrolled person is added to under their stored spelling. All accepted
    encodings are added in one transaction: either all of them are stored or none.

    Raises:
        StoreInputError: a bad name (before any photo is read).
        StoreError: the name matches several enrolled people, or the store cannot be read or written.
    """
    name = check_name(name)  # a bad name fails before any photo is read
    person = store.person(name)
    result = EnrolResult(name if person is None else person.name, None if person is None else person.encodings)
    accepted: list[PhotoCheck] = []
    for photo in photos:
        check = check_photo(photo, model, min_face_px=min_face_px, min_sharpness=min_sharpness)
        if check.reason is None:
            accepted.append(check)
        elif force and check.crop is not None:  # a face was found: its size, sharpness or company is waived
            log.warning("%s accepted with --force despite: %s", check.source, check.reason)
            result.forced.append((check.source, check.reason))
            accepted.append(check)
        else:
            result.rejected.append((check.source, check.reason))
        if progress:
            progress(1)
    if not accepted:
        return result
    encodings = model.encoder.encode(np.stack([c.crop for c in accepted if c.crop is not None]))
    names, matrix = store.matrix()
    verdict = check_identity(result.name, encodings, names, matrix, float(model.threshold),
                             enrolled=person is not None)
    keep = []
    for i, check in enumerate(accepted):
        problem, collateral, distances = verdict.problems[i], verdict.collateral[i], verdict.distances[i]
        if distances is not None:
            result.distances[check.source] = distances
        if problem is None and collateral is None:
            keep.append(i)
        elif force:
            if problem is not None:
                log.warning("%s accepted with --force despite: %s", check.source, problem)
                result.forced.append((check.source, problem))
            keep.append(i)
        else:
            result.rejected.append((check.source, problem or collateral or ""))
    if keep:
        ids = store.add(result.name, encodings[keep], sources=[accepted[i].source for i in keep],
                        qualities=[accepted[i].sharpness for i in keep])
        result.added = [(accepted[i].source, row) for i, row in zip(keep, ids, strict=True)]
    return result


def check_identity(name: str, new: np.ndarray, names: Sequence[str], matrix: np.ndarray, threshold: float, *,
                   enrolled: bool) -> IdentityVerdict:
    """The identity checks of the ``(k, d)`` encodings ``new`` to be stored under ``name`` (see the module
    docstring), given everything stored (``names[i]`` is the person of row ``i`` of ``matrix``).

    ``enrolled``: ``name`` is an enrolled person (its stored spelling); one without stored encodings is
    checked as a new person.
    """
    own = np.array([n == name for n in names], dtype=bool)
    others = [n for n, mine in zip(names, own, strict=True) if not mine]
    other_matrix = matrix[~own]
    near_other: list[tuple[float, str]] = []
    if others:
        d = _distances(new, other_matrix)
        near_other = [(float(d[i, j]), others[j]) for i, j in enumerate(np.argmin(d, axis=1))]
    if enrolled and own.any():
        return _check_against_person(name, new, matrix[own], near_other, threshold)
    return _check_new_person(name, new, near_other, threshold)


def _check_against_person(name: str, new: np.ndarray, stored: np.ndarray, near_other: list[tuple[float, str]],
                          threshold: float) -> IdentityVerdict:
    """New photos of an enrolled person: each within the threshold of their nearest stored encoding, and not
    nearer to someone else (within the threshold)."""
    nearest = _distances(new, stored).min(axis=1)
    mean = stored.astype(np.float64).mean(axis=0)
    template = mean / max(float(np.linalg.norm(mean)), 1e-12)
    to_template = np.linalg.norm(new.astype(np.float64) - template, axis=1)
    problems: list[str | None] = []
    for i, dist in enumerate(nearest):
        problem = None
        if dist > threshold:
            problem = (f"does not look like {name}: distance {_shown(dist, threshold)} > threshold {threshold:.3f}; "
                       "another person's photo?")
        elif near_other and near_other[i][0] <= threshold and near_other[i][0] < dist:
            other, who = near_other[i]
            problem = (f"looks more like {who} (distance {_shown(other, threshold)}) than like {name} "
                       f"(distance {_shown(dist, threshold)}); another person's photo?")
        problems.append(problem)
    return IdentityVerdict(problems, [None] * len(new),
                    [(float(a), float(b)) for a, b in zip(nearest, to_template, strict=True)])


def _check_new_person(name: str, new: np.ndarray, near_other: list[tuple[float, str]],
                      threshold: float) -> IdentityVerdict:
    """The photos of a new person: they must look like each other, and like nobody enrolled."""
    k = len(new)
    problems: list[str | None] = [None] * k
    collateral: list[str | None] = [None] * k
    keep = list(range(k))
    if k > 1:
        d = _distances(new, new)
        groups = _groups(d <= threshold)
        group_of = np.empty(k, dtype=int)
        for g, members in enumerate(groups):
            group_of[members] = g
        largest = max(len(g) for g in groups)
        top = [g for g in groups if len(g) == largest]
        keep = top[0] if len(top) == 1 else []
        for i in range(k):
            if i in keep:
                continue
            if keep:
                dist = float(d[i, keep].min())
                problems[i] = (f"does not look like the other photos of {name}: distance {_shown(dist, threshold)} "
                               f"> threshold {threshold:.3f} to the nearest of the {len(keep)} that look alike; "
                               "another person's photo?")
            else:  # a tie: no group is the person more than another
                dist = float(d[i, group_of != group_of[i]].min())
                problems[i] = (f"the photos of {name} do not look alike ({len(top)} groups of {largest}, distance "
                               f"{_shown(dist, threshold)} > threshold {threshold:.3f} to the nearest other): "
                               "enrol one person at a time")
    matches = [i for i in keep if near_other and near_other[i][0] <= threshold]
    for i in matches:
        dist, who = near_other[i]
        problems[i] = (f"looks like {who} (distance {_shown(dist, threshold)}): the same person under another name? "
                       "--force to enrol anyway")
    if matches:
        who = near_other[min(matches, key=lambda i: near_other[i][0])][1]
        for i in keep:
            if problems[i] is None:
                collateral[i] = (f"not stored: other photos of {name} look like {who}: the same person under "
                                 "another name? --force to enrol anyway")
    return IdentityVerdict(problems, collateral, [None] * k)


def _groups(linked: np.ndarray) -> list[list[int]]:
    """The connected groups of a symmetric ``(k, k)`` boolean matrix (``linked[i, j]``: i and j look alike),
    each sorted, in the order of their first member."""
    k = len(linked)
    seen = [False] * k
    groups = []
    for start in range(k):
        if seen[start]:
            continue
        seen[start] = True
        group, todo = [], [start]
        while todo:
            i = todo.pop()
            group.append(i)
            for j in np.flatnonzero(linked[i]):
                if not seen[j]:
                    seen[j] = True
                    todo.append(int(j))
        groups.append(sorted(group))
    return groups


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``(len(a), len(b))`` L2 distances between the rows of ``a`` and ``b``, in float64."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a64 * a64).sum(axis=1)[:, None] + (b64 * b64).sum(axis=1)[None, :] - 2.0 * (a64 @ b64.T)
    return np.sqrt(np.clip(squared, 0.0, None))


def _shown(distance: float, threshold: float) -> str:
    """``distance`` with 2 decimals, or 4 where 2 would put it on the wrong side of (or on) the threshold."""
    short = f"{distance:.2f}"
    if float(short) == threshold or (float(short) > threshold) != (distance > threshold):
        return f"{distance:.4f}"
    return short
