"""The unlock rule: k of n frames for the same person, within a window, big enough, with cooldowns."""

from __future__ import annotations

import pytest

from edge.core.decision import DoorDecider, Sighting


def see(decider, t, who, dist=0.6, px=150.0):
    return decider.observe(Sighting(t, who, dist, px))


def test_one_frame_never_opens_two_of_three_do():
    d = DoorDecider(votes_needed=2, votes_window=3, window_seconds=2.0)
    assert see(d, 0.0, "ann").unlock is None
    decision = see(d, 0.2, "ann", dist=0.7)
    assert decision.unlock == "ann" and decision.distance == pytest.approx(0.7)


def test_votes_must_be_for_the_same_person_and_recent():
    d = DoorDecider(votes_needed=2, votes_window=3, window_seconds=1.0)
    assert see(d, 0.0, "ann").unlock is None
    assert see(d, 0.1, "bob").unlock is None
    assert see(d, 0.2, "cat").unlock is None  # ann's vote has left the 3-frame window
    assert see(d, 0.3, "ann").unlock is None
    assert see(d, 5.0, "ann").unlock is None  # 4.7 s after the previous ann: outside the time window
    assert see(d, 5.1, "ann").unlock == "ann"


def test_frames_without_a_face_push_votes_out():
    d = DoorDecider(votes_needed=2, votes_window=2)
    see(d, 0.0, "ann")
    d.no_face(0.1)
    assert see(d, 0.2, "ann").unlock is None


def test_small_faces_do_not_vote():
    d = DoorDecider(votes_needed=2, min_face_px=80)
    assert see(d, 0.0, "ann", px=60).unlock is None
    assert see(d, 0.1, "ann", px=60).unlock is None
    assert see(d, 0.2, "ann", px=100).unlock is None
    assert see(d, 0.3, "ann", px=100).unlock == "ann"


def test_cooldown_per_person():
    d = DoorDecider(votes_needed=1, votes_window=1, cooldown_seconds=10)
    assert see(d, 0.0, "ann").unlock == "ann"
    assert see(d, 3.0, "ann").unlock is None
    assert see(d, 4.0, "bob").unlock == "bob"  # someone else is not held up by ann's cooldown
    assert see(d, 10.5, "ann").unlock == "ann"


def test_unknown_faces_are_reported_at_a_limited_rate_and_never_unlock():
    d = DoorDecider(unknown_report_interval_seconds=10)
    reports = [see(d, t * 0.5, None, dist=1.3).report_unknown for t in range(40)]  # 20 s of a stranger
    assert reports.count(True) == 2 and reports[0]
    assert all(see(d, 30 + t, None).unlock is None for t in range(5))


def test_bad_settings():
    with pytest.raises(ValueError):
        DoorDecider(votes_needed=4, votes_window=3)
