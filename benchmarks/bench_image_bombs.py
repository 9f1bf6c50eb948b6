"""Decompression bombs against ``load_image``: time and peak memory, one fresh process per file.

    .venv/bin/python benchmarks/bench_image_bombs.py [--opencv]

For each format facegate reads, a bomb: a small file whose header declares about 30000x30000 pixels (900
megapixels, 0.9 to 2.7 GB once decoded), or the most the format can declare (WebP's VP8 and VP8L headers: 14
bits a side). Most are real pictures OpenCV decodes to that size (marked "decodes"): a baseline JPEG whose 14
million blocks cost 2 bits each, a 1-bit PNG and a deflate TIFF of zeros, a 36-byte lossless WebP whose five
prefix codes each have a single symbol (0 bits a pixel), a BMP whose RLE8 data ends the bitmap at once (OpenCV
fills the rest), a 40x30 TIFF stored as one 16000x16000 tile. The others only have the header (a VP8 or VP8X
WebP, an OS/2 BMP, a PNM, which has no compression: its bomb is a cut-off file). Then, for comparison, a normal
640x480 photo in each format (a celebrity photo on a grey canvas).

Each file is loaded by a new ``python`` process that imports facegate, calls ``load_image`` once and reports
the call's wall time and its peak RSS (``ru_maxrss``, imports included: the first line gives the imports
alone). ``--opencv`` also runs OpenCV's own ``cv2.imdecode`` on each file the same way: what decoding first
and checking after costs (up to about 5 GB of memory). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent

# The child process: load one file and report. argv: mode ("load_image", "imdecode" or "imports"), path.
_CHILD = """
import json, resource, sys, time
import cv2, numpy as np
from edge.core.images import load_image
from edge.errors import ImageError
mode, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if mode == "load_image":
    try:
        image = load_image(path)
        outcome = f"loaded {image.shape[1]}x{image.shape[0]}"
    except ImageError as err:
        outcome = "refused: " + str(err).removeprefix(path).lstrip(": ")
elif mode == "imdecode":
    data = np.fromfile(path, np.uint8)
    flags = cv2.IMREAD_COLOR if data[:3].tobytes() == b"\\xff\\xd8\\xff" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags)
        outcome = "nothing" if image is None else f"decoded {image.shape[1]}x{image.shape[0]}"
    except cv2.error as err:
        outcome = "error: " + err.err
else:
    outcome = "imports only"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "outcome": outcome}))
