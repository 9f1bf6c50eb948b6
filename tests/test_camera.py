"""Cameras: replay of the real photos and of a real video file, OpenCV's newest-frame reader, the fault handling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, photo_paths

from edge.config import OpenCVSection, Picamera2Section, ReplaySection
from edge.core.images import load_image
from edge.devices.camera.base import Camera, Frame
from edge.devices.camera.opencv import OpenCVCamera
from edge.devices.camera.picamera2 import PICAMERA2_MISSING, Picamera2Camera
from edge.devices.camera.replay import ReplayCamera
from edge.devices.camera.resilient import ResilientCamera, open_camera
from edge.errors import CameraError, CameraTimeout, EndOfStream, FrameError

VIDEO_FRAMES = 300
VIDEO_SIZE = (640, 480)  # width, height


def frame_number(rgb: np.ndarray) -> int:
    """The number painted into a frame of :func:`video_file` (two grey patches survive MJPG within +-3)."""
    low = float(rgb[:200, :300].mean()) / 5
    high = float(rgb[:200, 340:].mean()) / 40
    return round(low) + 50 * round(high)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory) -> Path:
    """An MJPG .avi of VIDEO_FRAMES frames: frame i shows its number in two grey patches, a red block at the
    bottom left (written as BGR (0, 0, 255)) and textured noise elsewhere (so decoding takes real work)."""
    path = tmp_path_factory.mktemp("video") / "door.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, VIDEO_SIZE)
    assert writer.isOpened()
    noise = np.random.default_rng(0).integers(0, 60, (VIDEO_SIZE[1], VIDEO_SIZE[0], 3), dtype=np.uint8)
    for i in range(VIDEO_FRAMES):
        bgr = noise.copy()
        bgr[:200, :300] = (i % 50) * 5
        bgr[:200, 340:] = (i // 50) * 40
        bgr[300:, :100] = (0, 0, 255)
        writer.write(bgr)
    writer.release()
    return path


@pytest.fixture
def photo_folder(tmp_path: Path, photos_dir: Path) -> tuple[Path, list[Path | None]]:
    """Six real val photos copied as 00.jpg..06.jpg with a corrupt (truncated) JPEG as 03.jpg in between.

    Returns the folder and, per frame, the photo it should show (``None`` for the corrupt one)."""
    photos = [path for _, path in photo_paths(photos_dir, "val")][::4][:6]
    expected: list[Path | None] = []
    for i, photo in enumerate(photos[:3] + [None] + photos[3:]):
        target = tmp_path / f"{i:02d}.jpg"
        if photo is None:
            data = photos[0].read_bytes()
            target.write_bytes(data[: len(data) // 2])
        else:
            shutil.copyfile(photo, target)
        expected.append(photo)
    return tmp_path, expected


class FakeClock:
    """Monotonic seconds that only move when slept on (or advanced): no test waits on the wall clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- import and picamera2 ---------------------------------------------------------------------------------------


def test_importing_the_module_does_not_import_picamera2():
    code = ("import sys, edge.devices.camera.picamera2, edge.devices.camera.resilient, edge.config; "
            "print('picamera2' in sys.modules, 'libcamera' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_picamera2_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail even where installed
    camera = Picamera2Camera(resolution=(640, 480))
    with pytest.raises(CameraError) as err:
        camera.open()
    assert str(err.value) == PICAMERA2_MISSING
    assert "sudo apt install python3-picamera2" in str(err.value) and "--system-site-packages" in str(err.value)
    camera.close()
    camera.close()  # idempotent
    with pytest.raises(CameraError, match="not open"):
        camera.read(0.1)


# -- replay -----------------------------------------------------------------------------------------------------


def test_replay_folder_with_a_corrupt_file_goes_on(photo_folder):
    folder, expected = photo_folder
    seen = []
    with ReplayCamera(folder) as camera:
        for i, photo in enumerate(expected):
            if photo is None:
                with pytest.raises(FrameError, match="03.jpg"):
                    camera.read(1.0)
                seen.append(None)
                continue
            frame = camera.read(1.0)
            assert isinstance(frame, Frame) and frame.index == i and frame.source == str(folder / f"{i:02d}.jpg")
            assert frame.image.dtype == np.uint8 and frame.image.ndim == 3 and frame.image.shape[2] == 3
            assert np.array_equal(frame.image, load_image(photo))  # RGB, exactly the photo
            seen.append(frame.index)
        with pytest.raises(EndOfStream):
            camera.read(1.0)
    assert seen == [0, 1, 2, None, 4, 5, 6]


def test_replay_loops_and_counts_on(photo_folder):
    folder, expected = photo_folder
    camera = ReplayCamera(folder, loop=True)
    camera.open()
    frames = []
    for _ in range(2 * len(expected)):
        try:
            frames.append(camera.read(1.0))
        except FrameError:
            frames.append(None)
    camera.close()
    good = [f for f in frames if f is not None]
    assert [f.index for f in good] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13]
    assert good[6].source == good[0].source and np.array_equal(good[6].image, good[0].image)
    # reopened after close: starts again at frame 0
    with camera:
        assert camera.read(1.0).index == 0


