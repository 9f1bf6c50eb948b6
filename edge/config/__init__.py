"""The door daemon's configuration: one TOML file, checked strictly into typed pydantic models.

Every section forbids unknown keys (a typo is an error, not a silently ignored setting) and every field
carries a description (``Config.model_json_schema()`` documents the file). :func:`load_config` reads the
file with :mod:`tomllib` and raises :class:`ConfigError`, whose message has one line per problem naming
the file, the line and the key::

    door.toml:14: relay.pin: Input should be a BCM GPIO number 0..27 (got 99)
    door.toml:3: device.colour: unknown key

Paths in the file are resolved relative to the folder of the config file, after expanding ``~`` and
environment variables (``$VAR`` or ``${VAR}``; an unset variable is an error).

Secrets: the MQTT password should not be written in the file. It can come from an environment variable
(``password_env``), a file (``password_file``) or a systemd credential (``password_credential = "name"``
reads ``$CREDENTIALS_DIRECTORY/name``, set by ``LoadCredential=`` / ``LoadCredentialEncrypted=``). It is
held as a :class:`pydantic.SecretStr`: repr, str, logs and ``model_dump`` show ``**********``; only
``.get_secret_value()`` gives it.

Why ``recognition.min_face_px`` defaults to 80: the 25 celebrity val photos were shrunk so their face box
was S px and matched against the train photos (int8 FaceNet, threshold 1.058 from its card). Every photo was
still recognised down to S = 32 (24/25 at 24-28, 14/25 at 16), but the genuine distance grows as faces
shrink: median 0.59-0.61 at 64-96 px, 0.67-0.68 at 40-48, 0.73 at 32, 0.80 at 24, so the margin to the
threshold is widest from about 64 px up. 80 px keeps that margin, and is a person about 1 m from a
640x480 camera with a 62 degree field of view (a 16 cm wide face): someone at the door, not passing by.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.errors import FacegateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

#: The systemd credentials folder variable (``LoadCredential=`` in the unit sets it for the service).
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


class ConfigError(FacegateError):
    """The config file is missing, not TOML, or not a valid door config.

    ``str(err)`` has one line per problem: ``<file>:<line>: <key>: <reason>``; ``problems`` lists them.
    """

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class _KeyProblem(ValueError):
    """Raised by a model validator to blame one key (a name or a path below the model) of that model."""

    def __init__(self, key: str | tuple[str, ...], message: str):
        super().__init__(message)
        self.key = (key,) if isinstance(key, str) else tuple(key)


# -- field types ------------------------------------------------------------------------------------------------


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~`` and ``$VAR`` in a path and make it absolute, relative to the config file's folder."""
    text = os.path.expanduser(os.path.expandvars(str(value)))
    unset = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)
    if unset:
        raise ValueError(f"environment variable {unset.group(1)} is not set (in {str(value)!r})")
    base = (info.context or {}).get("base_dir")
    path = Path(text)
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return Path(os.path.normpath(path))


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file {path} does not exist" if not path.exists() else f"{path} is not a file")
    return path


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    return path


#: A path, resolved relative to the config file's folder (see :func:`_resolve_path`).
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
#: A resolved path that must be an existing file.
ExistingFile = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing_file)]
#: A resolved path that must exist (a file or a folder).
ExistingPath = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing)]

_PIN_NAME = re.compile(r"(?:GPIO|BCM|BOARD|J8:)(\d{1,2})")


