"""``[store]``: where the enrolled people's encodings live."""

from __future__ import annotations

from pydantic import Field

from edge.config.types import ConfigPath, Section


class StoreSection(Section):
    """Where the enrolled people's encodings live."""

    path: ConfigPath = Field(..., description="The SQLite encoding store file (created by 'facegate enroll').")
