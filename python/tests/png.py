"""A minimal PNG reader/writer for the tests: 8-bit RGB and RGBA, not interlaced.

Enough to feed rrun and the C example and to read what they write, without Pillow
(the CI environment has only numpy and pytest).
"""

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {3: 2, 4: 6}  # channels → PNG colour type


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write(path, image):
    """Writes an H×W×3 or H×W×4 uint8 array (filter 0 on every row)."""
    height, width, channels = image.shape
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(height))
    with open(path, "wb") as file:
        file.write(SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def read(path):
    """Reads an 8-bit RGB or RGBA, non-interlaced PNG into an H×W×C uint8 array."""
    with open(path, "rb") as file:
        data = file.read()
    assert data[:8] == SIGNATURE, f"{path}: not a PNG"
    position, idat = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color_type in (2, 6) and interlace == 0, f"{path}: unsupported PNG layout"
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    channels = 3 if color_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + previous) & 255
        else:  # Sub, Average and Paeth depend on the bytes just decoded: go byte by byte.
            row = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                up, up_left = previous[i], (previous[i - channels] if i >= channels else 0)
                predictor = {1: left, 3: (left + up) // 2, 4: _paeth(left, up, up_left)}[kind]
                row[i] = (line[i] + predictor) & 255
        rows[y] = row
        previous = row
    return rows.astype(np.uint8).reshape(height, width, channels)
