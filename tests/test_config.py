"""The door config: the example validates, every mistake is named with its file, line and key, secrets stay secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.config import (
    Config,
    ConfigError,
    OpenCVSection,
    Picamera2Section,
    RelaySection,
    ReplaySection,
    load_config,
    relay_section,
    validate_config,
)
from edge.errors import FacegateError
from tests.config_helpers import MQTT, only_problem, problems, write

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "door.toml"



@pytest.fixture
def example(tmp_path: Path, int8_model: Path, blazeface_short: Path) -> Path:
    """The example config as written, but for its model paths (``../weights/...``): the fixtures' files."""
    text = EXAMPLE.read_text()
    for model in (int8_model, blazeface_short):
        assert f'"../weights/{model.name}"' in text
        text = text.replace(f'"../weights/{model.name}"', f'"{model.resolve()}"')
    return write(tmp_path, text)


# -- valid configs ------------------------------------------------------------------------------------------------


def test_the_example_validates(monkeypatch, tmp_path: Path, example: Path, int8_model: Path, blazeface_short: Path):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = load_config(example, read_secrets=False)
    assert config.device.id == "front-door" and config.device.name == "Front door"
    assert config.models.encoder == int8_model.resolve() and config.models.detector == blazeface_short.resolve()
    assert isinstance(config.camera, Picamera2Section) and config.camera.resolution == (640, 480)
    assert config.relay.pin == 17 and config.door.contact_pin == 27
    assert config.mqtt.password_credential == "mqtt_password" and config.mqtt.password is None
    # as the systemd service sees it: the credential is read from $CREDENTIALS_DIRECTORY
    (tmp_path / "mqtt_password").write_text("correct horse\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert validate_config(example) == []
    assert load_config(example).mqtt.password.get_secret_value() == "correct horse"


def test_the_example_without_its_credential_names_the_line(monkeypatch, example: Path):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    line = next(i for i, text in enumerate(EXAMPLE.read_text().splitlines(), 1)
                if text.startswith("password_credential"))
    [problem] = validate_config(example)
    assert problem.startswith(f"{example}:{line}: mqtt.password_credential: $CREDENTIALS_DIRECTORY is not set")


def test_defaults_and_resolved_paths(tmp_path: Path, base_text: str, monkeypatch, int8_model: Path):
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", base_text + MQTT)
    monkeypatch.chdir(REPO)  # relative paths follow the config file, not the working directory
    config = load_config(path)
    assert config.store.path == tmp_path / "conf" / "people.sqlite"
    assert config.mqtt.outbox_path == tmp_path / "conf" / "outbox.sqlite"  # default: beside the store
    assert config.models.encoder == int8_model
    assert config.device.name == "door-1"
    r = config.recognition
    assert (r.threshold, r.margin, r.align, r.min_face_px) == (None, 0.1, True, 80.0)
    assert (r.votes_needed, r.votes_window, r.window_seconds, r.cooldown_seconds) == (2, 3, 2.0, 10.0)
    assert config.mqtt.port == 1883 and config.mqtt.discovery and not config.mqtt.commands
    assert config.door is None and config.log.level == "info"


def test_relative_and_env_paths(tmp_path: Path, base_text: str, int8_model: Path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "enc.tflite").write_bytes(int8_model.read_bytes()[:64])
    monkeypatch.setenv("FACEGATE_TEST_STATE", str(tmp_path / "state"))
    text = base_text.replace(f'encoder = "{int8_model}"', 'encoder = "models/enc.tflite"')
    text = text.replace('path = "people.sqlite"', 'path = "${FACEGATE_TEST_STATE}/people.sqlite"')
    config = load_config(write(tmp_path, text))
    assert config.models.encoder == tmp_path / "models" / "enc.tflite"
    assert config.store.path == tmp_path / "state" / "people.sqlite"
    monkeypatch.delenv("FACEGATE_TEST_STATE")
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:9: store.path: environment variable FACEGATE_TEST_STATE is not set "
        "(in '${FACEGATE_TEST_STATE}/people.sqlite')")