def _gpio_pin(value: Any) -> int | str:
    """A BCM GPIO number 0..27 or a gpiozero pin name: ``GPIO17``/``BCM17`` (0..27), ``BOARD11``/``J8:11``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 27:
            raise ValueError(f"Input should be a BCM GPIO number 0..27 (got {value})")
        return value
    if isinstance(value, str):
        match = _PIN_NAME.fullmatch(value)
        if match:
            number = int(match.group(1))
            board = value.startswith(("BOARD", "J8:"))
            if (1 <= number <= 40) if board else (number <= 27):
                return value
            raise ValueError(f"pin number out of range: GPIO/BCM 0..27, BOARD/J8 header pins 1..40 (got {value!r})")
    raise ValueError('Input should be a BCM GPIO number 0..27 or a gpiozero pin name such as "GPIO17" or "BOARD11"'
                     f" (got {value!r})")


def _pin_key(pin: int | str) -> tuple[str, int]:
    """``("bcm", n)`` or ``("board", n)``: the same pin written two ways compares equal."""
    if isinstance(pin, int):
        return "bcm", pin
    number = int(_PIN_NAME.fullmatch(pin).group(1))
    return ("board" if pin.startswith(("BOARD", "J8:")) else "bcm"), number


#: A GPIO pin as gpiozero takes it.
GpioPin = Annotated[int | str, BeforeValidator(_gpio_pin)]


def _resolution(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise ValueError(f"Input should be [width, height], 2 numbers (got {list(value)})")
    return value


#: ``(width, height)`` in pixels.
Resolution = Annotated[
    tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]],
    BeforeValidator(_resolution),
]


def _topic_levels(value: str) -> str:
    if any(not level or any(c in level for c in "+#\0") for level in value.split("/")):
        raise ValueError(f"should be non-empty MQTT topic levels separated by / without + or # (got {value!r})")
    return value


# -- sections -----------------------------------------------------------------------------------------------------


class Section(BaseModel):
    """Base of every section: unknown keys are errors; inputs never echoed by pydantic (they may be secrets)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class DeviceSection(Section):
    """Who this door is."""

    id: str = Field(..., pattern=r"^[a-z0-9_-]{1,64}$",
                    description="This door's id: 1-64 of a-z 0-9 _ -. In every event and MQTT topic.")
    name: str | None = Field(None, min_length=1, max_length=200,
                             description="Display name (Home Assistant, logs); default: the id.")

    @model_validator(mode="after")
    def _default_name(self) -> DeviceSection:
        if self.name is None:
            self.name = self.id
        return self


class ModelsSection(Section):
    """The TFLite model files."""

    encoder: ExistingFile = Field(..., description="FaceNet TFLite model (facenet_<variant>.tflite) with its "
                                                   ".card.json beside it.")
    detector: ExistingFile = Field(..., description="BlazeFace TFLite face detector "
                                                    "(face_detection_short_range.tflite for a door camera).")
    threads: Annotated[int, Field(ge=1, le=16)] | None = Field(
        None, description="CPU threads for each model, 1..16; default: the runtime's choice.")


class StoreSection(Section):
    """Where the enrolled people's encodings live."""

    path: ConfigPath = Field(..., description="The SQLite encoding store file (created by 'facegate enroll').")


class RecognitionSection(Section):
    """How a face becomes a decision (see :class:`edge.decision.DoorDecider`)."""

    threshold: Annotated[float, Field(gt=0, le=2)] | None = Field(
        None, description="L2 distance (0..2) at or below which a face is that person; default: the value "
                          "measured for the encoder and written in its model card.")
    margin: float = Field(0.1, ge=0, le=1, description="Crop margin around the face box, as a fraction of its size. "
                                                       "Must match the one the store's encodings were made with.")
    align: bool = Field(True, description="Rotate each face so the eyes are level before encoding "
                                          "(must match the store's encodings).")
    min_face_px: float = Field(80.0, ge=16, le=2000,
                               description="Faces smaller than this (box's larger side, px) never count for "
                                           "unlocking. 80: about 1 m from a 640x480 camera; recognition margin "
                                           "shrinks below ~64 px (measured; see the edge.config docstring).")
    votes_needed: int = Field(2, ge=1, le=30, description="k: unlock when the same person wins k of the last "
                                                          "votes_window frames.")
    votes_window: int = Field(3, ge=1, le=30, validate_default=True,
                              description="n: how many recent frames vote; at least votes_needed.")
    window_seconds: float = Field(2.0, gt=0, le=60, description="The k winning frames must be within this many "
                                                                "seconds.")
    cooldown_seconds: float = Field(10.0, ge=0, le=3600, description="After an unlock, the same person does not "
                                                                     "unlock again for this many seconds.")
    unknown_report_interval_seconds: float = Field(10.0, ge=0, le=3600,
                                                   description="At most one 'unknown' event per this many seconds.")

    @field_validator("votes_window")
    @classmethod
    def _window_holds_votes(cls, value: int, info: ValidationInfo) -> int:
        needed = info.data.get("votes_needed")
        if needed is not None and value < needed:
            raise ValueError(f"votes_window ({value}) must be at least votes_needed ({needed})")
        return value


