"""``[access]``: the default (today's behaviour), a full policy, every bad input named with its line, and
check-config comparing the policy's groups with the store."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from edge.cli import main
from edge.config import load_config
from edge.core.access import PersonAccess, evaluate
from edge.errors import ExitCode
from tests.config_helpers import only_problem, write
from tests.store_helpers import open_store, unit

POLICY = """
[access]
timezone = "Europe/Berlin"
groups = ["staff", "cleaning"]
holidays = [2025-12-25]
schedule = [
  {days = ["mon-fri"], hours = ["07:00-19:00"], groups = ["staff"]},
  {days = ["mon-fri"], hours = ["22:00-06:00"], groups = ["cleaning"]},
]
lockdown = [{start = 2025-12-31T20:00:00, end = 2026-01-01T08:00:00}, {days = ["sun"], hours = ["00:00-24:00"]}]
badge_window_seconds = 4
log_retention_days = 90
"""


def test_without_access_the_door_admits_everyone_at_every_hour_face_alone(tmp_path, base_text):
    config = load_config(write(tmp_path, base_text), read_secrets=False)
    policy = config.access.policy()
    assert policy.mode == "face" and policy.groups is None and policy.schedules is None
    assert config.access.log_path == tmp_path / "access-log.sqlite"  # beside the store
    assert config.access.log_retention_days == 30
    assert evaluate(PersonAccess("Anyone"), policy, datetime(2025, 12, 25, 3, tzinfo=timezone.utc)).granted


def test_a_full_policy_is_read_into_the_door_policy(tmp_path, base_text):
    config = load_config(write(tmp_path, base_text + POLICY), read_secrets=False)
    policy = config.access.policy()
    assert policy.timezone == ZoneInfo("Europe/Berlin") and policy.groups == {"staff", "cleaning"}
    assert policy.holidays == {date(2025, 12, 25)} and len(policy.schedules) == 2
    assert config.access.named_groups() == {"staff", "cleaning"}
    cleaner = PersonAccess("Bob", frozenset({"cleaning"}))
    assert evaluate(cleaner, policy, datetime(2025, 1, 6, 22, tzinfo=timezone.utc)).granted  # Mon 23:00
    assert evaluate(cleaner, policy, datetime(2025, 1, 12, 10, tzinfo=timezone.utc)).reason == "lockdown"  # Sunday
    assert evaluate(cleaner, policy, datetime(2025, 12, 31, 21, tzinfo=timezone.utc)).reason == "lockdown"


@pytest.mark.parametrize("table, expected", [
    ('timezone = "Europe/Berln"', ":20: access.timezone: unknown time zone 'Europe/Berln' (did you mean "
                                  "'Europe/Berlin'?)"),
    ('holidays = [2025-12-25]', ":19: access.timezone: required with schedule, holidays or lockdown"),
    ('timezone = "UTC"\nschedule = [{days = ["mon-fri"], hours = ["07:00-19:00"]}, '
     '{days = ["tue"], hours = ["18:00-20:00"]}]',
     ":21: access.schedule.1: tue 18:00-20:00: it overlaps access.schedule.0 (mon,tue,wed,thu,fri 07:00-19:00) "
     "on tue 18:00"),
    ('timezone = "UTC"\nschedule = [{days = ["mon"], hours = ["08:00-12:00", "11:00-13:00"]}]',
     ":21: access.schedule.0: mon 08:00-12:00 11:00-13:00: two of its hours overlap on mon 11:00"),
    ('timezone = "UTC"\nschedule = [{days = ["mon"], hours = []}]', ":21: access.schedule.0.hours: no hours"),
    ('timezone = "UTC"\nschedule = [{days = [], hours = ["08:00-09:00"]}]', ":21: access.schedule.0.days: no days"),
    ('timezone = "UTC"\nschedule = [{days = ["mon"], hours = ["09:00-09:00"]}]', "'09:00-09:00' is empty"),
    ('timezone = "UTC"\nschedule = []', ":21: access.schedule: an empty schedule never opens"),
    ('timezone = "UTC"\nschedule = [{days = ["monday"], hours = ["08:00-09:00"]}]', "unknown weekday 'monday'"),
    ('groups = []', ":20: access.groups: an empty list admits nobody"),
    ('groups = ["Two Words"]', "'Two Words' is not a group name"),
    ('timezone = "UTC"\ngroups = ["staff"]\nschedule = [{days = ["mon"], hours = ["08:00-09:00"], groups = ["x"]}]',
     ":22: access.schedule.0.groups: x is not in access.groups"),
    ('timezone = "UTC"\ngroups = ["staff", "x"]\nschedule = [{days = ["mon"], hours = ["08:00-09:00"], '
     'groups = ["staff"]}]', "access.schedule: group x has no schedule: it would never be admitted"),
    ('mode = "badge+face"', ":19: access.badge: badge+face needs a badge reader"),
    ('badge = {type = "evdev", device = "/dev/input/event3"}', "access.badge: a badge reader is read in mode "
                                                                "badge+face only"),
    ('mode = "badge+face"\nbadge = {type = "wiegand"}', "access.badge.type: should be one of 'evdev', 'replay'"),
    ('mode = "badge+face"\nbadge = {type = "replay", path = "nowhere.txt"}', "access.badge.path: file"),
    ('mode = "badge"', "access.mode: Input should be 'face' or 'badge+face'"),
    ('timezone = "UTC"\nlockdown = [{days = ["mon"], start = 2025-01-01T00:00:00}]',
     "access.lockdown.0.days: give days and hours (weekly) or start and end (one-off)"),
    ('timezone = "UTC"\nlockdown = [{start = 2025-01-01T00:00:00Z, end = 2025-01-02T00:00:00}]',
     "access.lockdown.0.start: give the site's local time without an offset"),
    ('timezone = "UTC"\nlockdown = [{start = 2025-01-02T00:00:00, end = 2025-01-01T00:00:00}]',
     "access.lockdown.0.end: the period"),
    ('timezon = "UTC"', "access.timezon: unknown key (did you mean 'timezone'?)"),
    ('verify_threshold = 2.5', "access.verify_threshold"),
])
def test_bad_policies_are_named_with_their_line(tmp_path, base_text, table, expected):
    found = only_problem(tmp_path, base_text + "\n[access]\n" + table + "\n", read_secrets=False)
    assert expected in found, found


# -- check-config and the store ---------------------------------------------------------------------------------


def check(capsys, path) -> tuple[int, str]:
    code = main(["check-config", str(path), "--no-secrets"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_check_config_names_a_group_nobody_in_the_store_has(capsys, tmp_path, base_text, rng, weights_dir):
    config = write(tmp_path, base_text + POLICY)
    code, text = check(capsys, config)
    assert code == ExitCode.OK and "is not there: the groups of [access] were not compared" in text
    card = json.loads((weights_dir / "facenet_int8.card.json").read_text())
    with open_store(tmp_path / "people.sqlite", model_sha256=card["sha256"]) as store:
        store.add("Ada", unit(rng, 1))
        store.access.set_groups("Ada", ["staff"])
    code, text = check(capsys, config)
    assert code == ExitCode.ERROR
    assert (f"{config}:21: access.groups: group 'cleaning' is nobody's in the store {tmp_path / 'people.sqlite'} "
            "(groups there: staff)") in text
    with open_store(tmp_path / "people.sqlite", model_sha256=card["sha256"]) as store:
        store.add("Bob", unit(rng, 1))
        store.access.set_groups("Bob", ["cleaning"])
    assert check(capsys, config) == (ExitCode.OK, f"{config}: valid\n")