"""


def measure(mode: str, path: Path) -> dict:
    """``{"seconds", "peak_mb", "outcome"}`` of a fresh process running ``mode`` on ``path``."""
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return {"seconds": float("nan"), "peak_mb": float("nan"), "outcome": f"process failed: {lines[-1]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- bombs


def jpeg_bomb(width: int, height: int) -> bytes:
    """A baseline grey JPEG whose Huffman tables hold one 1-bit code each: every 8x8 block is "DC 0, EOB"."""
    one_code = bytes([1] + [0] * 15) + b"\x00"  # 16 counts of code lengths (one code of length 1), its symbol
    blocks = -(-width // 8) * -(-height // 8)
    return (b"\xff\xd8"
            + b"\xff\xdb" + struct.pack(">HB", 67, 0) + bytes([1] * 64)
            + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
            + b"\xff\xc4" + struct.pack(">HB", 20, 0x00) + one_code
            + b"\xff\xc4" + struct.pack(">HB", 20, 0x10) + one_code
            + b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
            + bytes(-(-blocks * 2 // 8))
            + b"\xff\xd9")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit grey PNG of zeros (OpenCV decodes it to 8 bits a pixel)."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + -(-width // 8))  # filter byte 0, then the row
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _riff_webp(chunk: bytes, payload: bytes) -> bytes:
    body = chunk + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_vp8l_bomb(width: int, height: int) -> bytes:
    """A lossless WebP: no transform, no colour cache, five prefix codes of one symbol each (0 bits a pixel)."""
    fields = [(0x2F, 8), (width - 1, 14), (height - 1, 14), (0, 1), (0, 3), (0, 1), (0, 1), (0, 1)]
    fields += [(1, 1), (0, 1), (0, 1), (0, 1)] * 5  # simple code, 1 symbol, 1-bit symbol, symbol 0
    value, bits = 0, 0
    for field, size in fields:  # VP8L packs fields from the least significant bit up
        value |= field << bits
        bits += size
    payload = value.to_bytes(-(-bits // 8), "little").ljust(16, b"\x00")  # OpenCV reads a 32-byte header
    return _riff_webp(b"VP8L", payload)


def webp_vp8_bomb(width: int, height: int) -> bytes:
    """A lossy 16x16 WebP written by OpenCV, its key-frame header patched (the 14-bit sizes)."""
    ok, buf = cv2.imencode(".webp", np.zeros((16, 16, 3), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 50])
    data = buf.tobytes()
    return data[:26] + struct.pack("<HH", width, height) + data[30:]


def webp_vp8x_bomb(width: int, height: int) -> bytes:
    """A lossy 16x16 WebP with alpha (extended format) written by OpenCV, its VP8X canvas patched."""
    ok, buf = cv2.imencode(".webp", np.zeros((16, 16, 4), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 50])
    data = buf.tobytes()
    return data[:24] + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little") + data[30:]


def _tiff(tags: list[tuple[int, int, int]], pixels: bytes) -> bytes:
    """A little-endian TIFF of one page: ``pixels`` at byte 8, then the directory of ``(tag, type, value)``."""
    directory_at = 8 + len(pixels) + len(pixels) % 2
    entries = b"".join(struct.pack("<HHI", tag, kind, 1) + struct.pack("<" + ("H" if kind == 3 else "I"),
                                                                        value).ljust(4, b"\x00")
                       for tag, kind, value in sorted(tags))
    return (b"II*\x00" + struct.pack("<I", directory_at) + pixels + bytes(len(pixels) % 2)
            + struct.pack("<H", len(tags)) + entries + bytes(4))


def tiff_bomb(width: int, height: int) -> bytes:
    """An 8-bit grey TIFF of zeros in one deflate strip."""
    compressor = zlib.compressobj(9)
    row = bytes(width)
    strip = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return _tiff([(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1), (273, 4, 8),
                  (277, 3, 1), (278, 4, height), (279, 4, len(strip))], strip)


def tiff_tile_bomb(tile: int) -> bytes:
    """A 40x30 grey TIFF stored as one deflate ``tile`` x ``tile`` tile: OpenCV allocates the tile as RGBA."""
    pixels = zlib.compress(bytes(tile * tile), 9)
    return _tiff([(256, 4, 40), (257, 4, 30), (258, 3, 8), (259, 3, 8), (262, 3, 1), (277, 3, 1),
                  (322, 4, tile), (323, 4, tile), (324, 4, 8), (325, 4, len(pixels))], pixels)


def bmp_bomb(width: int, height: int) -> bytes:
    """An 8-bit RLE8 BMP (grey palette) whose data is the end-of-bitmap code: OpenCV fills all with colour 0."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, 2, 2835, 2835, 256, 0)
    palette, pixels = bytes(256 * 4), b"\x00\x01"
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels


def bmp_os2_bomb(width: int, height: int) -> bytes:
    """An OS/2 bitmap (12-byte core header, 16-bit sizes), 24 bits a pixel, 64 bytes of pixels."""
    core = struct.pack("<IHHHH", 12, width, height, 1, 24)
    return b"BM" + struct.pack("<IHHI", 26 + 64, 0, 0, 26) + core + bytes(64)


def pnm_bomb(width: int, height: int) -> bytes:
    """A binary PGM header with a comment, and 64 bytes of pixels."""
    return f"P5\n# bomb\n{width} {height}\n255\n".encode() + bytes(64)


