"""Shared by the store's tests: a made-up model, unit vectors, a filled store file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge.storage.store import EncodingStore

REPO = Path(__file__).resolve().parent.parent
MODEL = hashlib.sha256(b"facenet int8").hexdigest()
OTHER_MODEL = hashlib.sha256(b"facenet float32").hexdigest()
D = 128


def unit(rng: np.random.Generator, k: int, d: int = D) -> np.ndarray:
    v = rng.standard_normal((k, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_store(path: Path, **kw) -> EncodingStore:
    kw.setdefault("model_sha256", MODEL)
    kw.setdefault("embedding_size", D)
    return EncodingStore(path, **kw)


def content(store: EncodingStore):
    """Everything observable about a store's data, for before/after comparisons."""
    names, matrix = store.matrix()
    return store.people(), names, matrix.copy(), [store.entries(p.name) for p in store.people()]


def same_content(a, b) -> bool:
    return a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2]) and a[3] == b[3]
