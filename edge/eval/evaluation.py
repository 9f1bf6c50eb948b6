"""How well does it recognise? Held-out photos identified against enrolled ones, beside the seed's pixel baseline.

``train`` photos are enrolled in memory (``name -> (k, d)``), each ``val`` photo identified as ``who_is_it`` does
(closest stored encoding, accepted at or below the threshold), every miss explained; the naive pixel-by-pixel
baseline runs on the same face crops, and an open-set check presents each person, removed from the enrolled set,
as a stranger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.core.gallery import database_matrix, nearest
from edge.eval.metrics import equal_error_rate, identify_nearest, pair_distances
from edge.eval.photos import PhotoFaces, people_of, skipped_records

#: The naive baseline's image: face crops resized to this many pixels a side, greyscale.
PIXEL_SIDE = 64



def pixel_features(crops: np.ndarray, *, side: int = PIXEL_SIDE) -> np.ndarray:
    """The naive baseline's vectors: each (H, W, 3) uint8 RGB crop as ``side`` x ``side`` greyscale, 0..1.

    Returns ``(m, side * side)`` float32; compared by plain L2 distance, pixel by pixel.
    """
    out = np.empty((len(crops), side * side), np.float32)
    for i, crop in enumerate(crops):
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
    return out



def evaluation(train: PhotoFaces, val: PhotoFaces, *, threshold: float) -> dict:
    """Identify ``val`` against ``train`` enrolled as ``name -> (k, d)`` with who_is_it's rule.

    A val photo is identified when its closest stored encoding shows the same person and its distance is
    at most ``threshold``; skipped val photos count as misses. Returns a JSON-ready dict: per-person
    counts with every miss, top-1 (closest regardless of threshold), the pair EER on all photos, the pixel
    baseline on the same crops and the open-set check.
    """
    database = {name: train.vectors[[i for i, n in enumerate(train.labels) if n == name]]
                for name in people_of(train.labels)}
    names, matrix = database_matrix(database)
    people = people_of(val.labels + [_person_of(path) for path, _ in val.skipped])
    per_person: dict[str, dict[str, Any]] = {p: {"identified": 0, "total": 0, "misses": []} for p in people}
    top1 = 0
    for encoding, person, path in zip(val.vectors, val.labels, val.paths, strict=True):
        dist, closest = nearest(encoding, names, matrix)
        top1 += closest == person
        row = per_person[person]
        row["total"] += 1
        if closest == person and dist <= threshold:
            row["identified"] += 1
        else:
            if closest != person and dist <= threshold:
                why = "someone else, close enough to be accepted"
            elif closest != person:
                why = "the closest is someone else, and farther than the threshold"
            else:
                why = "the right person, but farther than the threshold"
            row["misses"].append({"photo": str(path), "got": closest if dist <= threshold else None,
                                  "closest": closest, "distance": dist, "threshold": threshold, "why": why})
    for path, reason in val.skipped:
        row = per_person[_person_of(path)]
        row["total"] += 1
        row["misses"].append({"photo": str(path), "got": None, "closest": None, "distance": None,
                              "threshold": threshold, "why": reason})
    identified = sum(r["identified"] for r in per_person.values())
    total = sum(r["total"] for r in per_person.values())
    both_labels = train.labels + val.labels
    eer = equal_error_rate(*pair_distances(np.concatenate([train.vectors, val.vectors]), both_labels))
    return {
        "identified": identified, "total": total, "top1": top1, "encoded": len(val.labels),
        "per_person": per_person, "pair_eer": {"rate": eer.far, "threshold": eer.threshold},
        "pixel_baseline": _pixel_baseline(train, val),
        "open_set": _open_set_check(train, val, threshold=threshold),
        "enrolled": {"people": len(database), "photos": len(train.labels),
                     "skipped": skipped_records(train.skipped)},
        "skipped": skipped_records(val.skipped),
    }



def _person_of(path: Path) -> str:
    return Path(path).parent.name



def _pixel_baseline(train: PhotoFaces, val: PhotoFaces) -> dict:
    train_px, val_px = pixel_features(train.crops), pixel_features(val.crops)
    predicted, _ = identify_nearest(val_px, train_px, train.labels)
    top1 = sum(p == t for p, t in zip(predicted, val.labels, strict=True))
    eer = equal_error_rate(*pair_distances(np.concatenate([train_px, val_px]), train.labels + val.labels))
    return {"method": f"the same face crops as {PIXEL_SIDE}x{PIXEL_SIDE} greyscale (0..1), flattened, L2, "
                      "nearest neighbour",
            "top1": top1, "total": len(val.labels), "pair_eer": {"rate": eer.far, "threshold": eer.threshold}}



def _open_set_check(train: PhotoFaces, val: PhotoFaces, *, threshold: float) -> dict:
    """Each val person in turn removed from the enrolled set, their val photos presented as strangers."""
    train_labels = np.asarray(train.labels)
    per_person: dict[str, dict[str, Any]] = {}
    for person in people_of(val.labels):
        gallery = train_labels != person
        probes = [i for i, n in enumerate(val.labels) if n == person]
        if not gallery.any():
            continue
        matched, dists = identify_nearest(val.vectors[probes], train.vectors[gallery],
                                          list(train_labels[gallery]))
        k = int(np.argmin(dists))
        per_person[person] = {"strangers": len(probes), "accepted": int(np.sum(dists <= threshold)),
                              "nearest": float(dists[k]), "nearest_is": matched[k],
                              "nearest_photo": str(val.paths[probes[k]])}
    strangers = sum(r["strangers"] for r in per_person.values())
    accepted = sum(r["accepted"] for r in per_person.values())
    smallest = min((r["nearest"] for r in per_person.values()), default=None)
    return {"strangers": strangers, "accepted": accepted, "threshold": threshold,
            "smallest_distance": smallest, "margin": None if smallest is None else smallest - threshold,
            "per_person": per_person}

