"""Text shared by the measuring commands (calibrate, evaluate): the pipeline in use, percentages."""

from __future__ import annotations

from typing import Any

from edge.cli.context import CliEnv
from edge.eval.calibration import pct

__all__ = ["encode_photos", "pct", "pipeline_record", "pipeline_text"]


def pipeline_record(model: Any, env: CliEnv) -> dict:
    """The models and crop settings a measurement used, for its JSON record."""
    return {"model": env.model_path().name, "variant": model.encoder.card.variant, "model_sha256": model.model_sha256,
            "detector": env.detector_path().name, "margin": model.margin, "align": model.align}


def pipeline_text(p: dict) -> str:
    """:func:`pipeline_record` as one phrase."""
    return (f"{p['model']}, {p['detector']}, margin {p['margin']}, "
            f"{'aligned' if p['align'] else 'not aligned'}")


def encode_photos(model: Any, photos: list, *, label: str, show_progress: bool = True) -> Any:
    """Every ``(person, path)`` through the face pipeline, with a progress bar on stderr:
    :func:`edge.eval.photos.analyse_photos`."""
    from edge.eval.photos import analyse_photos
    from edge.eval.progress import Progress

    with Progress(len(photos), f"{label}: finding and encoding faces", enabled=show_progress) as bar:
        return analyse_photos(photos, model, progress=bar)
