"""The build cache: finished builds kept outside the checkout by the hash of their inputs
(``$FACEGATE_CACHE/builds``)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def save_build(cached: Path, files: Iterable[Path], report: dict, *, what: str = "build") -> None:
    """Keep ``files`` and ``report`` (as ``report.json``) as the cache entry ``cached``, all or nothing: staged
    beside it and renamed into place, so a half-written entry never exists. A failure is logged, never raised
    (the build itself is done)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cached.parent, prefix=f".{cached.name}."))
    try:
        for src in files:
            shutil.copy2(src, staging / src.name)
        (staging / "report.json").write_text(json.dumps(report, indent=2))
        staging.rename(cached)
    except OSError as exc:
        log.warning("could not cache the %s in %s: %s", what, cached, exc)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
