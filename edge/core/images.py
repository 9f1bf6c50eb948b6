"""Load a picture safely into one well-defined array: ``(H, W, 3)`` uint8, channel order **RGB**.

**Colour order: OpenCV decodes to BGR; everything this module returns is RGB.** Callers never see BGR.

What :func:`load_image` accepts and what it does with it:

* **Files and bytes** (a path, or the encoded bytes of a JPEG, PNG, WebP, TIFF, BMP or PNM picture; the
  format is recognised from the content, its first bytes, never from the file name):

  - Width x height is read from the header **before** anything is decoded, and a picture over
    ``max_pixels``, or declaring a width or height of 0 or over 2**20 (OpenCV's own limit per side), is
    refused without allocating it. JPEG: the frame header (SOF). PNG: IHDR. WebP: the VP8X canvas, else the
    VP8 key-frame header or the VP8L header. TIFF and BigTIFF, either byte order: ImageWidth and ImageLength
    of **every** page (IFD) of the chain (at most 100 pages), and TileWidth x TileLength of a tiled page
    when over 1024x1024 (a tile may be larger than its page, and OpenCV allocates a whole one); samples of
    more than 16 bits are refused there too (they would be refused after decoding, at up to 8 times the
    memory of 8-bit ones). BMP: the BITMAPINFOHEADER (or a later version) or the OS/2 core header; a
    negative height (rows stored top-down) counts as its absolute value. PNM (PBM/PGM/PPM, P1 to P6): the
    text header, comments included, read the way OpenCV's reader reads it. A header whose size cannot be
    read is refused. (The header readers are :mod:`edge.core.image_headers`.)
  - Everything else is refused before decoding: the formats OpenCV could decode but whose size is not read
    here (GIF, JPEG 2000, JPEG XL, OpenEXR, Radiance HDR, Sun raster, PAM, PFM, AVIF/HEIF, QOI) as an
    unsupported image format, any other content as not a readable image.
  - JPEG: decoded with ``cv2.IMREAD_COLOR``, which applies the EXIF orientation tag, so a phone photo
    taken sideways comes back upright. A JPEG whose data stops before its end-of-image marker
    (truncated download, half-written file) is refused: OpenCV 4 would return it half grey with only a
    warning on stderr, OpenCV 5 refuses it; this module refuses it with every version.
  - Every other format: decoded with ``cv2.IMREAD_UNCHANGED`` to keep the alpha channel and 16-bit
    samples (that flag ignores EXIF orientation; EXIF in PNG/TIFF/WebP is rare on camera pictures).
  - The decoded picture's width x height is checked again after decoding (a rotation swaps the two, the
    product stays).

* **Arrays** (``numpy.ndarray``): uint8 only, shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
  ``(H, W, 4)``, channel order RGB(A) unless ``array_order="BGR"`` (an OpenCV ``VideoCapture`` frame).
  Other dtypes are refused rather than guessed (a float image may be scaled 0..1 or 0..255).

Conversions, for every source: greyscale is replicated to 3 channels; an alpha channel is **composited
on white** (``out = colour * a + 255 * (1 - a)``), because fully transparent pixels often hold black or
garbage colour that dropping alpha would show; 16-bit samples are scaled to 8 bits (``round(v / 257)``,
so 65535 -> 255). The result is always a new C-contiguous array the caller may modify.

Every failure raises :class:`edge.errors.ImageError` with a one-line message naming the file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from edge.core.image_headers import MAX_SIDE, header_sizes, image_format
from edge.errors import ImageError

log = logging.getLogger(__name__)

#: File name suffixes of the image files facegate reads from folders (photo sets, replayed frames).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width x height accepted by default: a 50-megapixel camera picture (150 MB decoded)."""

