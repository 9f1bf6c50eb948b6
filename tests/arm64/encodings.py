"""The encoding of each photo's largest face with the installed facegate, one JSON line a photo.

Run by ``tests/arm64/pi_check.sh`` with the x86 venv and with the arm64 venv inside the emulated root, on the same
photos and models, with the options ``facegate identify`` uses by default (int8 FaceNet, short-range BlazeFace,
margin 0.1, aligned): ``compare.py`` then measures how far apart the two machines' encodings are.

    python encodings.py --models WEIGHTS PHOTO... [--save-crops DIR]   # the whole pipeline, photo by photo
    python encodings.py --models WEIGHTS --crops DIR                    # FaceNet alone, on crops saved before

``--save-crops`` keeps each face crop the encoder was given (``DIR/<person>__<file>.npy``); ``--crops`` encodes
those crops again, on another machine, so that the encoder is compared on exactly the same input and the
detector's part of a difference is told apart from the encoder's.

Each line: ``{"photo": "<person>/<file>", "encoding": [128 floats] or null, "runtime": ..., "ms": ...}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path


def _record(photo: str, encoding, runtime: str, start: float) -> str:
    return json.dumps({"photo": photo, "encoding": None if encoding is None else [float(v) for v in encoding],
                       "runtime": runtime, "machine": platform.machine(),
                       "ms": round((time.perf_counter() - start) * 1000, 1)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="folder with facenet_int8.tflite and the detector")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all)")
    parser.add_argument("--save-crops", type=Path, help="keep each face crop here, as <person>__<file>.npy")
    parser.add_argument("--crops", type=Path, help="encode the crops saved here instead of photos")
    parser.add_argument("photos", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if bool(args.photos) == bool(args.crops):
        parser.error("give photos or --crops DIR")

    import numpy as np

    from edge.core.encoder import FaceEncoder
    from edge.core.recognition import FaceModel

    encoder_path = args.models / "facenet_int8.tflite"
    if args.crops:
        encoder = FaceEncoder(encoder_path, num_threads=args.threads)
        for path in sorted(args.crops.glob("*.npy")):
            start = time.perf_counter()
            encoding = encoder.encode(np.load(path))[0]
            print(_record(path.stem.replace("__", "/", 1), encoding, encoder.model.runtime, start), flush=True)
        return 0
    model = FaceModel.from_files(encoder_path, args.models / "face_detection_short_range.tflite",
                                 num_threads=args.threads)
    if args.save_crops:
        args.save_crops.mkdir(parents=True, exist_ok=True)
    for photo in args.photos:
        start = time.perf_counter()
        analysis = model.analyse(photo)
        if args.save_crops and analysis.crop is not None:
            np.save(args.save_crops / f"{photo.parent.name}__{photo.name}.npy", analysis.crop)
        print(_record(f"{photo.parent.name}/{photo.name}", analysis.encoding, model.encoder.model.runtime, start),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