class CameraBase(Section):
    """Settings of every camera type."""

    read_timeout_seconds: float = Field(2.0, gt=0, le=60, description="A frame not arriving within this many "
                                                                      "seconds is a camera fault.")
    retry_initial_seconds: float = Field(1.0, gt=0, le=600, description="First wait before reopening a faulty "
                                                                        "camera; doubles after each failure.")
    retry_max_seconds: float = Field(30.0, gt=0, le=3600, validate_default=True,
                                     description="Longest wait between reopening attempts.")

    @field_validator("retry_max_seconds")
    @classmethod
    def _max_above_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("retry_initial_seconds")
        if initial is not None and value < initial:
            raise ValueError(f"retry_max_seconds ({value:g}) must be at least retry_initial_seconds ({initial:g})")
        return value


class Picamera2Section(CameraBase):
    """A Raspberry Pi camera module through picamera2 (libcamera)."""

    type: Literal["picamera2"] = Field(..., description="Raspberry Pi camera via picamera2.")
    resolution: Resolution = Field((640, 480), description="[width, height] of the frames, in pixels.")
    camera_num: int = Field(0, ge=0, le=16, description="Which camera, for boards with several (0 = the first).")


class OpenCVSection(CameraBase):
    """A USB/V4L2 camera, an RTSP/HTTP stream, a GStreamer pipeline or a video file through cv2.VideoCapture."""

    type: Literal["opencv"] = Field(..., description="Any source cv2.VideoCapture opens.")
    source: Annotated[int, Field(ge=0)] | Annotated[str, Field(min_length=1)] = Field(
        ..., description="Device index (0 = /dev/video0), a device path, an rtsp:// or http:// URL, a video file "
                         "or a GStreamer pipeline (with backend = \"gstreamer\").")
    resolution: Resolution | None = Field(None, description="[width, height] to ask the device for; default: "
                                                            "the device's own.")
    backend: Literal["any", "v4l2", "gstreamer", "ffmpeg"] = Field(
        "any", description="OpenCV capture backend (apiPreference).")


class ReplaySection(CameraBase):
    """Recorded frames: a folder of images (sorted by name) or a video file. For tests and demos."""

    type: Literal["replay"] = Field(..., description="Replay images or a video file.")
    path: ExistingPath = Field(..., description="A folder of images (read in name order) or a video file.")
    fps: float = Field(0.0, ge=0, le=1000, description="Frames per second to pace the replay at; 0 = as fast as "
                                                       "they are read.")
    loop: bool = Field(False, description="Start again at the first frame after the last.")


#: The camera section: one of the types above, chosen by ``type``.
CameraSection = Annotated[Picamera2Section | OpenCVSection | ReplaySection, Field(discriminator="type")]


class RelaySection(Section):
    """The door-strike relay."""

    pin: GpioPin = Field(..., description="GPIO of the relay: BCM number 0..27 or a gpiozero pin name "
                                          "(\"GPIO17\", \"BOARD11\").")
    active_high: bool = Field(True, description="True: the relay closes when the pin is high; false for "
                                                "active-low relay boards.")
    pulse_seconds: float = Field(3.0, ge=0.1, le=30, description="How long the door stays unlocked, 0.1..30 s.")
    pin_factory: Literal["default", "mock"] = Field(
        "default", description="\"mock\": gpiozero's MockFactory, for machines without GPIO (no relay switches).")


class DoorSection(Section):
    """Optional door sensors."""

    contact_pin: GpioPin | None = Field(None, description="GPIO of the door contact (reed switch), if any.")
    exit_pin: GpioPin | None = Field(None, description="GPIO of the inside exit button, if any.")
    held_open_seconds: float = Field(30.0, gt=0, le=3600, description="Report the door as held open after this "
                                                                      "many seconds.")