def test_every_field_is_described():
    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            args = getattr(field.annotation, "__args__", None) or (field.annotation,)
            for sub in args:
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    walk(sub)

    walk(Config)
    assert {Picamera2Section, OpenCVSection, ReplaySection} <= seen and len(seen) >= 11
    # [relay] is plain Python (relay-off reads it without pydantic): its keys are described in its module's table
    import dataclasses

    import edge.config.relay

    for field in dataclasses.fields(RelaySection):
        assert f"``{field.name}``" in edge.config.relay.__doc__, field.name


# -- errors name the file, the line and the key --------------------------------------------------------------------


def test_unknown_keys_are_named_with_their_line(tmp_path: Path, base_text: str):
    text = "flavour = 1\n" + base_text.replace('id = "door-1"', 'id = "door-1"\ncolour = "red"') + "\n[camrea]\n"
    name = tmp_path / "door.toml"
    assert problems(tmp_path, text) == [
        f"{name}:4: device.colour: unknown key",
        f"{name}:1: flavour: unknown key",
        f"{name}:21: camrea: unknown key (did you mean 'camera'?)",
    ]
    typo = base_text.replace("pin = 17", "pin = 17\npulse_second = 2")
    assert only_problem(tmp_path, typo) == f"{name}:17: relay.pulse_second: unknown key (did you mean 'pulse_seconds'?)"
    in_camera = base_text.replace('type = "replay"', 'type = "replay"\nfsp = 5')
    assert only_problem(tmp_path, in_camera) == f"{name}:13: camera.fsp: unknown key (did you mean 'fps'?)"


def test_wrong_types_and_ranges(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    text = base_text.replace("pin = 17", 'pin = 17\npulse_seconds = "long"')
    assert only_problem(tmp_path, text) == (
        f"{name}:17: relay.pulse_seconds: should be a number of seconds, 0.1..30 (got 'long')")
    text = base_text.replace("pin = 17", "pin = 17\npulse_seconds = 31")
    assert only_problem(tmp_path, text) == f"{name}:17: relay.pulse_seconds: should be 0.1..30 s (got 31)"
    text = base_text.replace("pin = 17", 'pin = 17\nactive_high = "yes"')
    assert only_problem(tmp_path, text) == f"{name}:17: relay.active_high: should be true or false (got 'yes')"
    # the daemon's config and relay-off's reader check [relay] the same way, with the same words
    for bad in ('pulse_seconds = "long"', "pulse_seconds = 31", 'active_high = "yes"', 'pin_factory = "lgpio"'):
        path = write(tmp_path, base_text.replace("pin = 17", f"pin = 17\n{bad}"))
        with pytest.raises(ConfigError) as err:
            relay_section(path)
        assert err.value.problems == validate_config(path)
    text = base_text.replace('id = "door-1"', 'id = "Front Door"')
    assert only_problem(tmp_path, text).startswith(f"{name}:2: device.id: String should match pattern")
    text = base_text + "\n[recognition]\nvotes_needed = 4\n"
    assert only_problem(tmp_path, text) == (
        f"{name}:19: recognition.votes_window: votes_window (3) must be at least votes_needed (4)")
    text = base_text.replace('type = "replay"', 'type = "replay"\nretry_initial_seconds = 60\nretry_max_seconds = 5')
    assert only_problem(tmp_path, text) == (
        f"{name}:14: camera.retry_max_seconds: retry_max_seconds (5) must be at least retry_initial_seconds (60)")


def test_missing_model_file(tmp_path: Path, base_text: str, int8_model: Path):
    text = base_text.replace(str(int8_model), "missing/facenet_int8.tflite")
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:5: models.encoder: file {tmp_path / 'missing' / 'facenet_int8.tflite'} "
        "does not exist")