def load_image(
    source: str | os.PathLike | bytes | bytearray | memoryview | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    array_order: str = "RGB",
) -> np.ndarray:
    """Load a picture as ``(H, W, 3)`` uint8 **RGB** (not OpenCV's BGR), upright, 8 bits per channel.

    Args:
        source: a path to an image file, the encoded bytes of one, or a decoded uint8 array
            ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``.
        max_pixels: refuse pictures whose width x height exceeds this (checked from the file's header
            before decoding, and for every source after).
        array_order: channel order of an array ``source``: ``"RGB"`` (RGBA) or ``"BGR"`` (BGRA, e.g. an
            OpenCV camera frame). Ignored for files and bytes, whose order the decoder knows.

    Returns:
        a new C-contiguous uint8 array of shape ``(H, W, 3)``, channels R, G, B; rows top to bottom.

    Raises:
        ImageError: missing, unreadable, empty, corrupt, truncated or too large picture, or one in a format
            other than JPEG, PNG, WebP, TIFF, BMP and PNM; an array of the wrong shape or dtype. The message
            is one line and names the file.
        ValueError: ``max_pixels`` < 1 or an unknown ``array_order`` (a programming error).
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if array_order not in ("RGB", "BGR"):
        raise ValueError(f"array_order must be 'RGB' or 'BGR', got {array_order!r}")
    if isinstance(source, np.ndarray):
        image = _from_array(source, max_pixels=max_pixels, bgr=array_order == "BGR")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        image = _decode(data, f"image bytes ({len(data)} bytes)", max_pixels=max_pixels)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        image = _decode(_read_file(path), str(path), max_pixels=max_pixels)
    else:
        kind = type(source).__name__
        raise ImageError(f"cannot load an image from a {kind}: give a path, bytes or a uint8 array")
    log.debug("loaded image %s", image.shape)
    return image


def _read_file(path: Path) -> bytes:
    """The bytes of ``path``, or an :class:`ImageError` saying why not."""
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image file")
        if path.exists() and not path.is_file():
            raise ImageError(f"{path}: not a regular file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as err:
        raise ImageError(f"{path}: cannot read ({err.strerror or err})") from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    return data


def _decode(data: bytes, name: str, *, max_pixels: int) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8; ``name`` is what error messages call the image."""
    if not data:
        raise ImageError(f"{name}: empty, no image data")
    kind = image_format(data, name)
    for width, height, part in header_sizes(kind, data, name):
        label = f"{name} ({part})" if part else name
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ImageError(f"{label}: the {kind} header declares an impossible size {width}x{height}")
        _check_pixels(width, height, name=label, max_pixels=max_pixels)

    flags = cv2.IMREAD_COLOR if kind == "JPEG" else cv2.IMREAD_UNCHANGED
    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as err:
        lines = str(err).strip().splitlines() or ["decoder error"]
        raise ImageError(f"{name}: cannot decode ({lines[-1].strip()})") from None
    if decoded is None or decoded.size == 0:
        raise ImageError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    if decoded.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{name}: unsupported sample type {decoded.dtype} (8- or 16-bit images only)")
    height, width = decoded.shape[:2]
    _check_pixels(width, height, name=name, max_pixels=max_pixels)
    return _to_rgb8(decoded, bgr=True, name=name)


def _from_array(array: np.ndarray, *, max_pixels: int, bgr: bool) -> np.ndarray:
    name = f"image array {array.shape} {array.dtype}"
    if array.dtype != np.uint8:
        raise ImageError(f"{name}: expected dtype uint8 (0..255); convert floats or 16-bit values first")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise ImageError(f"{name}: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"{name}: empty image")
    _check_pixels(array.shape[1], array.shape[0], name=name, max_pixels=max_pixels)
    return _to_rgb8(array, bgr=bgr, name=name)


def _check_pixels(width: int, height: int, *, name: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} = {width * height} pixels is more than the limit of {max_pixels}"
        )


def _to_rgb8(image: np.ndarray, *, bgr: bool, name: str) -> np.ndarray:
    """Grey / grey+alpha / colour / colour+alpha, uint8 or uint16 -> new ``(H, W, 3)`` uint8 RGB."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 2:  # grey + alpha
        image = np.dstack([image[:, :, 0]] * 3 + [image[:, :, 1]])
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else np.array(image, order="C")  # a copy
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA) if bgr else image
    else:
        raise ImageError(f"{name}: unsupported number of channels {image.shape[2]}")

    full_scale = float(np.iinfo(image.dtype).max)  # 255 or 65535
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / full_scale
        on_white = image[:, :, :3].astype(np.float32) * alpha + full_scale * (1.0 - alpha)
        return _rescale_to_uint8(on_white, full_scale)
    if image.dtype == np.uint16:
        return _rescale_to_uint8(image.astype(np.float32), full_scale)
    return image  # new: cvtColor and the copy above never return the caller's array


def _rescale_to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    """``values`` in 0..full_scale (float) -> rounded uint8 0..255."""
    return np.clip(np.rint(values * (255.0 / full_scale)), 0, 255).astype(np.uint8)
