"""The presentation-attack models: the shipped ONNX MiniFASNets to checked TFLite models and a sealed card.

Steps (``facegate-convert build`` runs them after FaceNet):

1. check ``weights/pad/*.onnx`` against the manifest's sha256 (they ship in the repository, Apache-2.0);
2. measure how BlazeFace's box differs from the face outline the models were trained on: MediaPipe's face mesh
   (``face_landmark.tflite``) on every photo, the median ratio of the mesh's extent to the BlazeFace box (the
   original's RetinaFace boxes outline the face from forehead to chin, as the mesh does);
3. crop every photo's face as the door will (:mod:`edge.core.liveness`, with that correction) and score the
   crops with the ONNX originals in onnxruntime: the reference;
4. convert each model with onnx2tf to a float32 TFLite model (full int8 changed 9 of 177 decisions when tried,
   float16 gains nothing on a CPU), and run it on the same crops with the door's runtime;
5. refuse a model whose probabilities differ from the original's by more than :data:`MAX_DIFFERENCE` or whose
   decision at the card's threshold differs on any crop; otherwise write the models and the sealed card.

onnx2tf looks for ``calibration_image_sample_data_20x128x128x3_float32.npy`` in its working folder and downloads
it when missing, even for a float conversion; the conversion runs in a scratch folder that has one (random data:
it is not used for float models).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convert.cache import save_build
from convert.fetch import DEFAULT_MANIFEST
from edge.core.liveness import (
    INPUT_SIZE,
    LIVENESS_CARD,
    LIVENESS_CARD_FORMAT,
    BoxCorrection,
    LivenessCard,
    liveness_crop,
    softmax,
    validate_liveness_card,
)
from edge.core.modelcard import seal_card
from edge.errors import FacegateError, ModelError, WeightsError
from edge.eval.photos import image_files
from edge.eval.progress import Progress
from edge.files import sha256_file, write_bytes_atomic

if TYPE_CHECKING:
    from edge.core.detect import Face, FaceDetector

log = logging.getLogger(__name__)

#: The models, in the card's order: (name, ONNX file under weights/, TFLite file written).
MODELS = (("MiniFASNetV2", "pad/MiniFASNetV2.onnx", "liveness_minifasnet_v2.tflite"),
          ("MiniFASNetV1SE", "pad/MiniFASNetV1SE.onnx", "liveness_minifasnet_v1se.tflite"))
#: A converted model whose live probability differs from the original's by more than this is not written.
MAX_DIFFERENCE = 1e-3
#: The card's default threshold: live if the fused probability is at least this (the original's argmax rule
#: for two classes; a site sets its own with ``facegate evaluate-liveness``).
DEFAULT_THRESHOLD = 0.5
#: Face-mesh points whose extent is the face outline (all 468: the outermost are the face oval).
MESH_INPUT = 192
MESH_ROI_SCALE = 1.5  # MediaPipe's: the mesh sees the detection box grown 1.5 times
_SOURCES = ("convert/liveness.py", "edge/core/liveness.py", "edge/core/detect.py", "edge/core/modelcard.py")
_ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


class LivenessBuildError(FacegateError):
    """The liveness models cannot be built: a missing or altered ONNX file, a converter that disagrees."""


@dataclass
class LivenessOptions:
    weights: Path  # holds pad/*.onnx, face_detection_short_range.tflite, face_landmark.tflite, photos/
    out: Path
    cache: Path | None = None

    def photos(self) -> list[Path]:
        """The real faces the build measures and checks on: the celebrity photos and the reference strangers."""
        root = self.weights / "photos"
        return image_files(root / "celebrity") + image_files(root / "reference_strangers")


def _committed(weights: Path) -> dict[str, str]:
    """The ONNX models checked against the manifest's ``committed`` sha256: ``{name: sha256}``."""
    try:
        committed = json.loads(Path(DEFAULT_MANIFEST).read_text())["committed"]
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"the weights manifest {DEFAULT_MANIFEST} lists no committed models: {exc!r}") from exc
    shas = {}
    for name, rel, _ in MODELS:
        path = weights / rel
        if not path.is_file():
            raise WeightsError(f"{path} is missing: it ships in the repository (weights/pad/); restore it with git")
        actual, expected = sha256_file(path), committed[rel]["sha256"]
        if actual != expected:
            raise WeightsError(f"{path} has sha256 {actual[:16]}..., the manifest says {expected[:16]}...: "
                               "an altered model; restore it with git")
        shas[name] = actual
    return shas


def _cache_key(opts: LivenessOptions, shas: dict[str, str], photos: list[Path]) -> str:
    import onnx2tf
    import tensorflow as tf

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for rel in _SOURCES:
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    digest.update(json.dumps([shas, tf.__version__, onnx2tf.__version__, sha256_file(opts.weights /
                              "face_landmark.tflite")], sort_keys=True).encode())
    digest.update(json.dumps([(p.name, p.stat().st_size) for p in photos]).encode())
    return "liveness-" + digest.hexdigest()[:24]