# ---------------------------------------------------------------- normal photos


def photo_640x480() -> np.ndarray:
    """A celebrity val photo scaled to 360 px high on a grey 640x480 canvas (BGR), as the camera frames are."""
    photo = sorted((REPO / "weights" / "photos" / "celebrity" / "val").glob("*/*"))[0]
    image = cv2.imread(str(photo))
    image = cv2.resize(image, None, fx=360 / image.shape[0], fy=360 / image.shape[0])[:, :640]
    canvas = np.full((480, 640, 3), 90, np.uint8)
    y, x = (480 - image.shape[0]) // 2, (640 - image.shape[1]) // 2
    canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opencv", action="store_true",
                        help="also time cv2.imdecode itself on every file (up to about 5 GB of memory)")
    args = parser.parse_args()
    side = 30_000
    bombs = [  # (label, declared size, decodes as declared, data)
        ("JPEG baseline", (side, side), True, jpeg_bomb(side, side)),
        ("PNG 1-bit", (side, side), True, png_bomb(side, side)),
        ("WebP VP8L", (16_384, 16_384), True, webp_vp8l_bomb(16_384, 16_384)),
        ("WebP VP8", (16_383, 16_383), False, webp_vp8_bomb(16_383, 16_383)),
        ("WebP VP8X", (side, side), False, webp_vp8x_bomb(side, side)),
        ("TIFF deflate", (side, side), True, tiff_bomb(side, side)),
        ("TIFF 16000 tile", (40, 30), True, tiff_tile_bomb(16_000)),
        ("BMP RLE8", (side, side), True, bmp_bomb(side, side)),
        ("BMP OS/2", (65_535, 65_535), False, bmp_os2_bomb(65_535, 65_535)),
        ("PGM", (side, side), False, pnm_bomb(side, side)),
    ]
    frame = photo_640x480()
    photos = [("JPEG", ".jpg", ()), ("PNG", ".png", ()), ("WebP", ".webp", (cv2.IMWRITE_WEBP_QUALITY, 90)),
              ("TIFF", ".tiff", ()), ("BMP", ".bmp", ()), ("PPM", ".ppm", ())]
    files = [(f"bomb {label}", f"{w}x{h}", "decodes" if real else "header", data)
             for label, (w, h), real, data in bombs]
    for label, ext, params in photos:
        ok, buf = cv2.imencode(ext, frame, list(params))
        files.append((f"photo {label}", "640x480", "", buf.tobytes()))

    with tempfile.TemporaryDirectory() as tmp:
        imports = measure("imports", Path(tmp))
        print("load_image on decompression bombs and normal photos: one fresh process per file, default limit "
              "(50 megapixels)")
        print(f"peak RSS = ru_maxrss of that process, imports included (Python + numpy + OpenCV + facegate alone: "
              f"{imports['peak_mb']:.0f} MB); ms = the call alone")
        header = f"{'file':22s} {'declared':>12s} {'':7s} {'bytes':>9s} | {'load_image ms':>13s} {'peak MB':>7s}"
        if args.opencv:
            header += f" | {'imdecode ms':>11s} {'peak MB':>7s} {'imdecode gives':24s}"
        print(header + " | load_image gives")
        for n, (label, declared, note, data) in enumerate(files):
            path = Path(tmp) / f"{n:02d}.img"  # the name says nothing: the content decides
            path.write_bytes(data)
            loaded = measure("load_image", path)
            line = (f"{label:22s} {declared:>12s} {note:7s} {len(data):9d} | {1000 * loaded['seconds']:13.1f} "
                    f"{loaded['peak_mb']:7.0f}")
            if args.opencv:
                decoded = measure("imdecode", path)
                line += (f" | {1000 * decoded['seconds']:11.0f} {decoded['peak_mb']:7.0f} "
                         f"{decoded['outcome'][:24]:24s}")
            print(f"{line} | {loaded['outcome']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