class MqttSection(Section):
    """Events to an MQTT broker (absent section: no MQTT)."""

    host: str = Field(..., min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (1883; 8883 is usual with TLS).")
    prefix: Annotated[str, AfterValidator(_topic_levels)] = Field(
        "facegate", description="First topic level(s): topics are <prefix>/<device id>/...")
    username: str | None = Field(None, min_length=1, description="Broker user name.")
    password: SecretStr | None = Field(None, description="The password in plain text: avoid; use password_env, "
                                                         "password_file or password_credential.")
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                     description="Name of the environment variable holding the password.")
    password_file: ConfigPath | None = Field(None, description="File holding the password (one line).")
    password_credential: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$",
        description="systemd credential name: the password is read from $CREDENTIALS_DIRECTORY/<name> "
                    "(LoadCredential=<name>:<file> in the unit).")
    tls: bool = Field(False, description="Connect with TLS (the system's CAs unless tls_ca is given).")
    tls_ca: ExistingFile | None = Field(None, description="CA certificate file (PEM) for the broker.")
    tls_cert: ExistingFile | None = Field(None, description="Client certificate file (PEM).")
    tls_key: ExistingFile | None = Field(None, description="Client private key file (PEM), with tls_cert.")
    outbox_path: ConfigPath | None = Field(None, description="SQLite outbox holding events until the broker has "
                                                             "them; default: outbox.sqlite beside the store.")
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery messages.")
    discovery_prefix: Annotated[str, AfterValidator(_topic_levels)] = Field(
        "homeassistant", description="Home Assistant discovery prefix.")
    commands: bool = Field(False, description="Accept commands on <prefix>/<device id>/command (reload_store).")
    allow_unlock_command: bool = Field(False, description="Accept the 'unlock' command too (needs commands = true). "
                                                          "Anyone who can publish to the broker can then open "
                                                          "the door.")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> MqttSection:
        if self.allow_unlock_command and not self.commands:
            raise _KeyProblem("allow_unlock_command", "needs commands = true")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            if getattr(self, key) is not None and not self.tls:
                raise _KeyProblem(key, "needs tls = true")
        if self.tls_key is not None and self.tls_cert is None:
            raise _KeyProblem("tls_key", "needs tls_cert")
        sources = [k for k in ("password", "password_env", "password_file", "password_credential")
                   if getattr(self, k) is not None]
        if len(sources) > 1:
            raise _KeyProblem(sources[1], f"give the password one way only, not {' and '.join(sources)}")
        if sources and self.username is None:
            raise _KeyProblem(sources[0], "a password needs a username")
        if sources and sources[0] != "password" and (info.context or {}).get("read_secrets", True):
            self.password = SecretStr(_read_secret(self, sources[0], os.environ))
        return self


def _read_secret(mqtt: MqttSection, source: str, environ: Mapping[str, str]) -> str:
    """The password from ``password_env``, ``password_file`` or ``password_credential``."""
    if source == "password_env":
        value = environ.get(mqtt.password_env)
        if not value:
            raise _KeyProblem(source, f"environment variable {mqtt.password_env} is not set or empty")
        return value
    if source == "password_credential":
        folder = environ.get(CREDENTIALS_ENV)
        if not folder:
            raise _KeyProblem(source, f"${CREDENTIALS_ENV} is not set: run under systemd with "
                                      f"LoadCredential={mqtt.password_credential}:<file>")
        path = Path(folder) / mqtt.password_credential
    else:
        path = mqtt.password_file
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise _KeyProblem(source, f"cannot read the password file {path}: {getattr(err, 'strerror', None) or err}"
                          ) from None
    if not value:
        raise _KeyProblem(source, f"the password file {path} is empty")
    if source == "password_file" and path.stat().st_mode & 0o004:
        log.warning("the MQTT password file %s is readable by everyone: chmod 600 it", path)
    return value


class LogSection(Section):
    """Logging."""

    level: Annotated[Literal["debug", "info", "warning", "error"],
                     BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)] = Field(
        "info", description="Least severe level logged: debug, info, warning or error.")