def test_replay_of_the_val_folder_is_every_photo_in_order(photos_dir: Path):
    expected = sorted(p for p in (photos_dir / "val").rglob("*") if p.is_file())
    with ReplayCamera(photos_dir / "val") as camera:
        sources = []
        while True:
            try:
                sources.append(camera.read(1.0).source)
            except EndOfStream:
                break
    assert sources == [str(p) for p in expected] and len(sources) == 25


def test_replay_video_file(video_file: Path):
    with ReplayCamera(video_file) as camera:
        frames = []
        while True:
            try:
                frame = camera.read(1.0)
            except EndOfStream:
                break
            frames.append((frame.index, frame_number(frame.image)))
            if frame.index == 0:
                assert frame.image.shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3)
                red = frame.image[300:, :100].reshape(-1, 3).mean(axis=0)
                assert red[0] > 200 and red[1] < 40 and red[2] < 40  # RGB order: the BGR (0, 0, 255) block is red
    assert frames == [(i, i) for i in range(VIDEO_FRAMES)]


def test_replay_video_loops(video_file: Path):
    with ReplayCamera(video_file, loop=True) as camera:
        frames = [camera.read(1.0) for _ in range(VIDEO_FRAMES + 5)]
    assert [f.index for f in frames] == list(range(VIDEO_FRAMES + 5))
    assert [frame_number(f.image) for f in frames[-5:]] == [0, 1, 2, 3, 4]


def test_replay_paced_like_a_live_camera(video_file: Path, photo_folder):
    clock = FakeClock()
    camera = ReplayCamera(video_file, fps=10, clock=clock, sleep=clock.sleep)
    camera.open()
    first = camera.read(1.0)
    assert first.index == 0 and clock.sleeps == []
    clock.now += 0.35  # a slow reader: frames 1..3 came and went
    late = camera.read(1.0)
    assert late.index == 3 and frame_number(late.image) == 3 and clock.sleeps == []
    nxt = camera.read(1.0)  # frame 4 is due 0.05 s later: waited for
    assert nxt.index == 4 and frame_number(nxt.image) == 4 and clock.sleeps == [pytest.approx(0.05)]
    with pytest.raises(CameraTimeout):
        camera.read(0.02)  # frame 5 is due in 0.1 s
    assert clock.sleeps[-1] == 0.02
    camera.close()
    camera.close()
    folder, _ = photo_folder
    with ReplayCamera(folder, fps=2, clock=clock, sleep=clock.sleep) as photos:
        clock.now += 1.6  # frames 0..3 are due; 3 is the corrupt one
        with pytest.raises(FrameError):
            photos.read(1.0)
        assert photos.read(1.0).index == 4


def test_replay_missing_or_empty_source(tmp_path: Path):
    with pytest.raises(CameraError, match="does not exist"):
        ReplayCamera(tmp_path / "nope").open()
    with pytest.raises(CameraError, match="has no images"):
        ReplayCamera(tmp_path).open()
    (tmp_path / "not-a-video.avi").write_bytes(b"garbage" * 100)
    with pytest.raises(CameraError):
        ReplayCamera(tmp_path / "not-a-video.avi").open()


# -- OpenCV ------------------------------------------------------------------------------------------------------


def test_opencv_reads_a_video_file(video_file: Path):
    camera = OpenCVCamera(str(video_file))
    assert isinstance(camera, Camera)
    frames = []
    with camera:
        while True:
            try:
                frames.append(camera.read(5.0))
            except CameraTimeout:
                pytest.fail("the reader thread stalled")
            except CameraError as err:
                assert "stopped delivering frames" in str(err)
                break
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and indices[-1] == VIDEO_FRAMES - 1  # never twice, ends on the last
    assert all(frame_number(f.image) == f.index for f in frames)  # each frame is the one its index says
    red = frames[0].image[300:, :100].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[2] < 40
    assert all(f.source == f"opencv:{video_file}" for f in frames)
    assert all(a.time <= b.time for a, b in zip(frames[:-1], frames[1:], strict=True))