def _faces(photos: list[Path], detector: FaceDetector) -> list[tuple[Path, np.ndarray, Face]]:
    from edge.core.crop import largest_face
    from edge.core.images import load_image

    found = []
    with Progress(len(photos), "liveness: finding faces") as bar:
        for path in photos:
            rgb = load_image(path)
            face = largest_face(detector.detect(rgb))
            if face is not None:
                found.append((path, rgb, face))
            bar.advance()
    return found


def measure_box_correction(faces: list[tuple[Path, np.ndarray, Face]], mesh_model: Path) -> dict[str, Any]:
    """The median ratio of the face mesh's extent to BlazeFace's box, over ``faces``: the card's correction."""
    import cv2

    from edge.core.runtime import TFLiteModel

    mesh = TFLiteModel(mesh_model, num_threads=2)
    sizes = {tuple(o.shape): i for i, o in enumerate(mesh.outputs)}
    points_at, flag_at = sizes[(1, 1, 1, 1404)], sizes[(1, 1, 1, 1)]
    rows = []
    for _, rgb, face in faces:
        side = face.size * MESH_ROI_SCALE
        x0, y0 = face.center[0] - side / 2, face.center[1] - side / 2
        k = MESH_INPUT / side
        warp = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], dtype=np.float64)
        tensor = cv2.warpAffine(rgb, warp, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR).astype(np.float32)
        outputs = mesh((tensor / 255.0)[None])
        if float(softmax(np.array([0.0, float(outputs[flag_at].ravel()[0])]))[1]) < 0.5:
            continue  # the mesh sees no face here
        points = outputs[points_at].reshape(468, 3)[:, :2] / k + (x0, y0)
        (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
        rows.append(((right - left) / face.width, (bottom - top) / face.height,
                     (face.center[1] - (top + bottom) / 2) / face.height))
    if len(rows) < 20:
        raise LivenessBuildError(f"the face mesh found only {len(rows)} faces to measure the box correction on")
    table = np.array(rows)
    median = np.median(table, axis=0)
    return {"width": round(float(median[0]), 3), "height": round(float(median[1]), 3),
            "shift_up": round(float(median[2]), 3), "faces": len(rows),
            "p10": [round(float(v), 3) for v in np.percentile(table, 10, axis=0)],
            "p90": [round(float(v), 3) for v in np.percentile(table, 90, axis=0)],
            "how": "median over the build's photos of the MediaPipe face mesh's extent / the BlazeFace box "
                   "(width, height) and of the mesh centre's height above the box centre (in box heights)"}


def _onnx_scores(onnx_file: Path, crops: np.ndarray) -> np.ndarray:
    """Live probabilities of the ONNX original, ``(n,)``, from NHWC BGR crops."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = [session.run(None, {name: crop.transpose(2, 0, 1)[None].astype(np.float32)})[0][0] for crop in crops]
    return softmax(np.stack(out))[:, 1]


def _tflite_scores(model_file: Path, crops: np.ndarray) -> tuple[np.ndarray, float]:
    """Live probabilities of a converted model on the door's runtime, ``(n,)``, and its median ms per crop."""
    from edge.core.runtime import TFLiteModel

    model = TFLiteModel(model_file, num_threads=1)
    out, times = [], []
    for crop in crops:
        t0 = time.perf_counter()
        out.append(model(crop[None].astype(np.float32))[0].reshape(-1))
        times.append((time.perf_counter() - t0) * 1000)
    return softmax(np.stack(out))[:, 1], float(np.median(times))


def _convert(onnx_file: Path, work: Path) -> Path:
    """onnx2tf on a copy of ``onnx_file``, in a scratch folder, in its own process (it prints much, sets
    process-wide state, and was seen rewriting the ONNX file it was given)."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / onnx_file.name  # onnx2tf may rewrite its input file in place: give it a copy
    shutil.copyfile(onnx_file, source)
    np.save(work / _ONNX2TF_SAMPLE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    cmd = [sys.executable, "-c", "import sys; from onnx2tf import main; sys.argv[0] = 'onnx2tf'; main()",
           "-i", str(source.resolve()), "-o", str((work / "out").resolve()), "-n"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    result = work / "out" / f"{onnx_file.stem}_float32.tflite"
    if done.returncode != 0 or not result.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise LivenessBuildError(f"onnx2tf could not convert {onnx_file.name} (exit {done.returncode}):\n{tail}")
    return result


def _restore(cached: Path, out: Path) -> dict | None:
    report = cached / "report.json"
    if not report.is_file():
        return None
    try:
        card = LivenessCard.read(cached / LIVENESS_CARD)
        for spec in card.models:
            if sha256_file(cached / spec.file) != spec.sha256:
                raise ModelError(f"{spec.file} does not match the card")
    except (ModelError, OSError) as exc:
        log.warning("ignoring a damaged cached liveness build in %s: %s", cached, exc)
        return None
    for spec in card.models:
        write_bytes_atomic(out / spec.file, (cached / spec.file).read_bytes())
    write_bytes_atomic(out / LIVENESS_CARD, (cached / LIVENESS_CARD).read_bytes())
    return json.loads(report.read_text())


def build_liveness(opts: LivenessOptions) -> dict:
    """Build, check and write the liveness models and their card; returns the report's ``liveness`` section."""
    import tensorflow as tf

    from edge.core.detect import FaceDetector

    started = time.monotonic()
    shas = _committed(opts.weights)
    photos = opts.photos()
    cached = None
    if opts.cache is not None:
        cached = opts.cache / "builds" / _cache_key(opts, shas, photos)
        restored = _restore(cached, opts.out)
        if restored is not None:
            log.info("restored the liveness models from the cache %s", cached)
            return {**restored, "restored_from_cache": str(cached)}

    faces = _faces(photos, FaceDetector(opts.weights / "face_detection_short_range.tflite"))
    correction = measure_box_correction(faces, opts.weights / "face_landmark.tflite")
    box = BoxCorrection(correction["width"], correction["height"], correction["shift_up"])
    card: dict[str, Any] = {
        "format": LIVENESS_CARD_FORMAT, "kind": "presentation-attack detection", "models": [],
        "input": {"shape": [1, INPUT_SIZE, INPUT_SIZE, 3], "dtype": "float32", "layout": "NHWC", "colour": "BGR",
                  "range": "0..255, not normalised"},
        "output": {"classes": 3, "live_index": 1, "activation": "softmax"},
        "fusion": "mean of the models' live probabilities; again the mean over the frames of one approach",
        "box_correction": {k: correction[k] for k in ("width", "height", "shift_up")},
        "threshold": {"value": DEFAULT_THRESHOLD, "rule": "live if the fused live probability >= value",
                      "note": "the original's rule; four labelled samples are not an evaluation: set the door's own "
                              "with 'facegate evaluate-liveness' on photos from its camera"},
        "source": {"weights": "Minivision Silent-Face-Anti-Spoofing (Apache-2.0), ONNX export of "
                              "yakhyo/face-anti-spoofing c175efe", "licence": "weights/pad/LICENSE"},
        "converter": {"tensorflow": tf.__version__, "tool": "onnx2tf", "precision": "float32"},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report: dict[str, Any] = {"box_correction": correction, "faces": len(faces), "models": []}
    fused_onnx, fused_tflite = [], []
    with tempfile.TemporaryDirectory(prefix="facegate-liveness.") as tmp:
        staged = []
        for name, rel, target in MODELS:
            scale = float(json.loads(Path(DEFAULT_MANIFEST).read_text())["committed"][rel]["crop_scale"])
            crops = np.stack([liveness_crop(rgb, box.apply(face), scale) for _, rgb, face in faces])
            reference = _onnx_scores(opts.weights / rel, crops)
            t0 = time.monotonic()
            converted = _convert(opts.weights / rel, Path(tmp) / name)
            seconds = time.monotonic() - t0
            got, ms = _tflite_scores(converted, crops)
            diff = float(np.max(np.abs(got - reference)))
            if not diff <= MAX_DIFFERENCE:  # also catches NaN
                raise LivenessBuildError(f"the converted {name} differs from the ONNX original by {diff:.4f} "
                                         f"(allowed {MAX_DIFFERENCE}) on real face crops; not written")
            fused_onnx.append(reference)
            fused_tflite.append(got)
            sha = sha256_file(converted)
            card["models"].append({"name": name, "file": target, "sha256": sha, "size_bytes": converted.stat().st_size,
                                   "crop_scale": scale, "source_onnx": rel, "source_sha256": shas[name]})
            report["models"].append({"name": name, "file": target, "sha256": sha, "max_difference": diff,
                                     "convert_seconds": round(seconds, 1), "median_ms_1_thread": round(ms, 2)})
            staged.append((converted, target))
        a, b = np.mean(fused_onnx, axis=0), np.mean(fused_tflite, axis=0)
        changed = int(np.sum((a >= DEFAULT_THRESHOLD) != (b >= DEFAULT_THRESHOLD)))
        if changed:
            raise LivenessBuildError(f"the converted models change {changed} of {len(a)} decisions at "
                                     f"{DEFAULT_THRESHOLD}; not written")
        card["agreement"] = {"crops": len(a), "fused_max_difference": float(np.max(np.abs(a - b))),
                             "decisions_changed": changed, "reference": "onnxruntime on the ONNX originals"}
        report["agreement"] = card["agreement"]
        report["live_share_of_photos"] = round(float(np.mean(b >= DEFAULT_THRESHOLD)), 3)
        sealed = seal_card(card)
        validate_liveness_card(sealed, opts.out / LIVENESS_CARD)
        for converted, target in staged:
            write_bytes_atomic(opts.out / target, converted.read_bytes())
    write_bytes_atomic(opts.out / LIVENESS_CARD, (json.dumps(sealed, indent=2) + "\n").encode())
    report["seconds"] = round(time.monotonic() - started, 1)
    if cached is not None:
        save_build(cached, [opts.out / m["file"] for m in sealed["models"]] + [opts.out / LIVENESS_CARD], report,
                   what="liveness build")
    return report