def test_missing_section_and_key(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    without_relay = base_text[: base_text.index("[relay]")]
    assert only_problem(tmp_path, without_relay) == f"{name}: relay: required, but missing"
    without_pin = base_text.replace("pin = 17\n", "")
    assert only_problem(tmp_path, without_pin) == f"{name}:15: relay.pin: required, but missing"


@pytest.mark.parametrize("pin", ["17", '"GPIO17"', '"BCM4"', '"BOARD11"', '"J8:40"', "0", "27"])
def test_pin_forms_accepted(tmp_path: Path, base_text: str, pin: str):
    assert problems(tmp_path, base_text.replace("pin = 17", f"pin = {pin}")) == []


@pytest.mark.parametrize(("pin", "reason"), [
    ("99", "Input should be a BCM GPIO number 0..27 (got 99)"),
    ("-1", "Input should be a BCM GPIO number 0..27 (got -1)"),
    ('"GPIO28"', "pin number out of range: GPIO/BCM 0..27, BOARD/J8 header pins 1..40 (got 'GPIO28')"),
    ('"BOARD41"', "pin number out of range: GPIO/BCM 0..27, BOARD/J8 header pins 1..40 (got 'BOARD41')"),
    ('"pin17"', 'Input should be a BCM GPIO number 0..27 or a gpiozero pin name such as "GPIO17" or "BOARD11"'
                " (got 'pin17')"),
    ("true", 'Input should be a BCM GPIO number 0..27 or a gpiozero pin name such as "GPIO17" or "BOARD11"'
             " (got True)"),
])
def test_pin_out_of_range(tmp_path: Path, base_text: str, pin: str, reason: str):
    assert only_problem(tmp_path, base_text.replace("pin = 17", f"pin = {pin}")) == (
        f"{tmp_path / 'door.toml'}:16: relay.pin: {reason}")


def test_a_pin_used_twice(tmp_path: Path, base_text: str):
    text = base_text + '\n[door]\nexit_pin = 22\ncontact_pin = "GPIO17"\n'
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:21: door.contact_pin: pin GPIO17 is already used by relay.pin")
    assert problems(tmp_path, base_text + '\n[door]\ncontact_pin = "BOARD17"\n') == []  # header pin 17 is 3.3 V


def test_toml_syntax_error_names_the_line(tmp_path: Path, base_text: str):
    text = base_text.replace("pin = 17", "pin = 17\npulse_seconds = ")
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'door.toml'}:17: TOML syntax: ")
    assert "column" in problem
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, base_text + '\n[relay]\npin = 3\n'))  # a table defined twice
    assert str(err.value).startswith(f"{tmp_path / 'door.toml'}:19: TOML syntax: ")
    assert isinstance(err.value, FacegateError)


