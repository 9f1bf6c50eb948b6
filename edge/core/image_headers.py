"""Image sizes from the headers, before any decoder runs: which format a picture is, and the width x height it
declares (every page and tile of a TIFF). A picture whose size cannot be read this way is refused.

Formats read: JPEG (frame header; a file cut before its end-of-image marker is refused), PNG (IHDR), WebP (VP8,
VP8L, VP8X), TIFF and BigTIFF in either byte order (every page, tiles, sample depth), BMP (BITMAPINFOHEADER and
later, OS/2) and PNM (P1-P6, comments included). GIF, JPEG 2000, JPEG XL, OpenEXR, Radiance HDR, Sun raster,
PAM, PFM, AVIF/HEIF and QOI are refused on sight: OpenCV may decode them, but their size is not checked first.
The format comes from the content, never from a file name.
"""

from __future__ import annotations

import re
import struct

from edge.errors import ImageError

SUPPORTED = "JPEG, PNG, WebP, TIFF, BMP and PNM"

MAX_SIDE = 1 << 20
"""Largest width or height a header may declare: OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_WIDTH``)."""

# Formats the installed OpenCV may decode but whose size this module does not read: refused on sight.
# (AVIF and HEIF, ISO media files, are recognised by their "ftyp" box at byte 4, see image_format.)
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


def image_format(data: bytes, name: str) -> str:
    """``"JPEG"``, ``"PNG"``, ``"WebP"``, ``"TIFF"``, ``"BMP"`` or ``"PNM"`` from the first bytes of ``data``.

    Raises ImageError for anything else, before any decoder sees it. The signatures OpenCV tries before
    its JPEG, WebP, PNM, TIFF and PNG readers (GIF, AVIF, Radiance HDR) are looked for first, so that a
    file that would be decoded as one of those is never taken for one whose size was checked.
    """
    unsupported = next((kind for signature, kind in _UNSUPPORTED_SIGNATURES if data.startswith(signature)), None)
    if unsupported is None and data[4:8] == b"ftyp":
        unsupported = "AVIF/HEIF"
    if unsupported is not None:
        raise ImageError(f"{name}: unsupported image format {unsupported} (facegate reads {SUPPORTED})")
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
    raise ImageError(f"{name}: not a readable image (unknown format; facegate reads {SUPPORTED})")


def header_sizes(kind: str, data: bytes, name: str) -> list[tuple[int, int, str]]:
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
    pos = 2  # after "Pn"; image_format saw the whitespace that follows
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
