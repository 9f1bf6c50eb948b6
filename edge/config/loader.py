"""Reading the whole config file: :func:`load_config` and :func:`validate_config`."""

from __future__ import annotations

import os
from pathlib import Path

from edge.config.parsing import parse, read_text, validate
from edge.config.root import Config
from edge.errors import ConfigError


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
    text = read_text(path)
    data = parse(name, text)
    context = {"base_dir": Path(path).resolve().parent, "read_secrets": read_secrets}
    return validate(Config, name, text, data, context)


def validate_config(path: str | os.PathLike, *, read_secrets: bool = True) -> list[str]:
    """The problems of the config at ``path``, one line each (see :func:`load_config`); ``[]`` if it is valid."""
    try:
        load_config(path, read_secrets=read_secrets)
    except ConfigError as err:
        return err.problems
    return []