def test_opencv_slow_reader_gets_the_newest_frame(video_file: Path):
    """A consumer slower than the source skips frames: it always gets the newest, never a stale queue."""
    camera = OpenCVCamera(str(video_file))
    camera.open()
    frames = []
    try:
        while True:
            try:
                frame = camera.read(5.0)
            except CameraError:
                break
            frames.append(frame)
            # be slow: let the reader take at least 3 more frames (or finish) before reading again
            deadline = time.monotonic() + 10
            while camera.captured < frame.index + 4 and camera.captured < VIDEO_FRAMES and time.monotonic() < deadline:
                time.sleep(0.001)
    finally:
        camera.close()
    jumps = np.diff([f.index for f in frames])
    assert len(frames) >= 2 and (jumps >= 1).all()
    assert (jumps[:-1] >= 3).all()  # every read but the last skipped the frames it was too slow for
    assert all(frame_number(f.image) == f.index for f in frames)


def test_opencv_missing_source_is_an_error(tmp_path: Path):
    with pytest.raises(CameraError, match="cannot open camera"):
        OpenCVCamera(str(tmp_path / "no-camera.avi")).open()
    with pytest.raises(CameraError, match="cannot open camera 99"):
        OpenCVCamera(99, backend="v4l2").open()
    with pytest.raises(CameraError, match="unknown OpenCV backend"):
        OpenCVCamera(0, backend="dshow")
    with pytest.raises(CameraError, match="not open"):
        OpenCVCamera(0).read(0.1)


def test_opencv_close_is_idempotent_and_reopens(video_file: Path):
    camera = OpenCVCamera(str(video_file))
    camera.close()
    camera.open()
    assert camera.read(5.0).index >= 0
    camera.close()
    camera.close()
    with pytest.raises(CameraError, match="not open"):
        camera.read(0.1)
    camera.open()  # a closed camera opens again from the start
    first = camera.read(5.0)
    assert frame_number(first.image) == first.index
    camera.close()


# -- factory ---------------------------------------------------------------------------------------------------


def test_open_camera_from_config_sections(photos_dir: Path, video_file: Path):
    pi = open_camera(Picamera2Section(type="picamera2", resolution=(1280, 720), camera_num=1))
    assert isinstance(pi, Picamera2Camera) and pi.resolution == (1280, 720) and pi.camera_num == 1
    cv = open_camera(OpenCVSection(type="opencv", source=str(video_file), backend="ffmpeg"))
    assert isinstance(cv, OpenCVCamera) and cv.backend == "ffmpeg"
    replay = open_camera(ReplaySection(type="replay", path=photos_dir / "val", fps=0, loop=True))
    assert isinstance(replay, ReplayCamera) and replay.loop
    with cv:
        assert frame_number(cv.read(5.0).image) >= 0
    section = ReplaySection(type="replay", path=photos_dir / "val", retry_initial_seconds=0.5)
    with ResilientCamera.from_config(section) as camera:
        assert camera.retry_initial == 0.5 and camera.read_timeout == 2.0
        frame = camera.read_latest(1.0)
        assert frame.index == 0 and frame.image.shape[2] == 3


# -- ResilientCamera ----------------------------------------------------------------------------------------------


