"""``[mqtt]``: events to an MQTT broker, and where its password comes from.

The password should not be written in the file. It can come from an environment variable (``password_env``),
a file (``password_file``) or a systemd credential (``password_credential = "name"`` reads
``$CREDENTIALS_DIRECTORY/name``, set by ``LoadCredential=`` / ``LoadCredentialEncrypted=``). It is read while
the section is validated (unless the validation context says ``read_secrets = False``) and held as a
:class:`pydantic.SecretStr`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, model_validator

from edge.config.types import ConfigPath, ExistingFile, KeyProblem, Section, TopicLevels

log = logging.getLogger(__name__)

#: The systemd credentials folder variable (``LoadCredential=`` in the unit sets it for the service).
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


class MqttSection(Section):
    """Events to an MQTT broker (absent section: no MQTT)."""

    host: str = Field(..., min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (1883; 8883 is usual with TLS).")
    prefix: TopicLevels = Field(
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
    discovery_prefix: TopicLevels = Field(
        "homeassistant", description="Home Assistant discovery prefix.")
    commands: bool = Field(False, description="Accept commands on <prefix>/<device id>/command (reload_store, "
                                              "and lock: relay off now).")
    allow_unlock_command: bool = Field(False, description="Accept the 'unlock' command too (needs commands = true). "
                                                          "Anyone who can publish to the broker can then open "
                                                          "the door.")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> MqttSection:
        if self.allow_unlock_command and not self.commands:
            raise KeyProblem("allow_unlock_command", "needs commands = true")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            if getattr(self, key) is not None and not self.tls:
                raise KeyProblem(key, "needs tls = true")
        if self.tls_key is not None and self.tls_cert is None:
            raise KeyProblem("tls_key", "needs tls_cert")
        sources = [k for k in ("password", "password_env", "password_file", "password_credential")
                   if getattr(self, k) is not None]
        if len(sources) > 1:
            raise KeyProblem(sources[1], f"give the password one way only, not {' and '.join(sources)}")
        if sources and self.username is None:
            raise KeyProblem(sources[0], "a password needs a username")
        if sources and sources[0] != "password" and (info.context or {}).get("read_secrets", True):
            self.password = SecretStr(_read_secret(self, sources[0], os.environ))
        return self


def _read_secret(mqtt: MqttSection, source: str, environ: Mapping[str, str]) -> str:
    """The password from ``password_env``, ``password_file`` or ``password_credential``."""
    if source == "password_env":
        value = environ.get(mqtt.password_env or "")
        if not value:
            raise KeyProblem(source, f"environment variable {mqtt.password_env} is not set or empty")
        return value
    if source == "password_credential":
        folder = environ.get(CREDENTIALS_ENV)
        if not folder:
            raise KeyProblem(source, f"${CREDENTIALS_ENV} is not set: run under systemd with "
                                     f"LoadCredential={mqtt.password_credential}:<file>")
        path = Path(folder) / (mqtt.password_credential or "")
    elif mqtt.password_file is not None:
        path = mqtt.password_file
    else:
        raise KeyProblem(source, "no password source")
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise KeyProblem(source, f"cannot read the password file {path}: {getattr(err, 'strerror', None) or err}"
                         ) from None
    if not value:
        raise KeyProblem(source, f"the password file {path} is empty")
    if source == "password_file" and path.stat().st_mode & 0o004:
        log.warning("the MQTT password file %s is readable by everyone: chmod 600 it", path)
    return value
