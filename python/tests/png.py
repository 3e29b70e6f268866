"""A minimal PNG reader/writer for the tests: 8- and 16-bit gray, gray+alpha, RGB and RGBA,
not interlaced.

Enough to feed rrun and the C example and to read what they write, without Pillow
(the CI environment has only numpy and pytest).
"""

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → PNG colour type


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write(path, image):
    """Writes an H×W (gray) or H×W×C uint8 or uint16 array (filter 0 on every row)."""
    if image.ndim == 2:
        image = image[..., None]
    height, width, channels = image.shape
    depth = 8 * image.itemsize
    header = struct.pack(">IIBBBBB", width, height, depth, COLOR_TYPES[channels], 0, 0, 0)
    stored = image.astype(">u2") if depth == 16 else image  # PNG is big-endian
    raw = b"".join(b"\x00" + stored[y].tobytes() for y in range(height))
    with open(path, "wb") as file:
        file.write(SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def read(path):
    """Reads an 8- or 16-bit, non-interlaced PNG into an H×W×C uint8 or uint16 array."""
    with open(path, "rb") as file:
        data = file.read()
    assert data[:8] == SIGNATURE, f"{path}: not a PNG"
    position, idat = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth in (8, 16) and color_type in (0, 2, 4, 6) and interlace == 0, f"{path}: unsupported PNG layout"
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    channels = {value: key for key, value in COLOR_TYPES.items()}[color_type]
    step = channels * depth // 8  # bytes a pixel: what the filters reach back
    stride = width * step
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
                left = row[i - step] if i >= step else 0
                up, up_left = previous[i], (previous[i - step] if i >= step else 0)
                predictor = {1: left, 3: (left + up) // 2, 4: _paeth(left, up, up_left)}[kind]
                row[i] = (line[i] + predictor) & 255
        rows[y] = row
        previous = row
    samples = rows.astype(np.uint8)
    if depth == 16:
        samples = samples.reshape(height, -1).view(">u2").astype(np.uint16)
    return samples.reshape(height, width, channels)
