"""``[log]``: logging."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from edge.config.types import Section


class LogSection(Section):
    """Logging."""

    level: Annotated[Literal["debug", "info", "warning", "error"],
                     BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)] = Field(
        "info", description="Least severe level logged: debug, info, warning or error.")
