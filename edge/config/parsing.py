"""Parsing a config file's text and validating it into a model: the steps every reader of the file shares.

Light on purpose: pydantic, tomllib and the line scanner only, no section model (``facegate relay-off`` imports
this with the relay section alone).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge.config.plain import KeyProblems, read_text
from edge.config.plain import parse_toml as parse
from edge.config.problems import pydantic_problem
from edge.config.toml_lines import key_lines

__all__ = ["parse", "read_text", "validate"]
from edge.errors import ConfigError

_Model = TypeVar("_Model", bound=BaseModel)


def validate(model: type[_Model], name: str, text: str, data: dict[str, Any], context: dict[str, Any]) -> _Model:
    """``data`` (parsed from ``text``) checked into ``model``; each pydantic error as one line naming its key."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        lines = key_lines(text)
        problems = []
        for error in err.errors(include_url=False):
            ctx = error.get("ctx") or {}
            if isinstance(ctx.get("error"), KeyProblems):  # a table checked in plain Python ([relay]): one line each
                problems += [pydantic_problem(name, {**error, "ctx": {**ctx, "error": one}}, data, lines, model)
                             for one in ctx["error"].problems]
            else:
                problems.append(pydantic_problem(name, error, data, lines, model))
        raise ConfigError(problems) from None
