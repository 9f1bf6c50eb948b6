"""The badge+face state machine, pure: a badge opens a window, the first faces in it decide, outcomes as reasons."""

from __future__ import annotations

import pytest

from edge.core import access as a
from edge.core.access import BadgeFaceSession

T = 1.0  # the 1:1 threshold of these tests


def session(**kw) -> BadgeFaceSession:
    kw.setdefault("window_seconds", 5.0)
    kw.setdefault("votes_needed", 2)
    kw.setdefault("votes_window", 3)
    return BadgeFaceSession(**kw)


def reasons(outcomes) -> list[str]:
    return [o.reason for o in outcomes]


def test_two_matching_faces_within_the_window_grant_the_badge_holder():
    s = session()
    assert s.badge(10.0, "Ada", "fp-ada") == [] and s.pending == "Ada"
    assert s.face(11.0, 0.6, T) == []
    (granted,) = s.face(11.2, 0.7, T)
    assert granted.granted and granted.person == "Ada" and granted.badge == "fp-ada"
    assert granted.distance == 0.6 and granted.faces == 2 and s.pending is None


def test_faces_that_do_not_match_end_the_window_after_the_tries_it_allows():
    s = session()
    s.badge(0.0, "Ada", "fp")
    assert s.face(0.1, 1.3, T) == []  # one miss: two matches out of three are still possible
    (refused,) = s.face(0.2, 1.2, T)  # two misses: they no longer are
    assert refused.reason == a.BADGE_FACE_MISMATCH and refused.faces == 2 and refused.distance == 1.2
    assert s.pending is None
    assert reasons(s.face(0.3, 0.5, T)) == [a.FACE_WITHOUT_BADGE]  # the right face comes too late: a new badge


def test_one_miss_then_two_matches_still_opens():
    s = session()
    s.badge(0.0, "Ada", "fp")
    assert s.face(0.1, 1.3, T) == [] and s.face(0.2, 0.9, T) == []
    assert reasons(s.face(0.3, 0.8, T)) == [a.GRANTED]


def test_a_distance_at_the_threshold_matches_and_none_never_does():
    s = session(votes_needed=1, votes_window=1)
    s.badge(0.0, "Ada", "fp")
    assert reasons(s.face(0.1, T, T)) == [a.GRANTED]
    s.badge(1.0, "Ada", "fp")
    assert reasons(s.face(1.1, None, T)) == [a.BADGE_FACE_MISMATCH]  # no template: never a match


def test_a_window_that_runs_out_is_a_badge_without_face_or_a_mismatch():
    s = session()
    s.badge(0.0, "Ada", "fp")
    assert s.expire(4.99) == []
    (out,) = s.expire(5.0)
    assert out.reason == a.BADGE_WITHOUT_FACE and out.person == "Ada" and out.faces == 0
    s.badge(10.0, "Ada", "fp")
    s.face(11.0, 1.5, T)
    assert reasons(s.expire(15.0)) == [a.BADGE_FACE_MISMATCH]
    s.badge(20.0, "Ada", "fp")
    assert reasons(s.face(25.5, 0.5, T)) == [a.BADGE_WITHOUT_FACE, a.FACE_WITHOUT_BADGE]  # too late for the window


def test_a_face_without_a_badge_and_an_unknown_badge():
    s = session()
    (out,) = s.face(0.0, None, T)
    assert out.reason == a.FACE_WITHOUT_BADGE and out.person is None
    (out,) = s.badge(1.0, None, "fp-x")
    assert out.reason == a.UNKNOWN_BADGE and out.badge == "fp-x" and s.pending is None


def test_a_second_badge_ends_the_first_window_first():
    s = session()
    s.badge(0.0, "Ada", "fp-a")
    s.face(0.5, 1.4, T)
    (first,) = s.badge(1.0, "Bob", "fp-b")
    assert first.reason == a.BADGE_FACE_MISMATCH and first.person == "Ada"
    assert s.pending == "Bob"
    s.refuse()
    assert s.pending is None and s.expire(100.0) == []


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        BadgeFaceSession(window_seconds=0)
    with pytest.raises(ValueError):
        BadgeFaceSession(votes_needed=3, votes_window=2)