class ScriptedCamera:
    """Stands in for camera hardware that fails: each open() and read() does the next step of its script.

    opens: True (opens) or False (fails, like an unplugged camera). reads: "frame", "error" (the device
    vanished) or "stall" (no frame: the clock moves on by the timeout)."""

    def __init__(self, clock: FakeClock, opens: list[bool], reads: list[str]):
        self.clock, self.opens, self.reads = clock, list(opens), list(reads)
        self.is_open = False
        self.closes = 0
        self.count = 0

    def open(self) -> None:
        if not self.opens.pop(0):
            raise CameraError("camera not found")
        self.is_open = True

    def read(self, timeout: float) -> Frame:
        assert self.is_open, "read while closed"
        step = self.reads.pop(0)
        if step == "stall":
            self.clock.now += timeout
            raise CameraTimeout(f"no frame within {timeout:g} s")
        if step == "error":
            raise CameraError("device vanished")
        self.count += 1
        return Frame(np.zeros((4, 4, 3), np.uint8), self.clock(), self.count, "scripted")

    def close(self) -> None:
        self.closes += 1
        self.is_open = False

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_resilient_camera_backs_off_and_recovers():
    clock = FakeClock()
    hardware = ScriptedCamera(clock, opens=[False] * 5 + [True, False, True],
                              reads=["frame", "frame", "error", "frame", "stall", "stall"])
    faults: list[CameraError] = []
    camera = ResilientCamera(hardware, read_timeout=2.0, retry_initial=1.0, retry_max=4.0,
                             on_fault=faults.append, clock=clock, sleep=clock.sleep)
    results = [camera.read_latest(10.0) for _ in range(5)]  # five failed opens, back-off 1, 2, 4, 4
    assert results == [None] * 5 and clock.sleeps == [1.0, 2.0, 4.0, 4.0]
    assert [str(f) for f in faults] == ["camera not found"] * 5 and camera.faults == 5
    frame = camera.read_latest(10.0)  # waits 4 s (capped), opens, gets a frame
    assert frame is not None and frame.index == 1 and clock.sleeps[-1] == 4.0
    assert camera.read_latest(10.0).index == 2
    assert camera.read_latest(10.0) is None  # the device vanished: fault, closed
    assert str(faults[-1]) == "device vanished" and not hardware.is_open and camera.faults == 6
    assert camera.read_latest(10.0) is None  # a frame came since, so the back-off starts again at 1 s
    assert camera.read_latest(10.0).index == 3 and clock.sleeps[-2:] == [1.0, 2.0]
    # no frame for a short wait is not yet a fault ...
    assert camera.read_latest(0.5) is None and camera.faults == 7 and hardware.is_open
    # ... no frame for read_timeout is
    assert camera.read_latest(10.0) is None
    assert isinstance(faults[-1], CameraTimeout) and "no frame for 2 s" in str(faults[-1]) and camera.faults == 8
    assert not hardware.is_open
    camera.close()
    camera.close()
    with pytest.raises(CameraError, match="closed"):
        camera.read_latest(1.0)


def test_resilient_camera_waits_in_steps_no_longer_than_asked():
    clock = FakeClock()
    hardware = ScriptedCamera(clock, opens=[False, True], reads=["frame"])
    camera = ResilientCamera(hardware, retry_initial=3.0, retry_max=3.0, clock=clock, sleep=clock.sleep)
    assert camera.read_latest(1.0) is None  # first open fails
    assert [camera.read_latest(1.0) for _ in range(2)] == [None, None]  # still backing off: waits 1 s at a time
    assert camera.read_latest(1.0).index == 1
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_resilient_camera_survives_a_failing_callback_and_a_corrupt_frame(photo_folder):
    folder, expected = photo_folder
    calls = []

    def broken_callback(error: CameraError) -> None:
        calls.append(error)
        raise RuntimeError("the event bus is down")

    with ResilientCamera(ReplayCamera(folder), on_fault=broken_callback) as camera:
        indices = []
        with pytest.raises(EndOfStream):
            for _ in range(20):
                frame = camera.read_latest(1.0)
                indices.append(None if frame is None else frame.index)
    # the corrupt frame is reported, the replay goes on (not reopened from the start), the end ends it
    assert indices == [0, 1, 2, None, 4, 5, 6]
    assert len(calls) == 1 and isinstance(calls[0], FrameError) and camera.faults == 1


def test_resilient_camera_waits_for_a_real_source_to_appear(tmp_path: Path, video_file: Path):
    """A camera absent at start (a video file not there yet): faults with back-off, frames once it is there."""
    path = tmp_path / "cam.avi"
    clock = FakeClock()
    faults: list[CameraError] = []
    camera = ResilientCamera(ReplayCamera(path), read_timeout=5.0, retry_initial=0.5, retry_max=1.0,
                             on_fault=faults.append, clock=clock, sleep=clock.sleep)
    camera.open()  # never raises: the fault is reported
    assert [camera.read_latest(5.0) for _ in range(3)] == [None] * 3
    assert len(faults) == 4 and all("does not exist" in str(f) for f in faults)
    assert clock.sleeps == [0.5, 1.0, 1.0]
    shutil.copyfile(video_file, path)
    frame = camera.read_latest(5.0)
    assert frame is not None and frame.index == 0 and frame_number(frame.image) == 0
    assert clock.sleeps[-1] == 1.0 and camera.faults == 4
    camera.close()


def test_opencv_reader_thread_ends_on_close(video_file: Path):
    before = {t.name for t in threading.enumerate()}
    camera = OpenCVCamera(str(video_file))
    with camera:
        camera.read(5.0)
    after = {t.name for t in threading.enumerate()}
    assert f"camera-opencv:{video_file}" not in after - before
