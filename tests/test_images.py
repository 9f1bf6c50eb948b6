"""load_image on the real celebrity photos and on hand-made good, odd and broken files."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.images import load_image
from edge.errors import ImageError
from tests.conftest import photo_paths

SUPPORTED = "(facegate reads JPEG, PNG, WebP, TIFF, BMP and PNM)"


def _png(width: int, height: int, rows: bytes, *, colour_type: int, bit_depth: int = 8) -> bytes:
    """A minimal PNG written by hand: signature, IHDR, one IDAT of ``rows``, IEND.

    ``rows`` is the raw scanline data (each row starts with filter byte 0); colour_type 0 = grey,
    2 = RGB, 4 = grey + alpha, 6 = RGBA.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _exif_app1(orientation: int) -> bytes:
    """A JPEG APP1 segment holding only an EXIF orientation tag (0x0112, SHORT), big-endian TIFF."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


# TIFF field types used below -> struct format: SHORT, LONG, LONG8.
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


def _encode(ext: str, image: np.ndarray, params: tuple = ()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def real_photos(photos_dir: Path) -> list[Path]:
    paths = [p for _, p in photo_paths(photos_dir, "train") + photo_paths(photos_dir, "val")]
    assert len(paths) == 118
    return paths


@pytest.fixture(scope="module")
def a_jpeg_photo(real_photos: list[Path]) -> Path:
    """The largest real photo that really is a JPEG (some .jpg files of the set are PNGs)."""
    jpegs = [p for p in real_photos if p.read_bytes()[:3] == b"\xff\xd8\xff"]
    return max(jpegs, key=lambda p: p.stat().st_size)


# ---------------------------------------------------------------- real photos, colour order


def test_every_real_photo_loads_as_rgb_uint8(real_photos):
    for path in real_photos:
        image = load_image(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, path
        assert image.flags["C_CONTIGUOUS"]
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw.ndim == 3 and raw.shape[2] == 4:
            # The set holds one RGBA PNG named .jpg: composited on white, computed here with numpy.
            a = raw[:, :, 3:4] / 255.0
            expected = np.rint(raw[:, :, 2::-1] * a + 255 * (1 - a)).astype(np.uint8)
            np.testing.assert_allclose(image, expected, atol=1)
        else:
            np.testing.assert_array_equal(image, cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def test_pure_red_png_written_by_opencv_is_red(tmp_path):
    bgr_red = np.zeros((4, 5, 3), np.uint8)
    bgr_red[:] = (0, 0, 255)  # OpenCV writes BGR
    path = tmp_path / "red.png"
    assert cv2.imwrite(str(path), bgr_red)
    image = load_image(path)
    assert image.shape == (4, 5, 3)
    assert tuple(image[2, 3]) == (255, 0, 0)


def test_pure_red_jpeg_bytes_are_red():
    bgr_red = np.zeros((16, 16, 3), np.uint8)
    bgr_red[:] = (0, 0, 255)
    r, g, b = (int(v) for v in load_image(_encode(".jpg", bgr_red))[8, 8])
    assert r > 250 and g < 5 and b < 5


def test_bytes_and_path_give_the_same_array(a_jpeg_photo):
    from_path = load_image(a_jpeg_photo)
    np.testing.assert_array_equal(load_image(a_jpeg_photo.read_bytes()), from_path)
    np.testing.assert_array_equal(load_image(bytearray(a_jpeg_photo.read_bytes())), from_path)
    np.testing.assert_array_equal(load_image(str(a_jpeg_photo)), from_path)


# ---------------------------------------------------------------- channel and depth conversions


def test_greyscale_png_is_replicated_to_three_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "grey.png"
    assert cv2.imwrite(str(path), grey)
    image = load_image(path)
    assert image.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey)


def test_png_with_alpha_is_composited_on_white(tmp_path):
    bgra = np.array(
        [[[0, 0, 255, 255], [0, 0, 255, 128]], [[0, 0, 0, 0], [255, 0, 0, 255]]], dtype=np.uint8
    )  # opaque red, half-transparent red, fully transparent black, opaque blue (BGRA)
    path = tmp_path / "alpha.png"
    assert cv2.imwrite(str(path), bgra)
    image = load_image(path)
    assert tuple(image[0, 0]) == (255, 0, 0)
    # Half red on white: R = 255*a + 255*(1-a) = 255; G = B = 0*a + 255*(1 - 128/255) = 127.
    assert tuple(image[0, 1]) == (255, 127, 127)
    assert tuple(image[1, 0]) == (255, 255, 255)  # transparent black shows white, not black
    assert tuple(image[1, 1]) == (0, 0, 255)


def test_grey_plus_alpha_png(tmp_path):
    # 2x1 grey+alpha, 8-bit: (grey 0, alpha 255) -> black; (grey 0, alpha 0) -> white.
    data = _png(2, 1, b"\x00" + bytes([0, 255, 0, 0]), colour_type=4)
    image = load_image(_write(tmp_path / "ga.png", data))
    assert image.shape == (1, 2, 3)
    assert tuple(image[0, 0]) == (0, 0, 0) and tuple(image[0, 1]) == (255, 255, 255)


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    bgr16 = np.zeros((1, 3, 3), np.uint16)
    bgr16[0, 0] = (0, 0, 65535)  # red at full scale
    bgr16[0, 1] = (100 * 257, 100 * 257, 100 * 257)  # 8-bit 100 stored as 16-bit
    bgr16[0, 2] = (1000, 0, 0)  # blue 1000 / 257 = 3.89 -> 4
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), bgr16)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really a 16-bit file
    image = load_image(path)
    assert image.dtype == np.uint8
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[0, 1]) == (100, 100, 100)
    assert tuple(image[0, 2]) == (0, 0, 4)


def test_sixteen_bit_rgba_png(tmp_path):
    bgra16 = np.zeros((1, 2, 4), np.uint16)
    bgra16[0, 0] = (0, 0, 65535, 65535)  # opaque red
    bgra16[0, 1] = (0, 0, 0, 0)  # transparent
    path = tmp_path / "deep_alpha.png"
    assert cv2.imwrite(str(path), bgra16)
    image = load_image(path)
    assert tuple(image[0, 0]) == (255, 0, 0) and tuple(image[0, 1]) == (255, 255, 255)


def test_exif_rotated_jpeg_is_returned_upright():
    # 24 rows x 48 columns: left half red, right half blue, top-left quadrant green (RGB): every one of
    # the 8 EXIF orientations gives a different picture.
    rgb = np.zeros((24, 48, 3), np.uint8)
    rgb[:, :24] = (255, 0, 0)
    rgb[:, 24:] = (0, 0, 255)
    rgb[:12, :24] = (0, 255, 0)
    # Quality 100 and no chroma subsampling (4:4:4): colours survive JPEG up to a few levels.
    params = (cv2.IMWRITE_JPEG_QUALITY, 100, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111)
    jpeg = _encode(".jpg", rgb[:, :, ::-1].copy(), params)

    def with_orientation(value: int) -> np.ndarray:
        return load_image(jpeg[:2] + _exif_app1(value) + jpeg[2:])

    # Orientation 6: the stored picture must be turned 90 degrees clockwise to be upright, so its left
    # half (red, green on top) becomes the top half (green on the right).
    upright = with_orientation(6)
    assert upright.shape == (48, 24, 3)
    np.testing.assert_allclose(upright, np.rot90(rgb, k=-1), atol=8)
    assert upright[5, 20, 1] > 240 and upright[5, 20, 0] < 10  # green at the top right
    # IMREAD_UNCHANGED would ignore the tag (why load_image decodes JPEG with IMREAD_COLOR):
    tagged = np.frombuffer(jpeg[:2] + _exif_app1(6) + jpeg[2:], np.uint8)
    as_stored = cv2.imdecode(tagged, cv2.IMREAD_UNCHANGED)
    assert as_stored.shape == (24, 48, 3)
    np.testing.assert_allclose(with_orientation(8), np.rot90(rgb, k=1), atol=8)  # counter-clockwise
    np.testing.assert_allclose(with_orientation(3), rgb[::-1, ::-1], atol=8)  # 180 degrees
    np.testing.assert_allclose(with_orientation(1), rgb, atol=8)  # as stored


# ---------------------------------------------------------------- arrays


def test_uint8_arrays():
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    out = load_image(rgb)
    np.testing.assert_array_equal(out, rgb)
    out[0, 0] = 0
    assert not np.shares_memory(out, rgb)
    np.testing.assert_array_equal(load_image(rgb[:, :, ::-1], array_order="BGR"), rgb)
    np.testing.assert_array_equal(load_image(rgb[:, ::2]), rgb[:, ::2])  # non-contiguous view
    grey = rgb[:, :, 0]
    np.testing.assert_array_equal(load_image(grey), np.dstack([grey] * 3))
    np.testing.assert_array_equal(load_image(grey[:, :, None]), np.dstack([grey] * 3))
    rgba = np.dstack([rgb, np.full((6, 7), 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), rgb)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 3), np.uint16), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_bad_arrays_are_refused(array, match):
    with pytest.raises(ImageError, match=match):
        load_image(array)


def test_unsupported_source_type():
    with pytest.raises(ImageError, match="int"):
        load_image(42)


# ---------------------------------------------------------------- files that are not images


def _one_line_naming(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message


def test_missing_file(tmp_path):
    path = tmp_path / "nobody.jpg"
    with pytest.raises(ImageError, match="no such file") as err:
        load_image(path)
    _one_line_naming(err, path)


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="directory") as err:
        load_image(tmp_path)
    _one_line_naming(err, tmp_path)


def test_not_a_regular_file():
    with pytest.raises(ImageError, match="not a regular file"):
        load_image("/dev/null")


def test_zero_byte_file(tmp_path):
    path = _write(tmp_path / "empty.jpg", b"")
    with pytest.raises(ImageError, match="empty") as err:
        load_image(path)
    _one_line_naming(err, path)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_refused(tmp_path, a_jpeg_photo):
    # Decision: a JPEG without its end-of-image marker is refused, whatever the OpenCV version does
    # (OpenCV 4 decodes it partially, grey below the cut, with only a warning).
    data = a_jpeg_photo.read_bytes()
    path = _write(tmp_path / "half.jpg", data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated JPEG") as err:
        load_image(path)
    _one_line_naming(err, path)
    with pytest.raises(ImageError, match="truncated JPEG"):
        load_image(data[:-2])  # only the end marker missing
    with pytest.raises(ImageError, match="truncated JPEG"):
        load_image(data[:40])  # cut inside the headers


def test_truncated_jpeg_with_an_embedded_thumbnail_is_refused(a_jpeg_photo):
    # Cameras store a complete thumbnail JPEG (with its own end marker FF D9) in an APPn segment before
    # the picture: it must neither hide the truncation nor lend its small size to the header check.
    thumbnail = _encode(".jpg", np.zeros((8, 8, 3), np.uint8))
    segment = b"\xff\xe2" + struct.pack(">H", len(thumbnail) + 2) + thumbnail
    data = a_jpeg_photo.read_bytes()
    whole = data[:2] + segment + data[2:]
    height, width = load_image(a_jpeg_photo).shape[:2]
    assert load_image(whole).shape == (height, width, 3)
    with pytest.raises(ImageError, match=f"{width}x{height}"):
        load_image(whole, max_pixels=100)
    with pytest.raises(ImageError, match="truncated JPEG"):
        load_image(whole[: len(whole) * 3 // 4])


def test_truncated_png_is_refused(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    data = _encode(".png", noise)
    path = _write(tmp_path / "half.png", data[: len(data) // 2])
    with pytest.raises(ImageError, match="not a readable image") as err:
        load_image(path)
    _one_line_naming(err, path)


def test_random_bytes_are_refused(tmp_path):
    noise = np.random.default_rng(2).bytes(5000)
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(_write(tmp_path / "noise.jpg", noise))
    with pytest.raises(ImageError):  # random bytes behind a JPEG signature
        load_image(b"\xff\xd8\xff" + noise)
    with pytest.raises(ImageError):  # and behind a PNG signature
        load_image(b"\x89PNG\r\n\x1a\n" + noise)


def test_text_file_named_jpg(tmp_path):
    path = _write(tmp_path / "notes.jpg", b"this is not a picture\n" * 20)
    with pytest.raises(ImageError, match="not a readable image") as err:
        load_image(path)
    _one_line_naming(err, path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path, a_jpeg_photo):
    path = _write(tmp_path / "secret.jpg", a_jpeg_photo.read_bytes())
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match="permission denied") as err:
            load_image(path)
        _one_line_naming(err, path)
    finally:
        path.chmod(0o600)


# ---------------------------------------------------------------- too many pixels


def test_png_header_claiming_a_huge_size_is_refused_before_decoding(tmp_path):
    # 100000 x 100000 (10**10 pixels, 30 GB as RGB) claimed by a file of a few dozen bytes. Were it
    # decoded, the message would be the decoder's failure, not the size.
    path = _write(tmp_path / "bomb.png", _png(100_000, 100_000, b"\x00" * 16, colour_type=2))
    assert path.stat().st_size < 100
    with pytest.raises(ImageError, match="100000x100000") as err:
        load_image(path)
    _one_line_naming(err, path)


def test_jpeg_header_size_is_checked(a_jpeg_photo):
    height, width = cv2.imread(str(a_jpeg_photo)).shape[:2]
    with pytest.raises(ImageError, match=f"{width}x{height}"):
        load_image(a_jpeg_photo, max_pixels=width * height - 1)
    assert load_image(a_jpeg_photo, max_pixels=width * height).shape == (height, width, 3)


def test_real_large_png_and_bmp_with_a_lowered_limit(tmp_path):
    big = np.zeros((2000, 3000), np.uint8)
    for ext in (".png", ".bmp"):
        path = _write(tmp_path / f"big{ext}", _encode(ext, big))
        with pytest.raises(ImageError, match="3000x2000 = 6000000 pixels") as err:
            load_image(path, max_pixels=5_000_000)
        _one_line_naming(err, path)
        assert load_image(path, max_pixels=6_000_000).shape == (2000, 3000, 3)


def test_array_too_many_pixels():
    with pytest.raises(ImageError, match="pixels"):
        load_image(np.zeros((10, 10, 3), np.uint8), max_pixels=99)


def test_programming_errors_are_value_errors():
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(b"x", max_pixels=0)
    with pytest.raises(ValueError, match="array_order"):
        load_image(np.zeros((2, 2, 3), np.uint8), array_order="rgb")


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
