"""The ``[relay]`` table alone, for ``facegate relay-off``: systemd's safety net after the daemon died.

It must switch the relay off fast and whatever else is wrong with the file, so only the relay table is read and
checked, in plain Python (:mod:`edge.config.plain`, :mod:`edge.config.relay`: no pydantic, no other section): a
section that is broken, missing or nested too deep does not matter here, and ``facegate check-config`` is the
tool that checks it. A file that is not TOML as a whole (or not UTF-8) still works: the lines of its
``[relay]`` table are cut out of the text and parsed on their own, with a warning.
"""

from __future__ import annotations

import logging
import os

from edge.config.plain import KeyProblems, located, parse_toml, read_text
from edge.config.relay import RelaySection
from edge.config.toml_lines import key_lines, table_text
from edge.errors import ConfigError

log = logging.getLogger(__name__)


def relay_section(path: str | os.PathLike) -> RelaySection:
    """The ``[relay]`` settings of the door config at ``path``, whatever is wrong with the rest of the file.

    From the whole file if it parses as TOML, else from the lines of the table cut out of its text (see
    :func:`edge.config.toml_lines.table_text`: line numbers stay the file's; bytes that are not UTF-8 are
    replaced, so that such a byte elsewhere does not hide the table), with a warning naming the problem.

    Raises:
        ConfigError: the file cannot be read, or its ``[relay]`` table is missing, not TOML or invalid (one line
            per problem, ``<file>:<line>: relay.<key>: <reason>``).
    """
    name = str(path)
    problems: list[str] = []
    try:
        text = read_text(path)
    except ConfigError as err:  # not UTF-8 (a file that cannot be read fails again just below)
        problems += err.problems
        text = read_text(path, strict=False)
    try:
        data = parse_toml(name, text)
    except ConfigError as err:
        problems += err.problems
        text = table_text(text, "relay")
        data = parse_toml(name, text)
    if "relay" not in data:
        raise ConfigError([*problems, f"{name}: relay: required, but missing"])
    if problems:
        log.warning("%s has problems outside [relay] (%s); switching the relay off anyway", path, "; ".join(problems))
    try:
        return RelaySection.from_table(data["relay"])
    except KeyProblems as err:
        lines = key_lines(text)
        table = [located(name, ("relay", *p.key), str(p), lines) for p in err.problems]
        raise ConfigError(problems + table) from None
