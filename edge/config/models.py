"""``[models]``: the TFLite model files (built by ``facegate-convert build``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.config.types import ExistingFile, Section


class ModelsSection(Section):
    """The TFLite model files."""

    encoder: ExistingFile = Field(..., description="FaceNet TFLite model (facenet_<variant>.tflite) with its "
                                                   ".card.json beside it.")
    detector: ExistingFile = Field(..., description="BlazeFace TFLite face detector "
                                                    "(face_detection_short_range.tflite for a door camera).")
    threads: Annotated[int, Field(ge=1, le=16)] | None = Field(
        None, description="CPU threads for each model, 1..16; default: the runtime's choice.")
