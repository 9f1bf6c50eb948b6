"""File helpers: content hashes and all-or-nothing writes.

Every model file, card and report is written through :func:`atomic_output`: a temporary name in the same
folder, flushed to disk, then renamed over the target, so a crash, a full disk or an error never leaves a
half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(root: str | Path) -> tuple[str, int]:
    """Hash of a folder of files and their count.

    The hash is the sha256 of the lines ``"<file sha256>  <path relative to root, '/'-separated>\\n"``,
    sorted by path: the same value ``sha256sum`` over ``find . -type f | sort`` gives, so it can be
    checked by hand.
    """
    root = Path(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    lines = "".join(f"{sha256_file(root / rel)}  {rel}\n" for rel in files)
    return hashlib.sha256(lines.encode()).hexdigest(), len(files)


@contextlib.contextmanager
def atomic_output(path: str | Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. ``mode`` is the
    permission of the finished file.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` all or nothing (see :func:`atomic_output`)."""
    with atomic_output(path, mode=mode) as tmp:
        tmp.write_bytes(data)
