"""Model cards: the JSON file beside each ``.tflite`` that says what the model is and how to feed it.

The card is written by ``facegate-convert build`` (:mod:`convert.build`) and only read here, on the device. It
carries the model's sha256 (a model that does not match its card is refused), its input and output tensors with
their quantisation, the preprocessing it was built and checked with, and the distance threshold measured for
it. The embedding size comes from here, never from a constant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ModelError
from edge.files import sha256_file

CARD_FORMAT = 1


def card_path(model_path: str | Path) -> Path:
    """Where the card of ``model_path`` lives: ``facenet_int8.tflite`` -> ``facenet_int8.card.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.json")


@dataclass(frozen=True)
class ModelCard:
    """A parsed card; ``data`` holds the whole JSON document."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def for_model(cls, model_path: str | Path, *, verify: bool = True) -> ModelCard:
        """Read the card of ``model_path`` and, with ``verify``, check the model's sha256 against it."""
        model_path = Path(model_path)
        path = card_path(model_path)
        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist (build it with 'facegate-convert build')")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ModelError(f"model {model_path.name} has no card {path.name} beside it") from exc
        except (OSError, ValueError) as exc:
            raise ModelError(f"model card {path} is unreadable: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT or "sha256" not in data:
            raise ModelError(f"model card {path} is not a facegate card of format {CARD_FORMAT}")
        card = cls(path, data)
        if verify:
            actual = sha256_file(model_path)
            if actual != data["sha256"]:
                raise ModelError(
                    f"{model_path.name} does not match its card: sha256 {actual[:16]}..., card says "
                    f"{data['sha256'][:16]}... (a different or damaged model file)"
                )
        return card

    @property
    def sha256(self) -> str:
        return self.data["sha256"]

    @property
    def variant(self) -> str:
        return self.data["variant"]

    @property
    def embedding_size(self) -> int:
        return int(self.data["output"]["shape"][-1])

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the face crop the model takes, in pixels."""
        shape = self.data["input"]["shape"]
        return int(shape[1]), int(shape[2])

    @property
    def threshold(self) -> float | None:
        """The distance threshold measured for this model, or ``None`` if the card has none."""
        value = (self.data.get("threshold") or {}).get("value")
        return None if value is None else float(value)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.data["preprocessing"]
