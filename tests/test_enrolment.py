"""The identity checks of enrolment on made-up encodings: a photo must look like the person it is stored under.

The same checks on the real models and photos, through ``facegate enroll``: tests/test_cli_people.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from edge.storage.enrolment import check_identity

T = 1.058  # the int8 FaceNet card's threshold
D = 128


@pytest.fixture
def faces(rng):
    """``face(k)``: k encodings of one made-up person (about 0.5 apart), a new person at every call."""

    def face(k: int) -> np.ndarray:
        centre = rng.standard_normal(D)
        centre /= np.linalg.norm(centre)
        rows = centre + 0.03 * rng.standard_normal((k, D))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    return face


def gallery(**people: np.ndarray) -> tuple[list[str], np.ndarray]:
    names = [name for name, rows in people.items() for _ in rows]
    return names, np.concatenate(list(people.values())) if people else np.empty((0, D), np.float32)


def test_new_photos_of_an_enrolled_person_pass_and_report_their_distances(faces):
    ann, bob = faces(6), faces(3)
    names, matrix = gallery(Ann=ann[:4], Bob=bob)
    verdict = check_identity("Ann", ann[4:], names, matrix, T, enrolled=True)
    assert verdict.problems == [None, None] and verdict.collateral == [None, None]
    for nearest, template in verdict.distances:
        assert 0.2 < nearest < 0.8 and 0.0 < template < nearest


def test_another_persons_photo_is_refused_for_an_enrolled_person(faces):
    ann, bob = faces(4), faces(2)
    names, matrix = gallery(Ann=ann)
    verdict = check_identity("Ann", bob, names, matrix, T, enrolled=True)
    for problem, (nearest, _) in zip(verdict.problems, verdict.distances, strict=True):
        assert problem is not None and nearest > T
        assert re.fullmatch(rf"does not look like Ann: distance {nearest:.2f} > threshold 1\.058; "
                            r"another person's photo\?", problem)


def test_a_photo_nearer_to_someone_else_is_refused_for_an_enrolled_person(faces):
    ann, bob = faces(3), faces(3)
    between = ann[0] * 0.45 + bob[0] * 0.55  # within the threshold of both, nearer to Bob
    between /= np.linalg.norm(between)
    names, matrix = gallery(Ann=ann, Bob=bob)
    verdict = check_identity("Ann", between[None], names, matrix, T, enrolled=True)
    assert verdict.problems[0] is not None and verdict.problems[0].startswith("looks more like Bob (distance 0.")
    assert "than like Ann (distance 0." in verdict.problems[0]


def test_a_new_persons_photos_must_look_alike(faces):
    cat, dan = faces(5), faces(1)
    batch = np.concatenate([cat[:2], dan, cat[2:]])
    verdict = check_identity("Cat", batch, [], np.empty((0, D), np.float32), T, enrolled=False)
    assert [p is None for p in verdict.problems] == [True, True, False, True, True, True]
    assert re.fullmatch(r"does not look like the other photos of Cat: distance 1\.\d\d > threshold 1\.058 to the "
                        r"nearest of the 5 that look alike; another person's photo\?", verdict.problems[2] or "")
    assert verdict.collateral == [None] * 6


def test_a_batch_of_two_people_in_equal_numbers_is_refused_whole(faces):
    batch = np.concatenate([faces(2), faces(2)])
    verdict = check_identity("Cat", batch, [], np.empty((0, D), np.float32), T, enrolled=False)
    assert all(p is not None and p.startswith("the photos of Cat do not look alike (2 groups of 2")
               for p in verdict.problems)
    single = check_identity("Cat", faces(1), [], np.empty((0, D), np.float32), T, enrolled=False)
    assert single.problems == [None]  # one photo: nothing to compare it with


def test_a_new_person_who_looks_like_someone_enrolled_is_refused_whole(faces):
    ann, bob = faces(6), faces(3)
    names, matrix = gallery(Ann=ann[:3], Bob=bob)
    stranger = faces(1)
    verdict = check_identity("Annie", np.concatenate([ann[3:], stranger]), names, matrix, T, enrolled=False)
    for problem in verdict.problems[:3]:
        assert problem is not None and re.fullmatch(
            r"looks like Ann \(distance 0\.\d\d\): the same person under another name\? --force to enrol anyway",
            problem)
    assert verdict.problems[3] is not None and "does not look like the other photos" in verdict.problems[3]
    fresh = check_identity("Eve", faces(3), names, matrix, T, enrolled=False)
    assert fresh.problems == [None] * 3 and fresh.collateral == [None] * 3


def test_one_photo_like_someone_enrolled_holds_back_the_whole_new_person(faces):
    ann = faces(3)
    other = faces(1)[0]
    chain = np.stack([(1 - t) * ann[0] + t * other for t in (0.3, 0.55, 0.8)])  # photos linked one to the next
    chain /= np.linalg.norm(chain, axis=1, keepdims=True)
    to_ann = np.linalg.norm(chain[:, None] - ann[None], axis=2).min(axis=1)
    assert to_ann[0] <= T < to_ann[2] and np.linalg.norm(chain[0] - chain[1]) <= T
    names, matrix = gallery(Ann=ann)
    verdict = check_identity("Annie", chain, names, matrix, T, enrolled=False)
    assert verdict.problems[0] is not None and verdict.problems[0].startswith("looks like Ann (distance 0.")
    assert verdict.problems[2] is None
    assert verdict.collateral[2] == ("not stored: other photos of Annie look like Ann: the same person under "
                                     "another name? --force to enrol anyway")


def test_a_name_enrolled_without_encodings_is_checked_as_a_new_person(faces):
    ann, bob = faces(2), faces(2)
    names, matrix = gallery(Bob=bob)
    verdict = check_identity("Ann", ann, names, matrix, T, enrolled=True)
    assert verdict.problems == [None, None] and verdict.distances == [None, None]


def test_distances_are_never_shown_on_the_wrong_side_of_the_threshold():
    from edge.storage.enrolment import _shown

    assert _shown(1.31, T) == "1.31" and _shown(0.62, T) == "0.62"
    assert _shown(1.0581, T) == "1.06"
    assert _shown(1.0575, T) == "1.0575"  # "1.06" would be above the threshold it is within
    assert _shown(1.058, T) == "1.0580"
