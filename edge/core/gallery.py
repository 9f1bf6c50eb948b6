"""The enrolled encodings as one matrix, and the 1:N nearest-neighbour search over it.

A *database* is anything the search can read encodings from:

* a mapping ``name -> encoding(s)`` (``(d,)`` or ``(k, d)``: several pictures per person), the seed's dict;
* an object with a ``matrix() -> (names, (n, d) array)`` method: :class:`edge.storage.store.EncodingStore`
  (cached, re-read only when the file changed) or a fixed :class:`Gallery`.

Distances are Euclidean (L2, ``np.linalg.norm``, not its square) between L2-normalised encodings: 0..2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge.errors import FacegateError

#: who_is_it's starting distance: larger than any distance between unit vectors (at most 2).
START_DISTANCE = 100.0


class Gallery:
    """A fixed set of encodings: ``names[i]`` is the person of row ``i`` of the ``(n, d)`` float32 ``matrix``.

    For searches repeated over the same encodings (benchmarks, evaluations): :func:`database_matrix` on a
    mapping builds the matrix anew at every call, a gallery once.
    """

    def __init__(self, names: Sequence[str], matrix: np.ndarray):
        self._names = list(names)
        self._matrix = np.ascontiguousarray(matrix, np.float32)
        if self._matrix.ndim != 2 or len(self._names) != len(self._matrix):
            raise ValueError(f"{len(self._names)} names for a matrix of shape {self._matrix.shape}")

    @classmethod
    def of(cls, database: Any) -> Gallery:
        """The encodings of any database (see the module docstring), read once."""
        return cls(*database_matrix(database))

    def matrix(self) -> tuple[list[str], np.ndarray]:
        return self._names, self._matrix

    def __len__(self) -> int:
        return len(self._names)


def database_matrix(database: Any) -> tuple[list[str], np.ndarray]:
    """All encodings of ``database`` as ``(names per row, (n, d) float32)``; an empty mapping gives ``(0, 0)``."""
    if hasattr(database, "matrix"):
        stored, matrix = database.matrix()
        return (stored if isinstance(stored, list) else list(stored)), np.asarray(matrix, np.float32)
    if not isinstance(database, Mapping):
        raise TypeError("database must be a mapping name -> encoding(s) or have a matrix() method")
    names: list[str] = []
    rows = []
    for name, encodings in database.items():
        block = np.atleast_2d(np.asarray(encodings, np.float32))
        names += [name] * len(block)
        rows.append(block)
    if not rows:
        return [], np.empty((0, 0), np.float32)
    return names, np.concatenate(rows)


def nearest(encoding: np.ndarray, names: Sequence[str], matrix: np.ndarray) -> tuple[float, str | None]:
    """The stored encoding closest to ``encoding`` ``(d,)``: ``(L2 distance, name)``; ``(100.0, None)`` if empty.

    One vectorised step over all rows picks the winner (``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``); its
    distance is then computed exactly as ``np.linalg.norm(a - b)``, so the result equals the seed's loop
    (ties between rows equal to within float rounding may pick either).
    """
    if len(names) == 0:
        return START_DISTANCE, None
    e = np.asarray(encoding, np.float32).reshape(-1)
    if matrix.shape[1] != e.shape[0]:
        raise FacegateError(f"encoding has {e.shape[0]} values, the database {matrix.shape[1]}")
    # einsum, not ``matrix @ e``: a BLAS matrix-vector product wakes OpenBLAS's thread pool, which then
    # spins on the cores the encoder needs (measured: a 2-thread encode went from 22 to 44 ms).
    squared = np.einsum("ij,ij->i", matrix, matrix) - 2.0 * np.einsum("ij,j->i", matrix, e) + float(np.dot(e, e))
    k = int(np.argmin(squared))
    dist = float(np.linalg.norm(e - matrix[k]))
    if dist >= START_DISTANCE:
        return START_DISTANCE, None
    return dist, names[k]