def test_unreadable_file(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    assert validate_config(missing) == [f"{missing}: cannot read: No such file or directory"]
    (tmp_path / "latin1.toml").write_bytes(b'[device]\nname = "caf\xe9"\n')
    assert validate_config(tmp_path / "latin1.toml") == [f"{tmp_path / 'latin1.toml'}:2: not UTF-8 text"]


# -- the camera union ---------------------------------------------------------------------------------------------


def _with_camera(base_text: str, camera: str) -> str:
    start, end = base_text.index("[camera]"), base_text.index("[relay]")
    return base_text[:start] + camera + "\n" + base_text[end:]


def test_each_camera_type(tmp_path: Path, base_text: str, photos_dir: Path):
    pi = load_config(write(tmp_path, _with_camera(base_text, '[camera]\ntype = "picamera2"\ncamera_num = 1\n')))
    assert isinstance(pi.camera, Picamera2Section) and pi.camera.camera_num == 1
    assert pi.camera.resolution == (640, 480) and pi.camera.read_timeout_seconds == 2.0
    usb = load_config(write(tmp_path, _with_camera(
        base_text, '[camera]\ntype = "opencv"\nsource = 0\nresolution = [1280, 720]\nbackend = "v4l2"\n')))
    assert isinstance(usb.camera, OpenCVSection) and usb.camera.source == 0 and usb.camera.resolution == (1280, 720)
    rtsp = load_config(write(tmp_path, _with_camera(
        base_text, '[camera]\ntype = "opencv"\nsource = "rtsp://cam.lan/stream1"\n')))
    assert rtsp.camera.source == "rtsp://cam.lan/stream1" and rtsp.camera.backend == "any"
    replay = load_config(write(tmp_path, base_text))
    assert isinstance(replay.camera, ReplaySection) and replay.camera.path == photos_dir / "val"
    assert replay.camera.fps == 0 and replay.camera.loop is False


def test_camera_type_errors(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    wrong = _with_camera(base_text, '[camera]\ntype = "usb"\nsource = 0\n')
    assert only_problem(tmp_path, wrong) == (
        f"{name}:12: camera.type: should be one of 'picamera2', 'opencv', 'replay' (got 'usb')")
    missing = _with_camera(base_text, "[camera]\nsource = 0\n")
    assert only_problem(tmp_path, missing) == (
        f"{name}:11: camera.type: required, but missing: one of 'picamera2', 'opencv', 'replay'")
    # a key of another camera type is unknown for this one
    other = _with_camera(base_text, '[camera]\ntype = "picamera2"\nsource = 0\n')
    assert only_problem(tmp_path, other) == f"{name}:13: camera.source: unknown key"
    backend = _with_camera(base_text, '[camera]\ntype = "opencv"\nsource = 0\nbackend = "dshow"\n')
    assert only_problem(tmp_path, backend) == (
        f"{name}:14: camera.backend: Input should be 'any', 'v4l2', 'gstreamer' or 'ffmpeg' (got 'dshow')")
    resolution = _with_camera(base_text, '[camera]\ntype = "picamera2"\nresolution = [\n  640,\n]\n')
    assert only_problem(tmp_path, resolution) == (
        f"{name}:13: camera.resolution: Input should be [width, height], 2 numbers (got [640])")
    missing_replay = _with_camera(base_text, '[camera]\ntype = "replay"\npath = "no-such-folder"\n')
    assert only_problem(tmp_path, missing_replay).startswith(f"{name}:13: camera.path: {tmp_path / 'no-such-folder'} "
                                                             "does not exist")


# -- MQTT and its secrets ----------------------------------------------------------------------------------------


def test_mqtt_password_from_env(tmp_path: Path, base_text: str, monkeypatch):
    text = base_text + MQTT + 'password_env = "FACEGATE_TEST_MQTT_PW"\n'
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PW", "env-secret-42")
    assert load_config(write(tmp_path, text)).mqtt.password.get_secret_value() == "env-secret-42"
    monkeypatch.delenv("FACEGATE_TEST_MQTT_PW")
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:22: mqtt.password_env: environment variable FACEGATE_TEST_MQTT_PW is not set "
        "or empty")
    assert problems(tmp_path, text, read_secrets=False) == []  # check-config outside the service


def test_mqtt_password_from_file(tmp_path: Path, base_text: str):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("file-secret-42\n")
    text = base_text + MQTT + 'password_file = "secrets/pw"\n'
    assert load_config(write(tmp_path, text)).mqtt.password.get_secret_value() == "file-secret-42"
    (tmp_path / "secrets" / "pw").write_text("\n")
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:22: mqtt.password_file: the password file {tmp_path / 'secrets' / 'pw'} is empty")
    (tmp_path / "secrets" / "pw").unlink()
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:22: mqtt.password_file: cannot read the password file "
        f"{tmp_path / 'secrets' / 'pw'}: No such file or directory")


def test_mqtt_password_from_systemd_credentials(tmp_path: Path, base_text: str, monkeypatch):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt_password").write_text("credential-secret-42")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    text = base_text + MQTT + 'password_credential = "mqtt_password"\n'
    assert load_config(write(tmp_path, text)).mqtt.password.get_secret_value() == "credential-secret-42"
    bad_name = text.replace('"mqtt_password"', '"../etc/passwd"')
    assert only_problem(tmp_path, bad_name).startswith(
        f"{tmp_path / 'door.toml'}:22: mqtt.password_credential: String should match pattern")


