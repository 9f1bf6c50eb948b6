"""The face encoder: 160x160 RGB face crops in, L2-normalised embeddings out, on the TFLite runtime."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.core.modelcard import ModelCard
from edge.core.preprocess import l2_normalize, prewhiten
from edge.core.runtime import TFLiteModel
from edge.errors import ModelError

log = logging.getLogger(__name__)


class FaceEncoder:
    """A FaceNet TFLite model with its card: turns face crops into unit-length embeddings.

    Args:
        model_path: the ``.tflite`` file; its card must lie beside it and match its sha256.
        num_threads: CPU threads for the interpreter (``None``: the runtime's default).
        runtime: force a TFLite runtime by name (see :mod:`edge.core.runtime`).
        card: the model's card, when the caller already holds it (the converter, before the card is
            written); by default it is read from beside the model and checked against its sha256.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        num_threads: int | None = None,
        runtime: str | None = None,
        card: ModelCard | None = None,
    ):
        self.card = card if card is not None else ModelCard.for_model(model_path)
        self.model = TFLiteModel(model_path, num_threads=num_threads, runtime=runtime)
        expected = (1, *self.card.input_size, 3)
        if self.model.input.shape != expected:
            raise ModelError(f"{Path(model_path).name}: input {self.model.input.shape}, its card says {expected}")

    @property
    def embedding_size(self) -> int:
        return self.card.embedding_size

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels of the crops :meth:`encode` takes."""
        return self.card.input_size

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """Embed face crops.

        Args:
            crops: ``(m, H, W, 3)`` or one ``(H, W, 3)`` RGB crop, pixel values 0..255, ``(H, W)`` =
                :attr:`input_size`.

        Returns:
            float32 ``(m, embedding_size)``, each row of L2 norm 1 (one row for a single crop).
        """
        batch = np.asarray(crops)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (*self.input_size, 3):
            raise ModelError(f"encoder expects crops of shape (m, {self.input_size[0]}, {self.input_size[1]}, 3), "
                             f"got {batch.shape}")
        out = np.empty((len(batch), self.embedding_size), np.float32)
        for i, crop in enumerate(prewhiten(batch)):
            out[i] = self.model(crop[None])[0][0]
        return l2_normalize(out)
