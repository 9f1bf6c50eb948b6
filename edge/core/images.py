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
    read is refused.
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
import re
import struct
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError

log = logging.getLogger(__name__)

#: File name suffixes of the image files facegate reads from folders (photo sets, replayed frames).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width x height accepted by default: a 50-megapixel camera picture (150 MB decoded)."""

_SUPPORTED = "JPEG, PNG, WebP, TIFF, BMP and PNM"

_MAX_SIDE = 1 << 20
"""Largest width or height a header may declare: OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_WIDTH``)."""

# Formats the installed OpenCV may decode but whose size this module does not read: refused on sight.
# (AVIF and HEIF, ISO media files, are recognised by their "ftyp" box at byte 4, see _image_format.)
_UNSUPPORTED_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),  # a bare codestream (.j2k)
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),  # a bare codestream
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"P7", "PAM"),
    (b"PF", "PFM"),
    (b"Pf", "PFM"),
    (b"qoif", "QOI"),
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and RST0..RST7.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS = 0xDA

_TIFF_SIGNATURES = frozenset({b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"})  # classic, BigTIFF
_TIFF_MAX_PAGES = 100
_TIFF_MAX_ENTRIES = 4096  # libtiff's own sanity limit on the entries of one directory
_TIFF_SMALL_TILE = 1 << 20  # pixels: a tile up to 1024x1024 (4 MB as RGBA) is never refused, whatever the limit
# TIFF field types that hold integers -> struct format: BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG, LONG8, SLONG8.
_TIFF_INTEGERS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q", 17: "q"}
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH = 256, 257, 258, 322, 323
_TIFF_TAGS = frozenset({_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH})

_PNM_SPACE = b" \t\n\v\f\r"  # C isspace(), what OpenCV's reader skips
# One number of a PNM header: whitespace and comments (# to the end of the line) before it, one whitespace
# character after it. OpenCV's reader swallows whatever character ends a number, so a "#" right after a
# digit would start a comment here and not there: such a header does not match (it is refused).
_PNM_NUMBER = re.compile(rb"(?:[ \t\n\v\f\r]|#[^\n\r]*[\n\r])*([0-9]{1,10})[ \t\n\v\f\r]")


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
    kind = _image_format(data, name)
    for width, height, part in _header_sizes(kind, data, name):
        label = f"{name} ({part})" if part else name
        if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
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


def _image_format(data: bytes, name: str) -> str:
    """``"JPEG"``, ``"PNG"``, ``"WebP"``, ``"TIFF"``, ``"BMP"`` or ``"PNM"`` from the first bytes of ``data``.

    Raises ImageError for anything else, before any decoder sees it. The signatures OpenCV tries before
    its JPEG, WebP, PNM, TIFF and PNG readers (GIF, AVIF, Radiance HDR) are looked for first, so that a
    file that would be decoded as one of those is never taken for one whose size was checked.
    """
    unsupported = next((kind for signature, kind in _UNSUPPORTED_SIGNATURES if data.startswith(signature)), None)
    if unsupported is None and data[4:8] == b"ftyp":
        unsupported = "AVIF/HEIF"
    if unsupported is not None:
        raise ImageError(f"{name}: unsupported image format {unsupported} (facegate reads {_SUPPORTED})")
    if data.startswith(_JPEG_SOI):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in _TIFF_SIGNATURES:
        return "TIFF"
    if data[:2] == b"BM":
        return "BMP"
    if len(data) >= 3 and data[0] == ord("P") and data[1] in b"123456" and data[2] in _PNM_SPACE:
        return "PNM"
    raise ImageError(f"{name}: not a readable image (unknown format; facegate reads {_SUPPORTED})")


def _header_sizes(kind: str, data: bytes, name: str) -> list[tuple[int, int, str]]:
    """``(width, height, part)`` declared by the header of a ``kind`` picture, before decoding.

    ``part`` is empty for the picture itself; a TIFF adds its other pages and its tiles
    (``"page 2"``, ``"page 1 tiles"``). Raises ImageError when the header does not give a size.
    """
    if kind == "TIFF":
        return _tiff_sizes(data, name)
    if kind == "JPEG":
        size = _jpeg_size(data, name)
    elif kind == "PNG":
        size = _png_size(data)
    elif kind == "WebP":
        size = _webp_size(data)
    elif kind == "BMP":
        size = _bmp_size(data)
    else:
        size = _pnm_size(data)
    if size is None:
        raise _unreadable(name, kind)
    return [(*size, "")]


def _unreadable(name: str, kind: str, why: str = "corrupt or truncated") -> ImageError:
    return ImageError(f"{name}: cannot read the image size from the {kind} header ({why})")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if len(data) >= 24 and data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


def _jpeg_size(data: bytes, name: str) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's frame header; refuses a JPEG cut off before its end marker.

    Walks the marker segments from the start (skipping APPn segments whole, so an EXIF thumbnail's
    markers are never mistaken for the picture's) up to the first start-of-scan. Entropy-coded data
    never contains ``FF D9`` (0xFF bytes are stuffed as ``FF 00``), so a complete JPEG has its
    end-of-image marker ``FF D9`` after that point and a truncated one does not. Returns None when the
    segment structure is not understood (the decoder then decides).
    """
    size = None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return size
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            size = (width, height) if width and height else None
        if marker == _JPEG_SOS:
            if data.find(_JPEG_EOI, pos + 2 + length) < 0:
                raise ImageError(f"{name}: truncated JPEG (no end-of-image marker after the image data)")
            return size
        pos += 2 + length
    raise ImageError(f"{name}: truncated JPEG (ends before the image data)")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first chunk of a RIFF WebP, or None if it is not understood.

    VP8X (extended format: alpha, animation, metadata): the canvas, 24 bits each minus one; libwebp refuses
    a still picture whose bitstream differs from it and an animation frame that leaves it. VP8L (lossless):
    14 bits each minus one, after the 0x2F signature byte. VP8 (lossy): the 14-bit sizes of the key frame
    (the top 2 bits of each are an upscaling hint the decoder ignores).
    """
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        if bits >> 29 == 0:  # version 0, the only one
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a" and not data[20] & 1:  # key frame
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a BMP's DIB header, or None if it is not understood.

    A 12-byte OS/2 core header has unsigned 16-bit sizes; BITMAPINFOHEADER and its later versions (and the
    OS/2 2.x header) signed 32-bit ones, a negative height meaning rows stored top-down.
    """
    if len(data) < 18:
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12 and len(data) >= 22:
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    if header_size >= 16 and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PBM/PGM/PPM header (P1 to P6, comments allowed), or None.

    The header is width, height and, except for the bitmaps P1 and P4, the largest sample value, which must
    be 1 to 65535 (OpenCV refuses the rest).
    """
    pos = 2  # after "Pn"; _image_format saw the whitespace that follows
    numbers = []
    for _ in range(2 if data[1] in b"14" else 3):
        match = _PNM_NUMBER.match(data, pos)
        if match is None:
            return None
        numbers.append(int(match.group(1)))
        pos = match.end()
    if len(numbers) == 3 and not 0 < numbers[2] <= 0xFFFF:
        return None
    return numbers[0], numbers[1]


def _tiff_sizes(data: bytes, name: str) -> list[tuple[int, int, str]]:
    """``(width, height, part)`` of every page of a TIFF or BigTIFF (either byte order) and of its tiles.

    Follows the chain of image file directories (IFDs) from the header, as libtiff does, up to
    :data:`_TIFF_MAX_PAGES`. Per page: ImageWidth x ImageLength (a tag given twice counts with its larger
    value) and, when the page is tiled, TileWidth x TileLength if over :data:`_TIFF_SMALL_TILE`, since
    OpenCV allocates a buffer of one whole tile; samples of more than 16 bits are refused. Raises
    ImageError for a directory, a tag or a chain that cannot be read. (RowsPerStrip needs no check: a
    strip declared longer than its page costs nothing, measured with OpenCV 5.0.)
    """
    order = "<" if data[:2] == b"II" else ">"
    if data[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: 8-byte offsets and counts
        header = _unpack(order + "HHQ", data, 4)
        if header is None or header[:2] != (8, 0):
            raise _unreadable(name, "TIFF", "bad BigTIFF header")
        offset = header[2]
        count_format, entry_format, pointer_format = order + "Q", order + "HHQ8s", order + "Q"
    else:
        pointer = _unpack(order + "I", data, 4)
        if pointer is None:
            raise _unreadable(name, "TIFF")
        offset = pointer[0]
        count_format, entry_format, pointer_format = order + "H", order + "HHI4s", order + "I"
    entry_size = struct.calcsize(entry_format)

    sizes: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    while True:
        page = len(seen) + 1
        if offset in seen:
            raise _unreadable(name, "TIFF", f"page {page} loops back to an earlier page")
        if page > _TIFF_MAX_PAGES:
            raise ImageError(f"{name}: TIFF of more than {_TIFF_MAX_PAGES} pages")
        seen.add(offset)
        count = _unpack(count_format, data, offset)
        if offset == 0 or count is None or not 0 < count[0] <= _TIFF_MAX_ENTRIES:
            raise _unreadable(name, "TIFF", f"no directory for page {page} at byte {offset}")
        start = offset + struct.calcsize(count_format)
        end = start + count[0] * entry_size
        following = _unpack(pointer_format, data, end)
        if following is None:
            raise _unreadable(name, "TIFF", f"the directory of page {page} is cut off")
        values: dict[int, list[int]] = {}
        for tag, field_type, n, inline in struct.iter_unpack(entry_format, data[start:end]):
            if tag in _TIFF_TAGS:
                found = _tiff_integers(data, order, field_type, n, inline, pointer_format)
                if found is None or (tag != _TIFF_BITS and len(found) != 1):
                    raise _unreadable(name, "TIFF", f"tag {tag} of page {page}")
                values.setdefault(tag, []).extend(found)
        if _TIFF_WIDTH not in values or _TIFF_LENGTH not in values:
            raise _unreadable(name, "TIFF", f"page {page} has no ImageWidth or ImageLength")
        width, height = max(values[_TIFF_WIDTH]), max(values[_TIFF_LENGTH])
        sizes.append((width, height, f"page {page}" if page > 1 else ""))
        bits = max(values.get(_TIFF_BITS, [1]))
        if bits > 16:
            raise ImageError(f"{name}: unsupported sample type, {bits} bits (8- or 16-bit images only)")
        if _TIFF_TILE_WIDTH in values or _TIFF_TILE_LENGTH in values:  # OpenCV reads 0 as the page's size
            tile_width = max(values.get(_TIFF_TILE_WIDTH, [0])) or width
            tile_length = max(values.get(_TIFF_TILE_LENGTH, [0])) or height
            if tile_width * tile_length > _TIFF_SMALL_TILE:
                sizes.append((tile_width, tile_length, f"page {page} tiles"))
        offset = following[0]
        if offset == 0:  # the last page
            return sizes


def _tiff_integers(
    data: bytes, order: str, field_type: int, count: int, inline: bytes, pointer_format: str
) -> list[int] | None:
    """The values of one TIFF directory entry, in the entry (``inline``) or at the offset it holds, or None."""
    code = _TIFF_INTEGERS.get(field_type)
    if code is None or count == 0:
        return None
    size = struct.calcsize(code) * count
    if size > len(data):
        return None
    if size <= len(inline):
        return list(struct.unpack_from(f"{order}{count}{code}", inline))
    (at,) = struct.unpack(pointer_format, inline)
    values = _unpack(f"{order}{count}{code}", data, at)
    return None if values is None else list(values)


def _unpack(layout: str, data: bytes, offset: int) -> tuple | None:
    """``struct.unpack_from(layout, data, offset)``, or None where ``data`` is too short."""
    if offset + struct.calcsize(layout) > len(data):
        return None
    return struct.unpack_from(layout, data, offset)