class Config(Section):
    """The whole door config file (one field per TOML table)."""

    device: DeviceSection = Field(..., description="Who this door is.")
    models: ModelsSection = Field(..., description="The TFLite model files.")
    store: StoreSection = Field(..., description="The encoding store.")
    recognition: RecognitionSection = Field(default_factory=RecognitionSection,
                                            description="Recognition and the unlock decision.")
    camera: CameraSection = Field(..., description="The camera: type = picamera2, opencv or replay.")
    relay: RelaySection = Field(..., description="The door-strike relay.")
    door: DoorSection | None = Field(None, description="Door contact and exit button (optional).")
    mqtt: MqttSection | None = Field(None, description="MQTT events (optional: absent = no MQTT).")
    log: LogSection = Field(default_factory=LogSection, description="Logging.")

    @model_validator(mode="after")
    def _check(self) -> Config:
        pins = {("relay", "pin"): self.relay.pin}
        if self.door is not None:
            pins.update({("door", k): getattr(self.door, k) for k in ("contact_pin", "exit_pin")
                         if getattr(self.door, k) is not None})
        seen: dict[tuple[str, int], tuple[str, str]] = {}
        for where, pin in pins.items():
            key = _pin_key(pin)
            if key in seen:
                raise _KeyProblem(where, f"pin {pin} is already used by {'.'.join(seen[key])}")
            seen[key] = where
        if self.mqtt is not None and self.mqtt.outbox_path is None:
            self.mqtt.outbox_path = self.store.path.with_name("outbox.sqlite")
        return self


# -- loading and error messages --------------------------------------------------------------------------------


