"""The config file as text: the nesting limit, the line scanner, and the [relay] table read alone for relay-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, RelaySection, load_config, relay_section, validate_config
from edge.config.toml_lines import key_lines
from tests.config_helpers import problems, write

# -- nesting limit: tomllib recurses once per level, so a deep value would crash it ------------------------------

DEEP_VALUES = {
    "array": "[" * 100_000,
    "closed array": "[" * 5_000 + "]" * 5_000,
    "inline table": "{a = " * 100_000,
    "array of inline tables": "[{a = " * 50_000,
}


@pytest.mark.parametrize("value", DEEP_VALUES.values(), ids=DEEP_VALUES.keys())
def test_deep_nesting_is_refused_with_its_line(tmp_path: Path, base_text: str, value: str):
    text = base_text.replace('path = "people.sqlite"', f'path = "people.sqlite"\ndeep = {value}')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert err.value.problems == [f"{tmp_path / 'door.toml'}:10: nested more than 32 levels deep"]
    assert err.value.__cause__ is None and err.value.__context__ is None  # no RecursionError behind it


def test_deep_nesting_over_lines_names_the_first_line_too_deep(tmp_path: Path, base_text: str):
    # store.deep is 2 levels; its line 10 opens the 3rd, line 10 + n the (n + 3)rd: 33 on line 40
    text = base_text.replace('path = "people.sqlite"', 'path = "people.sqlite"\ndeep = ' + "[\n" * 40 + "]\n" * 40)
    assert problems(tmp_path, text) == [f"{tmp_path / 'door.toml'}:40: nested more than 32 levels deep"]


def test_the_nesting_limit_is_32_levels(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    # a top-level key is one level, each array or inline table one more; table and dotted key parts count too
    assert problems(tmp_path, "x = " + "[" * 31 + "]" * 31 + "\n" + base_text) == [f"{name}:1: x: unknown key"]
    assert problems(tmp_path, "x = " + "[" * 32 + "]" * 32 + "\n" + base_text) == [
        f"{name}:1: nested more than 32 levels deep"]
    assert problems(tmp_path, "x = {" + "a = {" * 31 + "}" * 32 + "\n" + base_text) == [
        f"{name}:1: nested more than 32 levels deep"]
    assert problems(tmp_path, base_text + "[" + ".".join(["t"] * 33) + "]\n") == [
        f"{name}:18: nested more than 32 levels deep"]
    assert problems(tmp_path, base_text + ".".join(["k"] * 30) + " = [[1]]\n") == [  # relay. + 30 + 2 = 33
        f"{name}:18: nested more than 32 levels deep"]


def test_a_recursion_error_of_the_parser_is_a_config_error(tmp_path: Path, base_text: str, monkeypatch):
    import edge.config.plain

    monkeypatch.setattr(edge.config.plain, "first_too_deep", lambda text: None)  # as if the scanner missed it
    path = write(tmp_path, base_text + "deep = " + "[" * 100_000 + "\n")
    assert validate_config(path) == [f"{path}: nested too deeply to parse"]


# -- relay_section: [relay] alone, for facegate relay-off ---------------------------------------------------------


def test_relay_section_of_a_valid_config(tmp_path: Path, base_text: str, caplog):
    relay = relay_section(write(tmp_path, base_text))
    assert isinstance(relay, RelaySection) and (relay.pin, relay.pin_factory, relay.active_high) == (17, "mock", True)
    assert not caplog.records


def test_relay_section_reads_nothing_but_the_relay_table(tmp_path: Path, base_text: str, int8_model: Path, caplog):
    """Broken other sections are not even looked at (check-config does that): the safety net stays fast."""
    text = base_text.replace(str(int8_model), "deleted.tflite").replace('id = "door-1"', 'id = "Door 1"')
    path = write(tmp_path, text)
    assert validate_config(path)  # the file as a whole is not valid
    with caplog.at_level("WARNING", logger="edge.config"):
        relay = relay_section(path)
    assert (relay.pin, relay.pin_factory) == (17, "mock")
    assert not caplog.records


def test_relay_section_when_the_rest_is_not_toml(tmp_path: Path, base_text: str, caplog):
    # [relay] "headers" inside a multi-line string and a multi-line array are not the table; the real one is
    decoys = 'notes = """\n[relay]\npin = 3\n"""\ntables = [\n  ["relay"],\n]\n'
    text = base_text.replace("[camera]\n", decoys + "[camera]\nthis is not TOML\n") + "[mqtt]\nhost = \n"
    path = write(tmp_path, text)
    with caplog.at_level("WARNING", logger="edge.config"):
        relay = relay_section(path)
    assert (relay.pin, relay.pin_factory) == (17, "mock")
    [warning] = caplog.messages
    assert warning.startswith(f"{path} has problems outside [relay] ({path}:19: TOML syntax: ")


def test_relay_section_when_the_rest_is_not_utf8(tmp_path: Path, base_text: str, caplog):
    path = tmp_path / "door.toml"
    path.write_bytes(base_text.replace('id = "door-1"', 'id = "door-1"  # caf\xe9').encode("latin-1"))
    with caplog.at_level("WARNING", logger="edge.config"):
        assert relay_section(path).pin == 17
    assert caplog.messages == [f"{path} has problems outside [relay] ({path}:2: not UTF-8 text); "
                               "switching the relay off anyway"]


@pytest.mark.parametrize("value", DEEP_VALUES.values(), ids=DEEP_VALUES.keys())
def test_relay_section_when_the_rest_is_nested_too_deep(tmp_path: Path, base_text: str, value: str, caplog):
    text = base_text.replace('path = "people.sqlite"', f'path = "people.sqlite"\ndeep = {value}')
    path = write(tmp_path, text)
    with caplog.at_level("WARNING", logger="edge.config"):
        assert relay_section(path).pin == 17
    assert f"({path}:10: nested more than 32 levels deep)" in caplog.messages[0]


def test_relay_section_without_a_relay_table(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    without_relay = base_text[: base_text.index("[relay]")]
    with pytest.raises(ConfigError) as err:
        relay_section(write(tmp_path, without_relay))
    assert err.value.problems == [f"{name}: relay: required, but missing"]
    with pytest.raises(ConfigError) as err:
        relay_section(write(tmp_path, without_relay + "pin = 17\n[camera.x\n"))  # not TOML, and no [relay]
    assert err.value.problems[-1] == f"{name}: relay: required, but missing"
    assert err.value.problems[0].startswith(f"{name}:16: TOML syntax: ")
    with pytest.raises(ConfigError) as err:
        relay_section(tmp_path / "missing.toml")
    assert err.value.problems == [f"{tmp_path / 'missing.toml'}: cannot read: No such file or directory"]


def test_relay_section_with_a_bad_relay_table(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    bad = base_text.replace("pin = 17", "pin = 99")
    with pytest.raises(ConfigError) as err:
        relay_section(write(tmp_path, bad))
    assert err.value.problems == [f"{name}:16: relay.pin: Input should be a BCM GPIO number 0..27 (got 99)"]
    with pytest.raises(ConfigError) as err:  # the rest not TOML: the syntax error, then the table's own problems
        relay_section(write(tmp_path, bad.replace("[camera]\n", "[camera]\n= 1\n") + "pulse_second = 2\n"))
    assert err.value.problems[0].startswith(f"{name}:12: TOML syntax: ")
    assert err.value.problems[1:] == [
        f"{name}:17: relay.pin: Input should be a BCM GPIO number 0..27 (got 99)",
        f"{name}:19: relay.pulse_second: unknown key (did you mean 'pulse_seconds'?)",
    ]


# -- key_lines -------------------------------------------------------------------------------------------------


def test_key_lines_follows_toml_structure():
    text = '''# comment
top = 1
[a]
x = [
  1, "]", # not the end
  2,
]
y = """
z = 99
"""
"quoted key" = 2
b.c = 3
[a.d]
e = { f = 1 }
[[g]]
h = 'it''s'
'''
    lines = key_lines(text)
    assert lines[("top",)] == 2 and lines[("a",)] == 3 and lines[("a", "x")] == 4
    assert lines[("a", "y")] == 8 and ("a", "z") not in lines and ("z",) not in lines
    assert lines[("a", "quoted key")] == 11
    assert lines[("a", "b")] == 12 and lines[("a", "b", "c")] == 12
    assert lines[("a", "d")] == 13 and lines[("a", "d", "e")] == 14
    assert lines[("g",)] == 15 and lines[("g", "h")] == 16
