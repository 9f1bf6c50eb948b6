"""How far the door's 1:N threshold moves when the reference strangers are encoded on arm64 instead of x86.

    python threshold_shift.py --models WEIGHTS --arm64 STRANGERS.jsonl --store PEOPLE.sqlite

The card's reference strangers (``facenet_int8.strangers.npy``) are the build machine's encodings of the
portraits in ``WEIGHTS/photos/reference_strangers``; ``STRANGERS.jsonl`` is ``encodings.py`` run on the same
portraits on arm64 (faceless ones give ``null``, as the build skips them). For the people of ``PEOPLE.sqlite``
and for every subset of them of each size, it prints the threshold :func:`edge.core.openset.derive_threshold`
gives with either set of strangers, and the largest difference.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from edge.core.modelcard import ModelCard
from edge.core.openset import derive_threshold, templates
from edge.storage.store import EncodingStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--arm64", type=Path, required=True, help="encodings.py's output on the portraits, on arm64")
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args(argv)
    card = ModelCard.for_model(args.models / "facenet_int8.tflite")
    x86 = card.reference_strangers()
    rows = [json.loads(line) for line in args.arm64.read_text().splitlines() if line.strip()]
    arm64 = np.array([r["encoding"] for r in sorted(rows, key=lambda r: r["photo"]) if r["encoding"] is not None],
                     np.float32)
    if x86 is None or card.threshold is None or arm64.shape != x86.shape:
        print(f"error: {len(arm64)} arm64 encodings against the card's {None if x86 is None else x86.shape}")
        return 1
    moved = np.linalg.norm(arm64 - x86, axis=1)
    print(f"{len(x86)} reference strangers: arm64 against x86, L2 largest {moved.max():.4f}, mean {moved.mean():.4f}")
    with EncodingStore(args.store, model_sha256=card.sha256, embedding_size=card.embedding_size,
                       create=False) as store:
        names, matrix = templates(*store.matrix())
    largest, ceiling = 0.0, card.threshold
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            people = matrix[list(subset)]
            a = derive_threshold(people, x86, card_threshold=ceiling).value
            b = derive_threshold(people, arm64, card_threshold=ceiling).value
            largest = max(largest, abs(a - b))
            print(f"{', '.join(names[i] for i in subset):60s} x86 {a:.3f}  arm64 {b:.3f}  {b - a:+.3f}")
    print(f"largest threshold difference: {largest:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
