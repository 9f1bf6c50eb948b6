"""Encoding store benchmark: load time of a large store and the 1:N search over it.

Builds a store of ``--people`` people x ``--per-person`` random unit encodings of ``--dim`` values (through
:meth:`EncodingStore.import_`, one transaction), then measures, ``--runs`` times each:

* load: open the store (schema check, ``PRAGMA quick_check``, stamp) and ``matrix()``: target <= 1 s;
* search: the smallest L2 distance from one probe to every row, vectorised with numpy
  (``|a - b|^2 = 2 - 2 a.b`` for unit vectors, then the square root of the minimum): target <= 2 ms median.
  ``einsum`` (what :func:`edge.core.recognition.nearest` uses: no BLAS thread pool) and ``matrix @ probe``.

Prints p50 / p95 in milliseconds and the peak RSS. Not a test: nothing is asserted.

    .venv/bin/python benchmarks/bench_store.py [--people 10000 --per-person 5 --dim 128]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.core.timing import percentiles, timings  # noqa: E402
from edge.storage.store import EncodingStore  # noqa: E402
from edge.storage.transfer import EXPORT_FORMAT, EXPORT_VERSION, VECTOR_ENCODING  # noqa: E402

MODEL = hashlib.sha256(b"bench_store").hexdigest()


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write_export(path: Path, vectors: np.ndarray, per_person: int) -> None:
    """An export file (the format of :meth:`EncodingStore.export`) with ``len(vectors) / per_person`` people."""
    people = []
    for p in range(len(vectors) // per_person):
        rows = vectors[p * per_person:(p + 1) * per_person]
        people.append({"name": f"person {p:05d}", "encodings": [
            {"vector": base64.b64encode(r.astype("<f4").tobytes()).decode(), "source": f"p{p}/{i}.jpg",
             "quality": 100.0} for i, r in enumerate(rows)]})
    document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "model_sha256": MODEL,
                "embedding_size": vectors.shape[1], "vector_encoding": VECTOR_ENCODING, "people": people}
    path.write_text(json.dumps(document))


def line(label: str, times: list[float], target: str) -> str:
    p = percentiles(times)
    return f"{label:34s} p50 {p['p50']:8.3f} ms   p95 {p['p95']:8.3f} ms   ({len(times)} runs; target {target})"


def build(store_path: Path, people: int, per_person: int, dim: int, seed: int) -> None:
    """Write the store (in a child process, so the JSON it goes through does not count in the loader's RSS)."""
    vectors = unit_rows(np.random.default_rng(seed), people * per_person, dim)
    export_path = store_path.with_name("people.json")
    write_export(export_path, vectors, per_person)
    start = time.perf_counter()
    with EncodingStore(store_path, model_sha256=MODEL, embedding_size=dim) as store:
        count = store.import_(export_path)
    print(f"store: {people} people x {per_person} = {count} encodings of {dim} float32, "
          f"{store_path.stat().st_size / 1e6:.1f} MB; built by one import_ in {time.perf_counter() - start:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--per-person", type=int, default=5)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--load-runs", type=int, default=20)
    parser.add_argument("--search-runs", type=int, default=2000)
    args = parser.parse_args(argv)
    seed, count = 0, args.people * args.per_person

    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "store.db"
        child = multiprocessing.get_context("spawn").Process(
            target=build, args=(store_path, args.people, args.per_person, args.dim, seed))
        child.start()
        child.join()
        if child.exitcode != 0:
            return 1

        def load() -> None:
            with EncodingStore(store_path, model_sha256=MODEL, embedding_size=args.dim, create=False) as s:
                names, matrix = s.matrix()
                assert matrix.shape == (count, args.dim) and len(names) == count

        load_times = timings(load, args.load_runs)
        with EncodingStore(store_path, model_sha256=MODEL, embedding_size=args.dim, create=False) as store:
            names, matrix = store.matrix()
            cached = timings(store.matrix, args.load_runs)
    load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rng = np.random.default_rng(seed + 1)
    probes = unit_rows(rng, args.search_runs, args.dim)
    probe_iter = iter(probes)

    def search_einsum() -> float:
        dots = np.einsum("ij,j->i", matrix, next(probe_iter))
        return math.sqrt(max(2.0 - 2.0 * float(dots.max()), 0.0))

    def search_matmul() -> float:
        dots = matrix @ next(probe_iter)
        return math.sqrt(max(2.0 - 2.0 * float(dots.max()), 0.0))

    einsum_times = timings(search_einsum, args.search_runs)
    probe_iter = iter(probes)
    matmul_times = timings(search_matmul, args.search_runs)
    one_pass = timings(matrix.sum, args.search_runs // 10)
    search_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # checks, after the measurements (their temporary arrays would inflate the peak RSS)
    assert np.array_equal(matrix, unit_rows(np.random.default_rng(seed), count, args.dim)), "store != imported"
    probe_iter = iter(probes)
    fast, exact = search_einsum(), float(np.linalg.norm(matrix - probes[0], axis=1).min())
    assert abs(fast - exact) < 1e-3, (fast, exact)

    print(line("open + quick_check + matrix()", load_times, "<= 1000 ms"))
    print(line("matrix() again (cached)", cached, "-"))
    print(line(f"1:N search over {count} (einsum)", einsum_times, "<= 2 ms p50"))
    print(line(f"1:N search over {count} (matmul, BLAS)", matmul_times, "<= 2 ms p50"))
    print(line(f"reference: matrix.sum() ({matrix.nbytes / 1e6:.1f} MB)", one_pass, "memory-bandwidth floor"))
    print(f"check: the store returns exactly what was imported; shortcut {fast:.6f} = np.linalg.norm {exact:.6f}")
    print(f"peak RSS of this process: {load_rss:.0f} MB after loading, {search_rss:.0f} MB after searching; "
          f"building (child process, JSON included): "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
