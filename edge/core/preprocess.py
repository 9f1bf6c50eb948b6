"""The pixel and vector arithmetic around the FaceNet model, shared by the device and the converter.

The pretrained weights expect each face crop standardised on its own ("prewhiten"), and the model's
128-d output is not normalised: both steps live here, and ``convert`` imports them (never the reverse),
so the device and the workstation cannot drift apart.
"""

from __future__ import annotations

import numpy as np


def prewhiten(faces: np.ndarray) -> np.ndarray:
    """Standardise each image on its own: ``(x - mean) / max(std, 1 / sqrt(n))``.

    Args:
        faces: one image ``(H, W, C)`` or a batch ``(m, H, W, C)``, any numeric dtype, pixel values 0..255.
            Mean and standard deviation are taken over all ``n = H * W * C`` values of each image.

    Returns:
        float32 array of the same shape, each image with mean 0 and standard deviation 1 (unless the image
        is flat, where the floor ``1 / sqrt(n)`` avoids a division by zero).
    """
    x = np.asarray(faces, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"prewhiten expects (H, W, C) or (m, H, W, C), got shape {x.shape}")
    n = x[0].size
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0 / np.sqrt(n))
    out = (x - mean) / std
    return out[0] if single else out


def l2_normalize(vectors: np.ndarray, *, epsilon: float = 1e-10) -> np.ndarray:
    """Scale each row of ``vectors`` (shape ``(..., d)``) to Euclidean length 1; float32 out."""
    v = np.asarray(vectors, dtype=np.float32)
    norm = np.sqrt(np.maximum(np.sum(v * v, axis=-1, keepdims=True), epsilon))
    return v / norm
