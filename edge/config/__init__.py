"""The door daemon's configuration: one TOML file, checked strictly into typed pydantic models.

Every section forbids unknown keys (a typo is an error, not a silently ignored setting) and every field
carries a description (``Config.model_json_schema()`` documents the file). :func:`load_config` reads the
file with :mod:`tomllib` and raises :class:`ConfigError`, whose message has one line per problem naming
the file, the line and the key::

    door.toml:14: relay.pin: Input should be a BCM GPIO number 0..27 (got 99)
    door.toml:3: device.colour: unknown key

Paths in the file are resolved relative to the folder of the config file, after expanding ``~`` and
environment variables (``$VAR`` or ``${VAR}``; an unset variable is an error). Values nested more than 32
levels deep are refused before the file is parsed (``door.toml:7: nested more than 32 levels deep``).

Secrets: the MQTT password should not be written in the file. It can come from an environment variable
(``password_env``), a file (``password_file``) or a systemd credential (``password_credential = "name"``
reads ``$CREDENTIALS_DIRECTORY/name``, set by ``LoadCredential=`` / ``LoadCredentialEncrypted=``). It is
held as a :class:`pydantic.SecretStr`: repr, str, logs and ``model_dump`` show ``**********``; only
``.get_secret_value()`` gives it.

``facegate relay-off`` reads only :func:`relay_section` (:mod:`~edge.config.relay_reader`): the ``[relay]``
table, checked on its own, valid even when the rest of the file is not (not TOML at all, say). Importing this
package imports no section model: each name below is imported on first use.

The package, one module per part (in the style of Frigate's config):

- :mod:`~edge.config.types`: shared field types (paths, GPIO pins, resolutions, topic levels) and
  :class:`Section`, the base of every section;
- one module per section: :mod:`~edge.config.device`, :mod:`~edge.config.models`, :mod:`~edge.config.store`,
  :mod:`~edge.config.recognition` (why ``min_face_px`` defaults to 80 is measured there),
  :mod:`~edge.config.liveness` (presentation-attack checks),
  :mod:`~edge.config.camera` (picamera2, opencv or replay, chosen by ``type``), :mod:`~edge.config.relay`,
  :mod:`~edge.config.door`, :mod:`~edge.config.mqtt` (and its password sources), :mod:`~edge.config.log`;
- :mod:`~edge.config.root`: :class:`Config`, the whole file, and its checks across sections;
- :mod:`~edge.config.parsing`: reading, parsing (with the nesting limit) and validating text into a model;
- :mod:`~edge.config.loader`: the whole file (:func:`load_config`, :func:`validate_config`);
- :mod:`~edge.config.relay_reader`: the ``[relay]`` table alone (:func:`relay_section`);
- :mod:`~edge.config.problems`: pydantic's errors as ``<file>:<line>: <key>: <reason>`` lines;
- :mod:`~edge.config.toml_lines`: a line scanner of TOML text (each key's line, nesting depth, one table's
  lines).

It imports nothing but pydantic, tomllib (tomli on Python 3.10), the standard library and :mod:`edge.errors`:
never numpy, cv2, paho or gpiozero (``facegate relay-off`` imports it and must start fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError

#: Public name -> the module of this package that defines it (imported on first use: see ``__getattr__``).
_EXPORTS = {
    "CameraBase": "camera",
    "CameraSection": "camera",
    "OpenCVSection": "camera",
    "Picamera2Section": "camera",
    "ReplaySection": "camera",
    "DeviceSection": "device",
    "DoorSection": "door",
    "load_config": "loader",
    "validate_config": "loader",
    "relay_section": "relay_reader",
    "LivenessSection": "liveness",
    "LogSection": "log",
    "ModelsSection": "models",
    "MqttSection": "mqtt",
    "RecognitionSection": "recognition",
    "RelaySection": "relay",
    "Config": "root",
    "StoreSection": "store",
    "Section": "types",
}

__all__ = [
    "CameraBase",
    "CameraSection",
    "Config",
    "ConfigError",
    "DeviceSection",
    "DoorSection",
    "LivenessSection",
    "LogSection",
    "ModelsSection",
    "MqttSection",
    "OpenCVSection",
    "Picamera2Section",
    "RecognitionSection",
    "RelaySection",
    "ReplaySection",
    "Section",
    "StoreSection",
    "load_config",
    "relay_section",
    "validate_config",
]

if TYPE_CHECKING:
    from edge.config.camera import CameraBase, CameraSection, OpenCVSection, Picamera2Section, ReplaySection
    from edge.config.device import DeviceSection
    from edge.config.door import DoorSection
    from edge.config.liveness import LivenessSection
    from edge.config.loader import load_config, validate_config
    from edge.config.log import LogSection
    from edge.config.models import ModelsSection
    from edge.config.mqtt import MqttSection
    from edge.config.recognition import RecognitionSection
    from edge.config.relay import RelaySection
    from edge.config.relay_reader import relay_section
    from edge.config.root import Config
    from edge.config.store import StoreSection
    from edge.config.types import Section


def __getattr__(name: str) -> Any:
    """``from edge.config import Config`` imports the section models then, not when the package is imported:
    ``facegate relay-off`` imports :mod:`edge.config.relay_reader` and builds the relay model alone."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edge.config' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edge.config.{module}"), name)
