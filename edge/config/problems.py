"""Config problems as one line each: ``<file>:<line>: <key>: <reason>``.

Pydantic's errors are rewritten to name the TOML key as written (no union tags), with the line it is on (from
:func:`edge.config.toml_lines.key_lines`), a suggestion for a mistyped key, and the offending value where it
helps (never a password's).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel

from edge.config.plain import KeyProblem, located, syntax_problem

__all__ = ["pydantic_problem", "syntax_problem"]


def pydantic_problem(name: str, error: Mapping[str, Any], data: Mapping[str, Any],
                     lines: dict[tuple[str, ...], int], root: type[BaseModel]) -> str:
    """One pydantic error of validating ``data`` into ``root`` as ``<file>:<line>: <key>: <reason>``."""
    loc = list(error["loc"])
    kind = error["type"]
    message = error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    # pydantic's own messages do not show the value; the validators here put it in their message when useful
    show_input = kind not in ("value_error", "missing", "extra_forbidden", "unexpected_keyword_argument",
                              "union_tag_invalid", "union_tag_not_found")
    if isinstance(cause, KeyProblem):
        loc += cause.key
        message, show_input = str(cause), False
    elif isinstance(cause, ValueError):
        message = str(cause)
    keys = _data_path(loc, data)
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # the latter: a dataclass section (relay)
        message = "unknown key" + _suggestion(root, keys, data)
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "union_tag_invalid":
        keys.append("type")
        message = f"should be one of {error['ctx']['expected_tags']} (got {error['ctx']['tag']!r})"
    elif kind == "union_tag_not_found":
        keys.append("type")
        message = f"required, but missing: one of {_tags(root, keys[:-1])}"
    if show_input and not any("password" in str(k) for k in keys):
        message += _shown(error.get("input"))
    return located(name, keys, message, lines)


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


def _model_at(root: type[BaseModel], keys: list, data: Any) -> type[BaseModel] | None:
    """The model class of the table at ``keys`` below ``root`` (choosing a camera type by the data's ``type``)."""
    model: type[BaseModel] | None = root
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


def _suggestion(root: type[BaseModel], keys: list, data: Any) -> str:
    model = _model_at(root, keys[:-1], data)
    if model is None or not isinstance(keys[-1], str):
        return ""
    close = difflib.get_close_matches(keys[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tags(root: type[BaseModel], keys: list) -> str:
    field = root.model_fields.get(keys[0]) if keys else None
    if field is None:
        return "the known types"
    return ", ".join(repr(get_args(m.model_fields["type"].annotation)[0]) for m in get_args(field.annotation))


def _shown(value: Any) -> str:
    if isinstance(value, (bool, int, float, str, list, tuple)):
        text = repr(value)
        return f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    return ""
