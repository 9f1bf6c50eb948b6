"""The demo's visits: the held-out celebrity photos walking up to the door, as a replay camera's frames.

    python examples/demo_visits.py replay VAL_DIR OUT    each photo three times in a row (symlinks): what a replay
                                                         of still photos is, and what `report` mode calls an attack
    python examples/demo_visits.py camera VAL_DIR OUT    each photo three times with simulated sensor noise (a
                                                         camera's frames of a person who stands still), then one
                                                         enrolled person's photo looped unchanged six times: a
                                                         still photo held up to the camera
    python examples/demo_visits.py policy VAL_DIR OUT    the replay visits, and OUT/door.toml: examples/demo.toml with
                                                         an access policy (staff at every hour, the cleaning group only
                                                         in an hour that is not now, in UTC)
    python examples/demo_visits.py badge VAL_DIR OUT     a badge+face door: OUT/badges.txt (Ben's badge, then Elton's),
                                                         OUT/visits (Ben's face under each) and OUT/door.toml

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


def door_config(out: Path, access: str) -> None:
    """OUT/door.toml: examples/demo.toml (its model paths made absolute) with ``access`` appended."""
    here = Path(__file__).resolve().parent
    text = (here / "demo.toml").read_text().replace('"../weights/', f'"{here.parent / "weights"}/')
    (out / "door.toml").write_text(text + "\n" + access)


def policy(val: Path, out: Path) -> int:
    from datetime import datetime, timezone

    (out / "visits").mkdir()
    replay(val, out / "visits")
    hour = datetime.now(timezone.utc).hour
    closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
    door_config(out, f"""[access]
timezone = "UTC"
groups = ["staff", "cleaning"]
schedule = [
  {{days = ["mon-sun"], hours = ["00:00-24:00"], groups = ["staff"]}},
  {{days = ["mon-sun"], hours = ["{closed}"], groups = ["cleaning"]}},   # an hour that is not now
]
denied_report_interval_seconds = 1
""")
    return 0


def badge(val: Path, out: Path) -> int:
    import cv2
    import numpy as np

    (out / "visits").mkdir()
    ben = sorted((val / LOOPED_PERSON).iterdir())[0]
    blank = np.full((240, 320, 3), 120, np.uint8)
    plan = [(ben, 5), (None, 7), (ben, 5), (None, 4)]  # 5 fps: Ben at 0-0.8 s, nobody, Ben again at 2.4-3.2 s
    n = 0
    for photo, count in plan:
        for _ in range(count):
            target = out / "visits" / f"{n:03d}.png"
            if photo is None:
                cv2.imwrite(str(target), blank)
            else:
                target.symlink_to(photo.resolve())
            n += 1
    (out / "badges.txt").write_text("# seconds after the reader opened, the badge id\n"
                                    "0.0 DEMO-BADGE-BEN\n2.1 DEMO-BADGE-ELTON\n")
    door_config(out, f"""[access]
mode = "badge+face"
[access.badge]
type = "replay"
path = "{out / 'badges.txt'}"
""")
    return 0


if __name__ == "__main__":
    commands = {"replay": replay, "camera": camera, "policy": policy, "badge": badge}
    if len(sys.argv) != 4 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    target = Path(sys.argv[3])
    target.mkdir(parents=True, exist_ok=True)
    sys.exit(commands[sys.argv[1]](Path(sys.argv[2]), target))
