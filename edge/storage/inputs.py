"""Checks of what a caller hands the store: encodings, and the source and quality of each. One-line
:class:`~edge.errors.StoreInputError` s that say what is wrong, before anything is written."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.errors import StoreInputError

NORM_TOLERANCE = 1e-3  # |L2 norm - 1| an encoding may have; float32 rounding is ~1e-7


def check_vectors(encodings: Any, size: int, what: str = "encodings") -> np.ndarray:
    """``encodings`` ((k, size) or (size,), real numbers) as a (k, size) float32 array, k >= 1; each row must be
    finite with L2 norm 1 (within :data:`NORM_TOLERANCE`)."""
    try:
        array = np.asarray(encodings)
    except (ValueError, TypeError) as err:
        raise StoreInputError(f"{what} must be an array of numbers: {err}") from None
    if array.dtype.kind not in "fiu":
        raise StoreInputError(f"{what} must be real numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != size or array.shape[0] == 0:
        raise StoreInputError(f"{what} must have shape (k, {size}) or ({size},) with k >= 1, "
                              f"got {np.shape(encodings)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise StoreInputError(f"{what}: row {int(np.argmin(finite))} holds a non-finite value (NaN or infinity)")
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        k = int(np.argmax(off))
        raise StoreInputError(f"{what}: row {k} has L2 norm {norms[k]:.4g}, not 1 (store L2-normalised encodings)")
    return array


def check_column(values: Any, k: int, what: str, check: Callable[[Any, str], Any]) -> list:
    """``values`` as a list of ``k`` checked values (``None``: ``k`` times ``None``), one per encoding."""
    if values is None:
        return [None] * k
    try:
        items = None if isinstance(values, (str, bytes, os.PathLike)) else list(values)
    except TypeError:
        items = None
    if items is None or len(items) != k:
        raise StoreInputError(f"{what} must be a list of {k} value(s), one per encoding")
    return [check(v, f"{what}[{i}]") for i, v in enumerate(items)]


def check_source(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise StoreInputError(f"{what} must be a string or None, got {type(value).__name__}")
    return value


def check_quality(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StoreInputError(f"{what} must be a number or None, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise StoreInputError(f"{what} must be finite, got an integer too large for a float") from None
    if not math.isfinite(number):
        raise StoreInputError(f"{what} must be finite, got {value}")
    return number

