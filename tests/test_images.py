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
