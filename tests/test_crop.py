"""Face crops and eye alignment, checked by re-detecting faces on real photos."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import photo_paths
from test_detect import closest, read_rgb

from edge.core.crop import crop_face, crop_matrix, eye_angle, largest_face
from edge.core.detect import LEFT_EYE, RIGHT_EYE, Face, FaceDetector
from edge.errors import ImageError


@pytest.fixture(scope="module")
def detector(blazeface_full: Path) -> FaceDetector:
    return FaceDetector(blazeface_full)


@pytest.fixture(scope="module")
def frontal(photos_dir: Path, detector: FaceDetector) -> list[tuple[np.ndarray, Face]]:
    """Photos with a confident, roughly level face of at least 50 px: (image, best face)."""
    found = []
    for _, path in photo_paths(photos_dir, "train") + photo_paths(photos_dir, "val"):
        image = read_rgb(path)
        faces = detector.detect(image)
        if (
            faces
            and faces[0].score > 0.75
            and faces[0].size >= 50
            and abs(math.degrees(eye_angle(faces[0]))) < 8
        ):
            found.append((image, faces[0]))
    assert len(found) >= 40, f"only {len(found)} frontal photos"
    return found


def rotate(image: np.ndarray, centre: tuple[float, float], degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``degrees`` (counter-clockwise on screen) about ``centre``, and the 2x3 matrix."""
    matrix = cv2.getRotationMatrix2D((centre[0] - 0.5, centre[1] - 0.5), degrees, 1.0)
    size = (image.shape[1], image.shape[0])
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR), matrix


def eye_degrees(face: Face) -> float:
    return math.degrees(eye_angle(face))


def test_crop_shape_and_dtype(frontal):
    for image, face in frontal:
        for align in (True, False):
            crop = crop_face(image, face, align=align)
            assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    assert crop_face(image, face, size=96, margin=0.3).shape == (96, 96, 3)


def test_unaligned_crop_is_the_box(frontal):
    """margin=0, align=False: the crop is the face box resized, not shifted, flipped or rotated."""
    for image, face in frontal:
        left, top, right, bottom = face.box
        if left < 0 or top < 0 or right > image.shape[1] or bottom > image.shape[0]:
            continue
        size = 64
        crop = crop_face(image, face, margin=0.0, size=size, align=False).astype(np.float32)
        # the box is nearly square; cut the square of side face.size about its centre by hand
        cx, cy = face.center
        half = face.size / 2
        x0, y0 = round(cx - half), round(cy - half)
        side = round(face.size)
        if x0 < 0 or y0 < 0 or x0 + side > image.shape[1] or y0 + side > image.shape[0]:
            continue
        reference = cv2.resize(
            image[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA
        )
        same = np.abs(crop - reference).mean()
        shifted = np.abs(crop - np.roll(reference, size // 8, axis=1)).mean()
        mirrored = np.abs(crop - reference[:, ::-1]).mean()
        assert same < 10 and same < 0.6 * min(shifted, mirrored), (same, shifted, mirrored)


@pytest.mark.parametrize("degrees", [15.0, -15.0])
def test_align_levels_the_eyes_of_a_rotated_face(frontal, detector, degrees):
    """Rotate each photo, detect, align, re-detect on the crop: the eye line comes out level.

    BlazeFace's eye keypoints are good to a few degrees (median ~2), so the levelness is judged over all
    the photos; with ``align=False`` the same crops keep the 15 degree tilt.
    """
    tilt_errors, aligned_angles, unaligned_angles = [], [], []
    for image, face in frontal:
        turned, matrix = rotate(image, face.center, degrees)
        centre = np.append(face.center, 1.0) @ matrix.T
        expected_box = np.array([*(centre - face.size / 2), *(centre + face.size / 2)])
        tilted = closest(detector.detect(turned), expected_box)
        if tilted is None:  # a few faces are lost when turned; counted below
            continue
        # cv2 turns counter-clockwise on screen, which raises the image-right eye: a negative angle
        tilt_errors.append(eye_degrees(tilted) - (eye_degrees(face) - degrees))

        aligned = crop_face(turned, tilted, margin=0.4, align=True)
        level = largest_face(detector.detect(aligned))
        if level is None:
            continue
        aligned_angles.append(eye_degrees(level))

        # the crop matrix levels the detected eyes exactly and moves the keypoints where the detector
        # finds them again in the crop
        mapped = np.c_[tilted.keypoints, np.ones(6)] @ crop_matrix(tilted, margin=0.4, align=True).T
        dx, dy = mapped[LEFT_EYE] - mapped[RIGHT_EYE]
        assert dx > 0 and abs(dy) < 1e-3 * dx
        np.testing.assert_allclose(level.keypoints[:4], mapped[:4], atol=0.1 * 160)

        unaligned = largest_face(detector.detect(crop_face(turned, tilted, margin=0.4, align=False)))
        if unaligned is not None:
            unaligned_angles.append(eye_degrees(unaligned))

    assert min(len(tilt_errors), len(aligned_angles), len(unaligned_angles)) >= 0.9 * len(frontal)

    assert np.median(np.abs(tilt_errors)) < 3.0, np.median(np.abs(tilt_errors))
    assert np.median(np.abs(aligned_angles)) < 3.0, np.median(np.abs(aligned_angles))
    assert np.percentile(np.abs(aligned_angles), 90) < 6.0, np.percentile(np.abs(aligned_angles), 90)
    assert np.median(np.abs(unaligned_angles)) > 10.0, np.median(np.abs(unaligned_angles))


def test_face_at_the_border_is_padded_black(frontal):
    image, face = frontal[0]
    # cut the image through the middle of the face: its box now starts left of the image
    cut = int(face.center[0])
    part = np.ascontiguousarray(image[:, cut:])
    shifted = Face(
        box=(face.box[0] - cut, face.box[1], face.box[2] - cut, face.box[3]),
        keypoints=face.keypoints - [cut, 0],
        score=face.score,
    )
    assert shifted.box[0] < 0
    for align in (False, True):
        crop = crop_face(part, shifted, align=align)
        assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    crop = crop_face(part, shifted, align=False)
    assert crop[:, :70].max() == 0  # the left half (crop x < 80) lies outside the image
    assert crop[:, 90:].mean() > 20


def test_crop_rejects_bad_input(frontal):
    image, face = frontal[0]
    with pytest.raises(ImageError):
        crop_face(image.astype(np.float32), face)
    with pytest.raises(ImageError):
        crop_face(image[:, :, 0], face)
    with pytest.raises(ValueError):
        crop_face(image, face, margin=-0.5)
    with pytest.raises(ValueError):
        crop_face(image, face, size=0)


def test_largest_face(frontal, detector):
    assert largest_face([]) is None
    image, _ = frontal[0]
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    both = np.zeros((h, w + w // 2, 3), np.uint8)
    both[:, :w] = image
    both[: h // 2, w:] = small
    faces = detector.detect(both)
    assert len(faces) >= 2
    assert largest_face(faces).center[0] < w  # the full-size copy, left
    assert largest_face(reversed(faces)) is largest_face(faces)
