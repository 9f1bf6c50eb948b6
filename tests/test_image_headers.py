"""Every format's size read from its header before decoding (edge/core/image_headers.py): checked against
OpenCV's own writer and decoder, bombs in every format refused before the decoder runs, unsupported formats
refused on sight."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.core.images import load_image
from edge.errors import ImageError

SUPPORTED = "(facegate reads JPEG, PNG, WebP, TIFF, BMP and PNM)"


from tests.test_images import _encode, _one_line_naming, _png, _write  # noqa: E402

_TIFF_FORMATS = {3: "H", 4: "I", 16: "Q"}
Tags = dict[int, tuple[int, list[int]]]


def _tiff(pages: list[tuple[Tags, bytes]], *, order: str = "<", bigtiff: bool = False, loop: bool = False) -> bytes:
    """A TIFF written by hand: per page, its tags ``{tag: (type, values)}`` (values that fit in the entry)
    and its pixel data, one strip (or one tile when the page has TileWidth, 322) whose offset the writer
    fills in. ``order`` "<" is little-endian (II), ">" big-endian (MM); ``loop``: the last page links back to
    the first instead of ending the chain.
    """
    pointer, inline = ("Q", 8) if bigtiff else ("I", 4)
    if bigtiff:
        out = bytearray((b"II" if order == "<" else b"MM") + struct.pack(order + "HHHQ", 43, 8, 0, 0))
    else:
        out = bytearray((b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 0))
    link, first = len(out) - inline, 0
    for tags, pixels in pages:
        tags = {**tags, (324 if 322 in tags else 273): (16 if bigtiff else 4, [len(out)])}
        out += pixels + b"\x00" * (len(pixels) % 2)
        struct.pack_into(order + pointer, out, link, len(out))
        first = first or len(out)
        out += struct.pack(order + ("Q" if bigtiff else "H"), len(tags))
        for tag, (field_type, values) in sorted(tags.items()):
            raw = struct.pack(f"{order}{len(values)}{_TIFF_FORMATS[field_type]}", *values)
            assert len(raw) <= inline
            out += struct.pack(order + ("HHQ" if bigtiff else "HHI"), tag, field_type, len(values))
            out += raw.ljust(inline, b"\x00")
        link = len(out)
        out += bytes(inline)
    if loop:
        struct.pack_into(order + pointer, out, link, first)
    return bytes(out)



def _grey_page(width: int, height: int, pixels: bytes | None = None, *, long: bool = True) -> tuple[Tags, bytes]:
    """An uncompressed 8-bit grey TIFF page in one strip: its tags and pixels (``pixels`` may be short of the
    declared size, for a bomb). ``long``: sizes as LONG, else as SHORT."""
    pixels = bytes(i % 256 for i in range(width * height)) if pixels is None else pixels
    size_type = 4 if long else 3
    tags = {256: (size_type, [width]), 257: (size_type, [height]), 258: (3, [8]), 259: (3, [1]), 262: (3, [1]),
            277: (3, [1]), 278: (size_type, [height]), 279: (4, [len(pixels)])}
    return tags, pixels



def _tiled_page(width: int, height: int, tile: int) -> tuple[Tags, bytes]:
    """An 8-bit grey TIFF page of one deflate-compressed ``tile`` x ``tile`` tile of zeros."""
    pixels = zlib.compress(bytes(tile * tile), 9)
    tags = {256: (4, [width]), 257: (4, [height]), 258: (3, [8]), 259: (3, [8]), 262: (3, [1]), 277: (3, [1]),
            322: (4, [tile]), 323: (4, [tile]), 325: (4, [len(pixels)])}
    return tags, pixels



# ---------------------------------------------------------------- every format: the size comes from the header


def _no_imdecode(*args, **kwargs):
    pytest.fail("cv2.imdecode was called")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches OpenCV's decoder."""
    monkeypatch.setattr(cv2, "imdecode", _no_imdecode)


