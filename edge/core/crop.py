"""Cut a detected face out of an image as a square, optionally rotated so the eyes are level.

The crop region is a square centred on the face box's centre, of side ``face.size * (1 + 2 * margin)``
(``face.size`` is the box's larger side), i.e. the box grown on every side by ``margin`` times its larger
side and made square so the face is not distorted. With ``align=True`` the square is turned by the angle of
the eye line, so the eyes come out level; this is the same as rotating the image about the eye midpoint to
level the eyes and cutting the square around the (rotated) box centre. Rotation, cropping and scaling are
one affine map (:func:`crop_matrix`) applied with a single ``cv2.warpAffine`` (bilinear); parts of the square
outside the image are filled with black (zeros). Bilinear sampling does not average, so a face box more
than about twice ``size`` aliases a little (in 640x480 camera frames faces are rarely that large).

Coordinates are ``(x, y)`` pixels, x right, y down, continuous convention (an image covers
``[0, width] x [0, height]``), as in :mod:`edge.core.detect`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

from edge.core.detect import LEFT_EYE, RIGHT_EYE, Face, check_image


def eye_angle(face: Face) -> float:
    """Angle of the line from the right eye to the left eye, in radians (image axes, y down).

    0 when the eyes are level with the right eye on the image's left; positive when the left eye (image
    right) is lower than the right eye, i.e. the head is tilted clockwise as seen in the image.
    """
    dx, dy = face.keypoints[LEFT_EYE] - face.keypoints[RIGHT_EYE]
    return math.atan2(float(dy), float(dx))


def crop_matrix(face: Face, *, margin: float = 0.1, size: int = 160, align: bool = True) -> np.ndarray:
    """The ``(2, 3)`` float64 affine map from image pixels to crop pixels used by :func:`crop_face`.

    ``[x_crop, y_crop] = M[:, :2] @ [x, y] + M[:, 2]`` in continuous coordinates (pixel centres at
    ``+0.5``), so it also maps the face's box corners and keypoints into the crop.

    Args:
        face: the detected face.
        margin: added on each side, as a fraction of ``face.size``; must be greater than -0.5.
        size: side of the square crop in pixels.
        align: rotate so the eye line is horizontal.
    """
    if margin <= -0.5:
        raise ValueError(f"margin must be greater than -0.5, got {margin}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive whole number of pixels, got {size}")
    side = face.size * (1.0 + 2.0 * margin)
    if not side > 0:
        raise ValueError(f"face box {face.box} has no area")
    angle = eye_angle(face) if align else 0.0
    cos, sin = math.cos(angle) * size / side, math.sin(angle) * size / side
    # Rotate by -angle and scale to the crop about the box centre, which lands at the crop centre.
    linear = np.array([[cos, sin], [-sin, cos]])
    centre = np.asarray(face.center, np.float64)
    shift = size / 2.0 - linear @ centre
    return np.hstack([linear, shift[:, None]])


def crop_face(
    image: np.ndarray, face: Face, *, margin: float = 0.1, size: int = 160, align: bool = True
) -> np.ndarray:
    """Cut ``face`` out of ``image`` as a ``(size, size, 3)`` uint8 RGB square.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image the face was detected in.
        face: a :class:`~edge.core.detect.Face` in ``image``'s pixels.
        margin: the box's larger side times ``margin`` is added on each side (0.1: the square is 1.2 times
            the box's larger side), see the module docstring.
        size: side of the output in pixels (160 for FaceNet).
        align: rotate so the eyes are level (about the box centre).

    Returns:
        ``(size, size, 3)`` uint8 RGB; regions outside ``image`` are black.

    Raises:
        ImageError: ``image`` is not a non-empty ``(H, W, 3)`` uint8 array.
    """
    check_image(image)
    matrix = crop_matrix(face, margin=margin, size=size, align=align)
    # cv2 indexes pixel centres at integers: shift both sides by half a pixel.
    linear = matrix[:, :2]
    shift = matrix[:, 2] + linear @ np.array([0.5, 0.5]) - 0.5
    to_index = np.hstack([linear, shift[:, None]])
    return cv2.warpAffine(
        image,
        to_index,
        (int(size), int(size)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def largest_face(faces: Iterable[Face]) -> Face | None:
    """The face with the largest box area (the nearest person, usually), the higher score on a tie.

    Returns ``None`` for no faces.
    """
    return max(faces, key=lambda f: (f.width * f.height, f.score), default=None)
