"""The demo's visits: the held-out celebrity photos walking up to the door, as a replay camera's frames.

    python examples/demo_visits.py replay VAL_DIR OUT    each photo three times in a row (symlinks): what a replay
                                                         of still photos is, and what `report` mode calls an attack
    python examples/demo_visits.py camera VAL_DIR OUT    each photo three times with simulated sensor noise (a
                                                         camera's frames of a person who stands still), then one
                                                         enrolled person's photo looped unchanged six times: a
                                                         still photo held up to the camera

People take turns, one visit each per round. Frame files are named ``<visit>_<frame>_<person>`` so the order is the
order of the visits. The noise is Gaussian, sigma 2 grey levels, seeded: the same frames every run.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The still photo looped in the camera demo: an enrolled person's first held-out photo.
LOOPED_PERSON = "ben_afflek"
LOOPED_FRAMES = 6
NOISE_SIGMA = 2.0


def visits(val: Path) -> list[tuple[str, Path]]:
    """(person, photo) per visit, people taking turns."""
    people = {p.name: sorted(p.iterdir()) for p in sorted(val.iterdir()) if p.is_dir()}
    order = []
    for round_ in range(max(len(v) for v in people.values())):
        for person, photos in people.items():
            if round_ < len(photos):
                order.append((person, photos[round_]))
    return order


def replay(val: Path, out: Path) -> int:
    for n, (person, photo) in enumerate(visits(val), start=1):
        for frame in range(3):
            (out / f"{n:03d}_{frame}_{person}{photo.suffix}").symlink_to(photo.resolve())
    return 0


def camera(val: Path, out: Path) -> int:
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    order = visits(val)
    for n, (person, photo) in enumerate(order, start=1):
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        for frame in range(3):
            noisy = np.clip(image + rng.normal(0.0, NOISE_SIGMA, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(out / f"{n:03d}_{frame}_{person}.png"), noisy)
    looped = next(photo for person, photo in order if person == LOOPED_PERSON)
    for frame in range(LOOPED_FRAMES):
        (out / f"{len(order) + 1:03d}_{frame}_{LOOPED_PERSON}_looped_still{looped.suffix}").symlink_to(looped.resolve())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("replay", "camera"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    target = Path(sys.argv[3])
    target.mkdir(parents=True, exist_ok=True)
    sys.exit({"replay": replay, "camera": camera}[sys.argv[1]](Path(sys.argv[2]), target))