def _header_size_is_decoded_size(data: bytes, monkeypatch, *, width: int, height: int) -> None:
    """The size the header check reads is ``width`` x ``height``, which is what OpenCV decodes."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape[:2] == (height, width)
    with monkeypatch.context() as patch:
        patch.setattr(cv2, "imdecode", _no_imdecode)
        # One pixel less than the header declares: refused from the header, the decoder never runs.
        with pytest.raises(ImageError, match=f"{width}x{height} = {width * height} pixels is more than the limit"):
            load_image(data, max_pixels=width * height - 1)
    assert load_image(data, max_pixels=width * height).shape == (height, width, 3)


_NOISE = np.random.default_rng(3).integers(0, 256, size=(23, 37, 4), dtype=np.uint8)  # 37 wide, 23 high


@pytest.mark.parametrize(
    ("ext", "image", "params", "signature"),
    [
        (".jpg", _NOISE[:, :, :3], (), b"\xff\xd8\xff"),
        (".png", _NOISE, (), b"\x89PNG"),
        (".png", _NOISE[:, :, 0].astype(np.uint16) * 257, (), b"\x89PNG"),
        (".webp", _NOISE[:, :, :3], (), b"VP8L"),  # lossless
        (".webp", _NOISE[:, :, :3], (cv2.IMWRITE_WEBP_QUALITY, 80), b"VP8 "),  # lossy
        (".webp", _NOISE, (cv2.IMWRITE_WEBP_QUALITY, 80), b"VP8X"),  # lossy with alpha: extended format
        (".tiff", _NOISE[:, :, :3], (), b"II*\x00"),
        (".tiff", _NOISE[:, :, 0], (), b"II*\x00"),
        (".tiff", _NOISE[:, :, 0].astype(np.uint16) * 257, (), b"II*\x00"),
        (".tiff", _NOISE, (cv2.IMWRITE_TIFF_COMPRESSION, cv2.IMWRITE_TIFF_COMPRESSION_NONE), b"II*\x00"),
        (".bmp", _NOISE[:, :, :3], (), b"BM"),
        (".bmp", _NOISE[:, :, 0], (), b"BM"),  # 8-bit with a palette
        (".bmp", _NOISE, (), b"BM"),  # 32-bit, BITMAPV5HEADER
        (".pbm", np.where(_NOISE[:, :, 0] > 127, 255, 0).astype(np.uint8), (), b"P4"),
        (".pbm", np.where(_NOISE[:, :, 0] > 127, 255, 0).astype(np.uint8), (cv2.IMWRITE_PXM_BINARY, 0), b"P1"),
        (".pgm", _NOISE[:, :, 0], (), b"P5"),
        (".pgm", _NOISE[:, :, 0], (cv2.IMWRITE_PXM_BINARY, 0), b"P2"),
        (".pgm", _NOISE[:, :, 0].astype(np.uint16) * 257, (), b"P5"),
        (".ppm", _NOISE[:, :, :3], (), b"P6"),
        (".ppm", _NOISE[:, :, :3], (cv2.IMWRITE_PXM_BINARY, 0), b"P3"),
    ],
    ids=["jpeg", "png-rgba", "png-16bit", "webp-vp8l", "webp-vp8", "webp-vp8x", "tiff-rgb", "tiff-grey",
         "tiff-16bit", "tiff-rgba-raw", "bmp-24bit", "bmp-8bit", "bmp-32bit", "pbm-p4", "pbm-p1", "pgm-p5",
         "pgm-p2", "pgm-16bit", "ppm-p6", "ppm-p3"],
)
def test_opencv_written_files_header_size_is_the_decoded_size(ext, image, params, signature, monkeypatch):
    data = _encode(ext, np.ascontiguousarray(image), params)
    assert signature in data[:16]  # the variant this case is about
    _header_size_is_decoded_size(data, monkeypatch, width=37, height=23)


@pytest.mark.parametrize(
    "tiff",
    [
        _tiff([_grey_page(37, 23)], order=">"),
        _tiff([_grey_page(37, 23, long=False)], order=">"),
        _tiff([_grey_page(37, 23, long=False)]),
        _tiff([_grey_page(37, 23)], bigtiff=True),
        _tiff([_grey_page(37, 23)], order=">", bigtiff=True),
        _tiff([_tiled_page(37, 23, tile=64)]),
    ],
    ids=["big-endian", "big-endian-short", "little-endian-short", "bigtiff", "bigtiff-big-endian", "tiled"],
)
def test_hand_written_tiff_header_size_is_the_decoded_size(tiff, monkeypatch):
    _header_size_is_decoded_size(tiff, monkeypatch, width=37, height=23)


def test_bmp_top_down_and_os2_headers(monkeypatch):
    bgr = _NOISE[:, :, :3].copy()
    bottom_up = _encode(".bmp", bgr)
    # Negative height: the same rows stored top to bottom (the rows of the file reversed).
    header, pixels = bottom_up[:54], bottom_up[54:]
    stride = len(pixels) // 23
    rows = [pixels[i * stride : (i + 1) * stride] for i in range(23)]
    top_down = header[:22] + struct.pack("<i", -23) + header[26:] + b"".join(reversed(rows))
    _header_size_is_decoded_size(top_down, monkeypatch, width=37, height=23)
    np.testing.assert_array_equal(load_image(top_down), load_image(bottom_up))
    # OS/2 BITMAPCOREHEADER: 12 bytes, 16-bit width and height.
    core = struct.pack("<IHHHH", 12, 37, 23, 1, 24)
    os2 = b"BM" + struct.pack("<IHHI", 14 + len(core) + len(pixels), 0, 0, 14 + len(core)) + core + pixels
    _header_size_is_decoded_size(os2, monkeypatch, width=37, height=23)  # (OpenCV decodes it as grey)


def test_pnm_header_with_comments_everywhere(monkeypatch):
    pixels = _NOISE[:, :, 0].tobytes()
    header = b"P5\r\n# a comment\n\n#another one, then a CR line end\r37 # width\n# height:\n\t23\n# max\n255\n"
    data = header + pixels
    _header_size_is_decoded_size(data, monkeypatch, width=37, height=23)
    np.testing.assert_array_equal(load_image(data)[:, :, 0], _NOISE[:, :, 0])


def test_every_page_of_a_tiff_is_checked(monkeypatch, no_decoding):
    ok, buf = cv2.imencodemulti(".tiff", [np.zeros((10, 20, 3), np.uint8), np.zeros((200, 300, 3), np.uint8)])
    assert ok
    data = buf.tobytes()
    with pytest.raises(ImageError, match=r"\(page 2\): 300x200 = 60000 pixels is more than the limit of 59999"):
        load_image(data, max_pixels=59_999)
    monkeypatch.undo()  # the decoder is allowed again
    assert load_image(data, max_pixels=60_000).shape == (10, 20, 3)  # OpenCV decodes the first page


def test_tiff_bomb_on_a_later_page_is_refused(no_decoding):
    data = _tiff([_grey_page(20, 10), _grey_page(20, 10), _grey_page(30_000, 30_000, b"\x00" * 64)])
    assert len(data) < 1000
    with pytest.raises(ImageError, match=r"\(page 3\): 30000x30000 = 900000000 pixels is more than the limit"):
        load_image(data)


def test_tiff_tiles_larger_than_the_limit_are_refused(no_decoding):
    # A 40x30 page stored as one 16000x16000 tile: OpenCV allocates the whole tile (about 1 GB as RGBA).
    data = _tiff([_tiled_page(40, 30, tile=16_000)])
    assert len(data) < 300_000
    with pytest.raises(ImageError, match=r"\(page 1 tiles\): 16000x16000 = 256000000 pixels is more than"):
        load_image(data)


def test_tiff_page_chains_that_do_not_end_are_refused(monkeypatch, no_decoding):
    with pytest.raises(ImageError, match="cannot read the image size from the TIFF header.*loops back"):
        load_image(_tiff([_grey_page(4, 4), _grey_page(4, 4)], loop=True))
    with pytest.raises(ImageError, match="TIFF of more than 100 pages"):
        load_image(_tiff([_grey_page(4, 4)] * 101))
    monkeypatch.undo()
    assert load_image(_tiff([_grey_page(4, 4)] * 100)).shape == (4, 4, 3)


def test_tiff_with_more_than_16_bits_per_sample_is_refused_before_decoding(no_decoding):
    for dtype in (np.float32, np.float64, np.uint32):
        data = _encode(".tiff", np.zeros((5, 7), dtype))
        bits = np.dtype(dtype).itemsize * 8
        with pytest.raises(ImageError, match=f"unsupported sample type, {bits} bits"):
            load_image(data)


def _patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def _jpeg_bomb(width: int, height: int) -> bytes:
    data = _encode(".jpg", np.zeros((8, 8, 3), np.uint8))
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    return _patched(data, sof + 5, struct.pack(">HH", height, width))


def _webp_vp8l_bomb(width: int, height: int) -> bytes:
    data = _encode(".webp", np.zeros((8, 8, 3), np.uint8))
    (bits,) = struct.unpack("<I", data[21:25])
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | (height - 1) << 14
    return _patched(data, 21, struct.pack("<I", bits))


def _webp_vp8_bomb(width: int, height: int) -> bytes:
    data = _encode(".webp", np.zeros((16, 16, 3), np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 50))
    return _patched(data, 26, struct.pack("<HH", width, height))


def _webp_vp8x_bomb(width: int, height: int) -> bytes:
    data = _encode(".webp", np.zeros((16, 16, 4), np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 50))
    return _patched(data, 24, (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


def _bmp_bomb(width: int, height: int) -> bytes:
    return _patched(_encode(".bmp", np.zeros((8, 8, 3), np.uint8)), 18, struct.pack("<ii", width, -height))


def _bmp_os2_bomb(width: int, height: int) -> bytes:
    core = struct.pack("<IHHHH", 12, width, height, 1, 24)
    return b"BM" + struct.pack("<IHHI", 26 + 64, 0, 0, 26) + core + bytes(64)


# (builder, width, height): WebP's VP8 and VP8L headers hold 14 bits, an OS/2 BMP 16 bits.
_BOMBS = {
    "jpeg": (_jpeg_bomb, 60_000, 60_000),
    "png": (lambda w, h: _png(w, h, b"\x00" * 16, colour_type=2), 30_000, 30_000),
    "webp-vp8l": (_webp_vp8l_bomb, 16_384, 16_384),
    "webp-vp8": (_webp_vp8_bomb, 16_383, 16_383),
    "webp-vp8x": (_webp_vp8x_bomb, 30_000, 30_000),
    "tiff": (lambda w, h: _tiff([_grey_page(w, h, b"\x00" * 64)]), 30_000, 30_000),
    "tiff-big-endian": (lambda w, h: _tiff([_grey_page(w, h, b"\x00" * 64)], order=">"), 30_000, 30_000),
    "bigtiff": (lambda w, h: _tiff([_grey_page(w, h, b"\x00" * 64)], bigtiff=True), 30_000, 30_000),
    "bmp-top-down": (_bmp_bomb, 30_000, 30_000),
    "bmp-os2": (_bmp_os2_bomb, 65_535, 65_535),
    "pbm": (lambda w, h: f"P4\n# bomb\n{w} {h}\n".encode() + bytes(64), 30_000, 30_000),
    "pgm-ascii": (lambda w, h: f"P2 {w}\n#\n{h} 255\n".encode() + b"0 " * 64, 30_000, 30_000),
    "ppm": (lambda w, h: f"P6\n{w}\n{h}\n65535\n".encode() + bytes(64), 30_000, 30_000),
}


@pytest.mark.parametrize("kind", sorted(_BOMBS))
def test_bomb_is_refused_from_its_header_without_decoding(kind, tmp_path, no_decoding):
    build, width, height = _BOMBS[kind]
    path = _write(tmp_path / "bomb.img", build(width, height))
    assert path.stat().st_size < 2000
    with pytest.raises(ImageError, match=f"{width}x{height} = {width * height} pixels is more than the limit") as err:
        load_image(path)
    _one_line_naming(err, path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_png(0, 10, b"", colour_type=0), "PNG header declares an impossible size 0x10"),
        (_bmp_bomb(0, 10), "BMP header declares an impossible size 0x10"),
        (_bmp_bomb(-10, 10), "BMP header declares an impossible size -10x10"),
        (_patched(_encode(".bmp", np.zeros((2, 2, 3), np.uint8)), 22, struct.pack("<i", -(2**31))), "2147483648"),
        (b"P5 0 10 255\n", "PNM header declares an impossible size 0x10"),
        (b"P5 2000000 1 255\n" + bytes(64), "impossible size 2000000x1"),  # a side over 2**20
        (_tiff([_grey_page(0, 10, b"")]), "TIFF header declares an impossible size 0x10"),
        (_webp_vp8_bomb(0, 16), "WebP header declares an impossible size 0x16"),
    ],
)
def test_header_declaring_an_impossible_size_is_refused(data, match, no_decoding):
    with pytest.raises(ImageError, match=match):
        load_image(data, max_pixels=10**12)


@pytest.mark.parametrize(
    "data",
    [
        _encode(".webp", np.zeros((8, 8, 3), np.uint8))[:22],  # cut inside the VP8L header
        b"RIFF\x00\x00\x00\x00WEBPALPH" + bytes(40),  # an unknown first chunk
        b"BM" + bytes(10),
        _patched(_encode(".bmp", np.zeros((2, 2, 3), np.uint8)), 14, struct.pack("<I", 13)),  # no such header
        b"P6\n30000 30000\n",  # no largest value
        b"P6\n30000 30000\n70000\n" + bytes(64),  # over 65535
        b"P5 7#9999\n9999 255\n" + bytes(64),  # OpenCV would take the comment's digits for the height
        b"II*\x00\xff\x00\x00\x00" + bytes(64),  # first directory outside the file
        _tiff([({256: (4, [30_000])}, b"")]),  # no ImageLength
        b"\x89PNG\r\n\x1a\n" + bytes(30),  # no IHDR
        b"\xff\xd8\xff\xe0\x00\x04\x00\x00\x01\x02\x03\x04",  # JPEG: no frame header before the data stops
    ],
    ids=["webp-cut", "webp-unknown-chunk", "bmp-cut", "bmp-header-13", "pnm-no-maxval", "pnm-maxval", "pnm-hash",
         "tiff-no-ifd", "tiff-no-length", "png-no-ihdr", "jpeg-no-sof"],
)
def test_header_without_a_readable_size_is_refused(data, no_decoding):
    with pytest.raises(ImageError, match="cannot read the image size|truncated JPEG"):
        load_image(data)


# Formats OpenCV decodes but facegate refuses, their size not being read before decoding: files this OpenCV
# writes (extension, sample type), and signatures by hand (also of formats whose reader is optional).
_UNSUPPORTED_WRITTEN = {
    "GIF": (".gif", np.uint8),
    "AVIF/HEIF": (".avif", np.uint8),
    "Radiance HDR": (".hdr", np.float32),
    "Sun raster": (".ras", np.uint8),
    "PAM": (".pam", np.uint8),
    "PFM": (".pfm", np.float32),
}
_UNSUPPORTED_SIGNATURES = {
    "GIF": [b"GIF87a\x07\x00\x05\x00", b"GIF89a\x07\x00\x05\x00"],
    "AVIF/HEIF": [b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00", b"\x00\x00\x00\x18ftypheic"],
    "Radiance HDR": [b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", b"#?RGBE\n"],
    "Sun raster": [b"\x59\xa6\x6a\x95\x00\x00\x00\x07"],
    "PAM": [b"P7\nWIDTH 7\nHEIGHT 5\n"],
    "PFM": [b"PF\n7 5\n-1\n", b"Pf\n7 5\n-1\n"],
    "JPEG 2000": [b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 ", b"\xff\x4f\xff\x51\x00\x2f"],
    "JPEG XL": [b"\xff\x0a\xfa\x7f", b"\x00\x00\x00\x0cJXL \r\n\x87\n"],
    "OpenEXR": [b"\x76\x2f\x31\x01\x02\x00\x00\x00"],
    "QOI": [b"qoif\x00\x00\x00\x07\x00\x00\x00\x05\x03\x00"],
}


def test_formats_opencv_decodes_whose_size_is_not_checked_first_are_refused(tmp_path, monkeypatch):
    cases = [(kind, data) for kind, signatures in _UNSUPPORTED_SIGNATURES.items() for data in signatures]
    written = []
    for kind, (ext, dtype) in _UNSUPPORTED_WRITTEN.items():
        try:
            ok, buf = cv2.imencode(ext, np.zeros((5, 7, 3), dtype))
        except cv2.error:  # an OpenCV built without that writer
            continue
        # The reason for refusing them: OpenCV would decode them, with no size check before.
        assert ok and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).shape[:2] == (5, 7)
        written.append((kind, buf.tobytes()))
    if int(cv2.__version__.split(".")[0]) >= 5:
        assert len(written) == len(_UNSUPPORTED_WRITTEN)
    monkeypatch.setattr(cv2, "imdecode", _no_imdecode)
    for kind, data in cases + written:
        path = _write(tmp_path / "photo.jpg", data)  # the name says JPEG: the content decides
        with pytest.raises(ImageError) as err:
            load_image(path)
        assert str(err.value) == f"{path}: unsupported image format {kind} {SUPPORTED}"
        _one_line_naming(err, path)


def test_format_comes_from_the_content_not_the_name(tmp_path):
    rgb = _NOISE[:, :, :3].copy()
    path = _write(tmp_path / "photo.gif", _encode(".bmp", rgb[:, :, ::-1].copy()))
    np.testing.assert_array_equal(load_image(path), rgb)
    path = _write(tmp_path / "photo.bmp", _encode(".ppm", rgb[:, :, ::-1].copy()))
    np.testing.assert_array_equal(load_image(path), rgb)


def test_unknown_content_is_refused_before_decoding(no_decoding):
    for data in (b"this is not a picture\n" * 20, b"RIFF\x00\x00\x00\x00WAVEfmt ", b"/\x00\x00\x00\x00"):
        with pytest.raises(ImageError, match=f"not a readable image \\(unknown format; {SUPPORTED[1:-1]}\\)"):
            load_image(data)