def test_one_password_source_and_a_username(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    two = base_text + MQTT + 'password_env = "X"\npassword_credential = "y"\n'
    assert only_problem(tmp_path, two, read_secrets=False) == (
        f"{name}:23: mqtt.password_credential: give the password one way only, not password_env and "
        "password_credential")
    no_user = (base_text + MQTT + 'password_env = "X"\n').replace('username = "door"\n', "")
    assert only_problem(tmp_path, no_user, read_secrets=False) == (
        f"{name}:21: mqtt.password_env: a password needs a username")


def test_secrets_never_shown(tmp_path: Path, base_text: str, monkeypatch):
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PW", "env-secret-42")
    inline = load_config(write(tmp_path, base_text + MQTT + 'password = "inline-secret-42"\n'))
    from_env = load_config(write(tmp_path, base_text + MQTT + 'password_env = "FACEGATE_TEST_MQTT_PW"\n'))
    for config, secret in ((inline, "inline-secret-42"), (from_env, "env-secret-42")):
        assert config.mqtt.password.get_secret_value() == secret
        for shown in (repr(config), str(config), repr(config.mqtt), str(config.model_dump()),
                      config.model_dump_json(), str(config.mqtt.password)):
            assert secret not in shown
        assert "**********" in config.model_dump_json()
    # a password of the wrong type is not echoed in the error either
    [problem] = problems(tmp_path, base_text + MQTT + "password = 98765431\n")
    assert "98765431" not in problem and ":22: mqtt.password: " in problem
    # nor are other keys' inputs echoed next to it by pydantic's own message
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, base_text + MQTT + 'password = "inline-secret-42"\nport = 0\n'))
    assert "inline-secret-42" not in str(err.value) and err.value.__cause__ is None


def test_allow_unlock_command_needs_commands(tmp_path: Path, base_text: str):
    text = base_text + MQTT + "allow_unlock_command = true\n"
    assert only_problem(tmp_path, text) == (
        f"{tmp_path / 'door.toml'}:22: mqtt.allow_unlock_command: needs commands = true")
    config = load_config(write(tmp_path, text + "commands = true\n"))
    assert config.mqtt.commands and config.mqtt.allow_unlock_command


def test_mqtt_tls_and_topics(tmp_path: Path, base_text: str):
    name = tmp_path / "door.toml"
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    no_tls = base_text + MQTT + 'tls_ca = "ca.pem"\n'
    assert only_problem(tmp_path, no_tls) == f"{name}:22: mqtt.tls_ca: needs tls = true"
    config = load_config(write(tmp_path, base_text + MQTT + 'tls = true\ntls_ca = "ca.pem"\nport = 8883\n'))
    assert config.mqtt.tls_ca == tmp_path / "ca.pem" and config.mqtt.port == 8883
    assert only_problem(tmp_path, base_text + MQTT + "port = 70000\n") == (
        f"{name}:22: mqtt.port: Input should be less than or equal to 65535 (got 70000)")
    assert only_problem(tmp_path, base_text + MQTT + 'prefix = "home/#"\n') == (
        f"{name}:22: mqtt.prefix: should be non-empty MQTT topic levels separated by / without + or # "
        "(got 'home/#')")


def test_several_problems_one_line_each(tmp_path: Path, base_text: str):
    text = base_text.replace("pin = 17", "pin = 30").replace('id = "door-1"', 'id = "door-1"\nfoo = 1')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert err.value.problems == str(err.value).splitlines()
    assert [p.split(": ")[0] for p in err.value.problems] == [f"{tmp_path / 'door.toml'}:3",
                                                              f"{tmp_path / 'door.toml'}:17"]


def test_config_error_is_a_facegate_error():
    assert issubclass(ConfigError, FacegateError)
    assert os.fspath(EXAMPLE).endswith("door.toml")