def load_config(path: str | os.PathLike, *, read_secrets: bool = True) -> Config:
    """Read and check the door config at ``path``.

    Args:
        path: the TOML file; relative paths inside it are resolved from its folder.
        read_secrets: read the MQTT password from its env variable / file / credential now (the daemon);
            ``False`` checks everything else (``facegate check-config`` outside the service's environment).

    Raises:
        ConfigError: one line per problem, ``<file>:<line>: <key>: <reason>``.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError([f"{name}: cannot read: {err.strerror or err}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError([f"{name}:{line}: not UTF-8 text"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([_syntax_problem(name, err)]) from None
    context = {"base_dir": Path(path).resolve().parent, "read_secrets": read_secrets}
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as err:
        lines = key_lines(text)
        raise ConfigError([_problem(name, e, data, lines) for e in err.errors(include_url=False)]) from None


def validate_config(path: str | os.PathLike, *, read_secrets: bool = True) -> list[str]:
    """The problems of the config at ``path``, one line each (see :func:`load_config`); ``[]`` if it is valid."""
    try:
        load_config(path, read_secrets=read_secrets)
    except ConfigError as err:
        return err.problems
    return []


def _syntax_problem(name: str, err: Exception) -> str:
    lineno = getattr(err, "lineno", None)
    message = getattr(err, "msg", None) or str(err)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        lineno = lineno or int(match.group(1))
        message = f"{message[: match.start()]} (column {match.group(2)})"
    message = re.sub(r"\s*\(at end of document\)$", " (at the end of the file)", message)
    where = f"{name}:{lineno}" if lineno else name
    return f"{where}: TOML syntax: {message}"


def _problem(name: str, error: Mapping[str, Any], data: Mapping[str, Any], lines: dict[tuple[str, ...], int]) -> str:
    """One pydantic error as ``<file>:<line>: <key>: <reason>``."""
    loc = list(error["loc"])
    kind = error["type"]
    message = error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    # pydantic's own messages do not show the value; the validators here put it in their message when useful
    show_input = kind not in ("value_error", "missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found")
    if isinstance(cause, _KeyProblem):
        loc += cause.key
        message, show_input = str(cause), False
    elif isinstance(cause, ValueError):
        message = str(cause)
    keys = _data_path(loc, data)
    if kind == "extra_forbidden":
        message = "unknown key" + _suggestion(keys, data)
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "union_tag_invalid":
        keys.append("type")
        message = f"should be one of {error['ctx']['expected_tags']} (got {error['ctx']['tag']!r})"
    elif kind == "union_tag_not_found":
        keys.append("type")
        message = f"required, but missing: one of {_tags(keys[:-1])}"
    if show_input and not any("password" in str(k) for k in keys):
        message += _shown(error.get("input"))
    line = next((lines[tuple(keys[:n])] for n in range(len(keys), 0, -1) if tuple(keys[:n]) in lines), None)
    where = f"{name}:{line}" if line else name
    return f"{where}: {'.'.join(str(k) for k in keys) or '(top level)'}: {message}"


def _data_path(loc: list, data: Any) -> list:
    """``loc`` without pydantic's union tags (``camera.opencv.source`` -> ``camera.source``)."""
    keys = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the discriminated union's tag
        keys.append(part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return keys


def _model_at(keys: list, data: Any) -> type[BaseModel] | None:
    """The model class of the table at ``keys`` (choosing a camera type by the data's ``type``)."""
    model: type[BaseModel] | None = Config
    node = data
    for key in keys:
        field = model.model_fields.get(key) if model is not None else None
        if field is None:
            return None
        node = node.get(key) if isinstance(node, dict) else None
        models = [a for a in (get_args(field.annotation) or (field.annotation,))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) > 1 and isinstance(node, dict):
            models = [m for m in models if node.get("type") in get_args(m.model_fields["type"].annotation)]
        model = models[0] if len(models) == 1 else None
    return model


def _suggestion(keys: list, data: Any) -> str:
    model = _model_at(keys[:-1], data)
    if model is None or not isinstance(keys[-1], str):
        return ""
    close = difflib.get_close_matches(keys[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tags(keys: list) -> str:
    field = Config.model_fields.get(keys[0]) if keys else None
    if field is None:
        return "the known types"
    return ", ".join(repr(get_args(m.model_fields["type"].annotation)[0]) for m in get_args(field.annotation))


def _shown(value: Any) -> str:
    if isinstance(value, (bool, int, float, str, list, tuple)):
        text = repr(value)
        return f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    return ""


# -- line numbers of keys in TOML text -----------------------------------------------------------------------

_KEY_PART = re.compile(r"""\s*([A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')\s*""")


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a valid TOML document is defined: ``("relay", "pin") -> 1-based line``.

    Table headers (``[relay]``, ``[[x]]``), dotted and quoted keys are understood; keys inside inline tables and
    arrays are not listed (their enclosing key is). The first definition of a path wins.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    depth = 0  # open [ and { of a value that spans lines
    open_string: str | None = None  # the delimiter of a multi-line string that spans lines
    for number, line in enumerate(text.splitlines(), 1):
        if open_string is not None:
            end = line.find(open_string)
            if end >= 0:
                depth, open_string = _scan_value(line, end + 3, depth)
            continue
        if depth > 0:
            depth, open_string = _scan_value(line, 0, depth)
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            parsed = _parse_key(stripped, 2 if stripped.startswith("[[") else 1)
            if parsed is not None:
                table = tuple(parsed[0])
                lines.setdefault(table, number)
            continue
        parsed = _parse_key(line, 0)
        if parsed is None or not line[parsed[1]:].startswith("="):
            continue
        key = table + tuple(parsed[0])
        for n in range(len(table) + 1, len(key) + 1):
            lines.setdefault(key[:n], number)
        depth, open_string = _scan_value(line, parsed[1] + 1, 0)
    return lines


def _parse_key(text: str, pos: int) -> tuple[list[str], int] | None:
    parts = []
    while True:
        match = _KEY_PART.match(text, pos)
        if match is None:
            return None
        token = match.group(1)
        parts.append(tomllib.loads(f"k = {token}")["k"] if token[0] == '"' else token.strip("'"))
        pos = match.end()
        if not text.startswith(".", pos):
            return parts, pos
        pos += 1


def _scan_value(line: str, pos: int, depth: int) -> tuple[int, str | None]:
    """Bracket depth after scanning ``line[pos:]``, and the delimiter of a multi-line string left open."""
    i = pos
    while i < len(line):
        c = line[i]
        if c == "#":
            break
        if line.startswith(('"""', "'''"), i):
            delim = line[i: i + 3]
            end = line.find(delim, i + 3)
            if end < 0:
                return depth, delim
            i = end + 3
            continue
        if c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
        elif c == "'":
            i = line.find("'", i + 1)
            if i < 0:
                break
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth, None
