"""The Ansible role's door.toml template with a per-door access policy: rendered by ansible-playbook itself (the
role's own template, defaults and vars), then read by edge.config as the door reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from edge.config import load_config

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "ansible" / "roles" / "facegate"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

pytestmark = pytest.mark.skipif(not PLAYBOOK.exists(), reason=f"ansible-core is not installed in {PLAYBOOK.parent}")

POLICY = {
    "timezone": "Europe/Berlin",
    "groups": ["staff", "cleaning"],
    "holidays": ["2025-12-25", "2026-01-01"],
    "schedule": [{"days": ["mon-fri"], "hours": ["07:00-19:00"], "groups": ["staff"]},
                 {"days": ["mon-fri"], "hours": ["22:00-06:00"], "groups": ["cleaning"], "holidays": True}],
    "lockdown": [{"start": "2025-12-24T18:00:00", "end": "2025-12-27T06:00:00"}],
    "mode": "badge+face",
    "badge": {"type": "evdev", "device": "/dev/input/by-id/usb-reader-event-kbd", "grab": True},
    "badge_window_seconds": 6,
    "log_retention_days": 60,
}


def render(tmp_path: Path, weights_dir: Path, **variables) -> str:
    """door.toml as the role writes it, with its models pointed at this checkout's weights."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [{"ansible.builtin.template": {"src": str(ROLE / "templates" / "door.toml.j2"),
                                                "dest": str(tmp_path / "door.toml"), "mode": "0600"}}]}]))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"ansible_python_interpreter": sys.executable, "facegate_device_id": "back-door",
                                 "facegate_relay_pin_factory": "mock", **variables}))
    done = subprocess.run([str(PLAYBOOK), "-i", "localhost,", str(playbook), "-e", f"@{extra}"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin",
                                                                     "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = (tmp_path / "door.toml").read_text()
    return text.replace('"/var/lib/facegate/models/', f'"{weights_dir}/')


def test_a_door_with_a_policy_gets_its_access_table(tmp_path, weights_dir):
    text = render(tmp_path, weights_dir, facegate_access=POLICY)
    assert "[access]" in text
    (tmp_path / "door.toml").write_text(text)
    config = load_config(tmp_path / "door.toml", read_secrets=False)
    policy = config.access.policy()
    assert policy.mode == "badge+face" and policy.groups == {"staff", "cleaning"}
    assert policy.holidays == {date(2025, 12, 25), date(2026, 1, 1)}
    assert [s.describe() for s in policy.schedules] == ["mon,tue,wed,thu,fri 07:00-19:00 for staff",
                                                        "mon,tue,wed,thu,fri 22:00-06:00 for cleaning"]
    assert policy.schedules[1].holidays and len(policy.lockdown_periods) == 1
    assert config.access.badge.device == "/dev/input/by-id/usb-reader-event-kbd"
    assert (config.access.badge_window_seconds, config.access.log_retention_days) == (6, 60)


def test_a_door_without_a_policy_gets_no_access_table(tmp_path, weights_dir):
    text = render(tmp_path, weights_dir)
    assert "[access]" not in text
    (tmp_path / "door.toml").write_text(text)
    assert load_config(tmp_path / "door.toml", read_secrets=False).access.policy().groups is None
