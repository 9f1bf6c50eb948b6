"""The access policy, pure: schedules on a site's wall clock (DST changes, overnight ranges), validity ending at the
site's midnight, holidays, lockdown, the order of the reasons, and the overlap check."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from edge.core import access as a
from edge.core.access import DoorPolicy, PersonAccess, evaluate
from edge.core.schedule import Period, Schedule, TimeRange, overlaps, parse_weekdays

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
STAFF = PersonAccess("Ada", frozenset({"staff"}))
CLEANER = PersonAccess("Bob", frozenset({"cleaning"}))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def policy(*schedules: Schedule, **kw) -> DoorPolicy:
    return DoorPolicy(timezone=BERLIN, schedules=tuple(schedules) if schedules else None, **kw)


def open_minutes(p: DoorPolicy, person: PersonAccess, start: datetime, hours: int) -> int:
    """How many real (UTC) minutes from ``start`` on the door grants ``person``."""
    return sum(evaluate(person, p, start + timedelta(minutes=m)).granted for m in range(hours * 60))


# -- the default policy: everyone, every hour --------------------------------------------------------------------


def test_default_policy_admits_everyone_enrolled_at_any_hour():
    nobody_in_a_group = PersonAccess("Eve")
    for hour in range(0, 24 * 7, 5):
        assert evaluate(nobody_in_a_group, DoorPolicy(), utc(2025, 3, 24) + timedelta(hours=hour)) == a.Verdict(
            True, a.GRANTED)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        evaluate(STAFF, DoorPolicy(), datetime(2025, 1, 1, 12))


# -- weekly hours and daylight saving time (Europe/Berlin) ------------------------------------------------------


def test_hours_are_the_sites_wall_clock_winter_and_summer():
    p = policy(Schedule.parse(["mon-fri"], ["07:00-19:00"]))
    # winter (CET, UTC+1): 07:00 local is 06:00 UTC
    assert not evaluate(STAFF, p, utc(2025, 1, 6, 5, 59, 59)).granted
    assert evaluate(STAFF, p, utc(2025, 1, 6, 6, 0, 0)).granted
    assert evaluate(STAFF, p, utc(2025, 1, 6, 17, 59, 59)).granted
    assert evaluate(STAFF, p, utc(2025, 1, 6, 18, 0, 0)).reason == a.OUTSIDE_HOURS
    # summer (CEST, UTC+2): 07:00 local is 05:00 UTC
    assert evaluate(STAFF, p, utc(2025, 7, 7, 5, 0, 0)).granted
    assert not evaluate(STAFF, p, utc(2025, 7, 7, 4, 59, 59)).granted
    # Saturday
    assert evaluate(STAFF, p, utc(2025, 7, 5, 10)).reason == a.OUTSIDE_HOURS


def test_spring_forward_the_missing_hour_never_opens():
    """Sunday 30 March 2025: 02:00 CET becomes 03:00 CEST."""
    none_of_it = policy(Schedule.parse(["sun"], ["02:00-03:00"]))
    assert open_minutes(none_of_it, STAFF, utc(2025, 3, 29, 20), 12) == 0
    around_it = policy(Schedule.parse(["sun"], ["01:30-03:30"]))
    assert open_minutes(around_it, STAFF, utc(2025, 3, 29, 20), 12) == 60  # 01:30-02:00 CET + 03:00-03:30 CEST
    assert evaluate(STAFF, around_it, utc(2025, 3, 30, 0, 59, 59)).granted  # 01:59:59 CET
    assert evaluate(STAFF, around_it, utc(2025, 3, 30, 1, 0, 0)).granted  # 03:00:00 CEST


def test_fall_back_the_repeated_hour_is_open_both_times():
    """Sunday 26 October 2025: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice."""
    p = policy(Schedule.parse(["sun"], ["02:00-03:00"]))
    assert open_minutes(p, STAFF, utc(2025, 10, 25, 20), 12) == 120
    assert evaluate(STAFF, p, utc(2025, 10, 26, 0, 0)).granted  # 02:00 CEST
    assert evaluate(STAFF, p, utc(2025, 10, 26, 1, 59)).granted  # 02:59 CET, the second time
    assert not evaluate(STAFF, p, utc(2025, 10, 26, 2, 0)).granted  # 03:00 CET


def test_overnight_range_runs_into_the_next_morning_and_belongs_to_the_day_it_starts():
    p = policy(Schedule.parse(["fri"], ["22:00-06:00"]))
    assert evaluate(CLEANER, p, utc(2025, 1, 10, 21, 0)).granted  # Fri 22:00 CET
    assert evaluate(CLEANER, p, utc(2025, 1, 11, 4, 59, 59)).granted  # Sat 05:59:59
    assert evaluate(CLEANER, p, utc(2025, 1, 11, 5, 0)).reason == a.OUTSIDE_HOURS  # Sat 06:00
    assert evaluate(CLEANER, p, utc(2025, 1, 11, 21, 30)).reason == a.OUTSIDE_HOURS  # Sat 22:30: no Saturday range
    assert evaluate(CLEANER, p, utc(2025, 1, 10, 4, 0)).reason == a.OUTSIDE_HOURS  # Fri 05:00: Thursday's spill
    assert open_minutes(p, CLEANER, utc(2025, 1, 10, 12), 24) == 8 * 60


def test_overnight_range_across_spring_forward_is_an_hour_shorter_and_across_fall_back_an_hour_longer():
    p = policy(Schedule.parse(["sat"], ["22:00-06:00"]))
    assert open_minutes(p, CLEANER, utc(2025, 3, 29, 12), 24) == 7 * 60  # Sat 22:00 CET to Sun 06:00 CEST
    assert open_minutes(p, CLEANER, utc(2025, 10, 25, 12), 24) == 9 * 60  # Sat 22:00 CEST to Sun 06:00 CET
    assert evaluate(CLEANER, p, utc(2025, 3, 30, 3, 59)).granted  # 05:59 CEST
    assert not evaluate(CLEANER, p, utc(2025, 3, 30, 4, 0)).granted  # 06:00 CEST


def test_overnight_range_of_sunday_wraps_into_monday():
    p = policy(Schedule.parse(["sun"], ["23:00-01:00"]))
    assert evaluate(STAFF, p, utc(2025, 1, 12, 23, 30)).granted  # Mon 00:30 CET
    assert not evaluate(STAFF, p, utc(2025, 1, 13, 0, 30)).granted  # Mon 01:30


def test_a_whole_day_and_a_range_ending_at_midnight():
    whole = policy(Schedule.parse(["wed"], ["00:00-24:00"]))
    assert open_minutes(whole, STAFF, utc(2025, 1, 7, 12), 48) == 24 * 60
    evening = policy(Schedule.parse(["wed"], ["18:00-24:00"]))
    assert evaluate(STAFF, evening, utc(2025, 1, 8, 22, 59, 59)).granted  # Wed 23:59:59
    assert not evaluate(STAFF, evening, utc(2025, 1, 8, 23, 0)).granted  # Thu 00:00


# -- validity: dates in the site's zone, ending at its midnight -------------------------------------------------


def test_validity_ends_at_midnight_in_the_sites_zone_winter_and_summer():
    p = DoorPolicy(timezone=BERLIN)
    winter = PersonAccess("Ann", valid_until=date(2025, 1, 31))
    assert evaluate(winter, p, utc(2025, 1, 31, 22, 59, 59)).granted  # 23:59:59 CET on the last day
    assert evaluate(winter, p, utc(2025, 1, 31, 23, 0, 0)).reason == a.EXPIRED  # 00:00 CET the day after
    summer = PersonAccess("Ann", valid_until=date(2025, 7, 31))
    assert evaluate(summer, p, utc(2025, 7, 31, 21, 59, 59)).granted
    assert evaluate(summer, p, utc(2025, 7, 31, 22, 0, 0)).reason == a.EXPIRED
    # the same instants judged in UTC would still be valid: the zone is what decides
    assert evaluate(summer, DoorPolicy(), utc(2025, 7, 31, 22, 0, 0)).granted


def test_validity_ending_on_the_day_of_spring_forward_ends_at_midnight_cest():
    p = DoorPolicy(timezone=BERLIN)
    person = PersonAccess("Ann", valid_until=date(2025, 3, 30))
    assert evaluate(person, p, utc(2025, 3, 30, 21, 59, 59)).granted
    assert evaluate(person, p, utc(2025, 3, 30, 22, 0, 0)).reason == a.EXPIRED


def test_validity_starts_at_midnight_of_its_first_day():
    p = DoorPolicy(timezone=BERLIN)
    person = PersonAccess("Ann", valid_from=date(2025, 2, 1))
    assert evaluate(person, p, utc(2025, 1, 31, 22, 59, 59)).reason == a.NOT_YET_VALID
    assert evaluate(person, p, utc(2025, 1, 31, 23, 0, 0)).granted


def test_a_validity_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="before valid_from"):
        PersonAccess("Ann", valid_from=date(2025, 2, 1), valid_until=date(2025, 1, 31))


# -- groups, holidays, lockdown, precedence ----------------------------------------------------------------------


def test_groups_and_per_group_schedules():
    p = policy(Schedule.parse(["mon-fri"], ["07:00-19:00"], groups=["staff"]),
               Schedule.parse(["mon-fri"], ["22:00-06:00"], groups=["cleaning"]),
               groups=frozenset({"staff", "cleaning"}))
    monday_noon, monday_night = utc(2025, 1, 6, 11), utc(2025, 1, 6, 22)
    assert evaluate(STAFF, p, monday_noon).granted and not evaluate(STAFF, p, monday_night).granted
    assert evaluate(CLEANER, p, monday_night).granted
    assert evaluate(CLEANER, p, monday_noon).reason == a.OUTSIDE_HOURS
    visitor = PersonAccess("Vic", frozenset({"visitors"}))
    assert evaluate(visitor, p, monday_noon).reason == a.NOT_IN_GROUP
    assert evaluate(PersonAccess("Nobody"), p, monday_noon).reason == a.NOT_IN_GROUP


def test_holidays_shut_the_schedules_unless_a_schedule_says_holidays():
    christmas = frozenset({date(2025, 12, 25)})
    p = policy(Schedule.parse(["mon-fri"], ["07:00-19:00"]), holidays=christmas)
    assert evaluate(STAFF, p, utc(2025, 12, 25, 10)).reason == a.HOLIDAY_CLOSED  # Thursday
    assert evaluate(STAFF, p, utc(2025, 12, 24, 10)).granted
    # no schedule at all (every hour) is shut on holidays too
    assert evaluate(STAFF, DoorPolicy(timezone=BERLIN, holidays=christmas), utc(2025, 12, 25, 10)).reason == "holiday"
    security = policy(Schedule.parse(["mon-sun"], ["00:00-24:00"], holidays=True), holidays=christmas)
    assert evaluate(STAFF, security, utc(2025, 12, 25, 10)).granted


def test_an_overnight_range_starting_the_evening_before_a_holiday_stays_open_into_it():
    p = policy(Schedule.parse(["mon-fri"], ["22:00-06:00"]), holidays=frozenset({date(2025, 12, 25)}))
    assert evaluate(CLEANER, p, utc(2025, 12, 25, 2)).granted  # Thu 03:00, Wednesday night's range
    assert evaluate(CLEANER, p, utc(2025, 12, 25, 21, 30)).reason == a.HOLIDAY_CLOSED  # Thu 22:30 starts on the day
    assert evaluate(CLEANER, p, utc(2025, 12, 26, 2)).reason == a.HOLIDAY_CLOSED  # Fri 03:00, its spill


def test_lockdown_windows_and_the_commanded_lockdown_beat_everything():
    weekly = policy(lockdown_weekly=(Schedule.parse(["sun"], ["00:00-24:00"]),))
    assert evaluate(STAFF, weekly, utc(2025, 1, 12, 10)).reason == a.LOCKDOWN
    assert evaluate(STAFF, weekly, utc(2025, 1, 13, 10)).granted
    once = policy(lockdown_periods=(Period(datetime(2025, 12, 24, 18), datetime(2025, 12, 27, 6)),))
    assert evaluate(STAFF, once, utc(2025, 12, 24, 16, 59)).granted  # 17:59 CET
    assert evaluate(STAFF, once, utc(2025, 12, 24, 17, 0)).reason == a.LOCKDOWN
    assert evaluate(STAFF, once, utc(2025, 12, 27, 5, 0)).granted  # 06:00 CET
    assert evaluate(STAFF, DoorPolicy(), utc(2025, 1, 1), lockdown=True).reason == a.LOCKDOWN
    assert evaluate(None, DoorPolicy(), utc(2025, 1, 1), lockdown=True).reason == a.LOCKDOWN


def test_reasons_come_in_their_documented_order():
    p = policy(Schedule.parse(["mon"], ["07:00-08:00"]), groups=frozenset({"staff"}))
    at = utc(2025, 1, 7, 12)  # a Tuesday, outside the hours
    person = PersonAccess("Ann", frozenset({"visitors"}), date(2025, 2, 1), None, enabled=False)
    order = []
    for change in ({}, {"enabled": True}, {"valid_from": None, "valid_until": date(2025, 1, 1)},
                   {"valid_until": None}, {"groups": frozenset({"staff"})}):
        person = PersonAccess(**{**person.__dict__, **change})
        order.append(evaluate(person, p, at).reason)
    assert order == [a.DISABLED, a.NOT_YET_VALID, a.EXPIRED, a.NOT_IN_GROUP, a.OUTSIDE_HOURS]
    assert evaluate(None, p, at).reason == a.UNDECIDABLE
    assert all(reason in a.REASONS for reason in order)


# -- parsing and the overlap check ---------------------------------------------------------------------------


def test_weekday_spans_and_time_ranges_parse_and_bad_ones_are_named():
    assert parse_weekdays(["mon-fri"]) == frozenset(range(5))
    assert parse_weekdays(["sat-mon"]) == frozenset({5, 6, 0})
    assert TimeRange.parse("22:00-06:00").overnight and not TimeRange.parse("00:00-24:00").overnight
    for bad, message in (("monday", "unknown weekday"),):
        with pytest.raises(ValueError, match=message):
            parse_weekdays([bad])
    for bad, message in (("8:00-9:00", "not a time range"), ("24:00-01:00", "impossible"), ("10:00-10:00", "empty"),
                         ("00:00-00:00", "empty"), ("09:60-10:00", "impossible")):
        with pytest.raises(ValueError, match=message):
            TimeRange.parse(bad)
    with pytest.raises(ValueError, match="no hours"):
        Schedule.parse(["mon"], [])
    with pytest.raises(ValueError, match="no days"):
        Schedule.parse([], ["08:00-09:00"])


def test_overlaps_are_found_for_a_same_group_only():
    weekdays = Schedule.parse(["mon-fri"], ["07:00-19:00"], groups=["staff"])
    assert overlaps([weekdays, Schedule.parse(["tue"], ["18:00-20:00"], groups=["staff"])]) == [(0, 1, "tue 18:00")]
    assert overlaps([weekdays, Schedule.parse(["tue"], ["18:00-20:00"], groups=["cleaning"])]) == []
    assert overlaps([weekdays, Schedule.parse(["tue"], ["19:00-20:00"])]) == []  # touching is not overlapping
    wrap = [Schedule.parse(["sun"], ["22:00-06:00"]), Schedule.parse(["mon"], ["05:00-07:00"])]
    assert overlaps(wrap) == [(0, 1, "mon 05:00")]  # across the end of the week
    assert overlaps([Schedule.parse(["mon"], ["08:00-12:00", "11:00-13:00"])]) == [(0, 0, "mon 11:00")]


def test_periods_are_wall_clock_and_must_not_be_empty():
    with pytest.raises(ValueError, match="empty or reversed"):
        Period(datetime(2025, 1, 2), datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="without a time zone"):
        Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))


def test_group_and_badge_names_are_checked():
    assert a.check_group(" Staff ") == "staff"
    assert a.check_badge_id(" 04A2B9C1\n") == "04A2B9C1"
    for bad in ("", "a b", "x" * 65, "-x", None):
        with pytest.raises(ValueError):
            a.check_group(bad)
    for bad in ("", "   ", "04 A2", "x" * 129, "caf\u00e9", "a\tb", None):
        with pytest.raises(ValueError):
            a.check_badge_id(bad)
