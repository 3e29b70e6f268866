"""PNG files read and written exactly as ``rrun`` reads and writes them.

Through libRestoreImageIO, the PNG codec ``rrun`` is built with (the CImageIO target over
libpng), so an image restored from Python and saved here has the same bytes as ``rrun``'s
output for it. The library is found, in this order, at ``$RESTORE_IMAGEIO_LIBRARY``, next
to this package, or in the repository's ``.build/release`` then ``.build/debug`` folders
(``swift build -c release --product RestoreImageIO``).

    from restore import images
    pixels = images.read_png("in.png")     # H×W×C uint8 or uint16, C = 1…4
    images.write_png("out.png", pixels)    # atomically: a temporary file renamed into place
"""

import ctypes
import os
import pathlib
import tempfile
import threading

import numpy as np

from . import RestoreError

__all__ = ["PNGError", "decode_png", "encode_png", "read_png", "write_png", "library_path"]

_NAMES = ("libRestoreImageIO.so", "libRestoreImageIO.dylib")
# cimageio_status values (Sources/CImageIO/include/cimageio.h), in words.
_STATUS = {1: "not a PNG file", 2: "truncated PNG", 3: "PNG CRC error", 4: "corrupt PNG",
           5: "PNG too large", 6: "unsupported PNG", 7: "out of memory"}


class PNGError(RestoreError):
    """A PNG could not be decoded or encoded; ``status`` is the cimageio_status."""


class _Image(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32), ("bit_depth", ctypes.c_int),
                ("channels", ctypes.c_int), ("samples", ctypes.c_void_p)]


_library = None
_library_path = None
# Read once at import (os.umask can only be read by setting it, which races with threads).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_lock = threading.Lock()


def _candidates():
    here = pathlib.Path(__file__).resolve().parent
    for name in _NAMES:
        yield here / name
    for configuration in ("release", "debug"):
        for name in _NAMES:
            yield here.parent.parent / ".build" / configuration / name


def library_path():
    """The path of the libRestoreImageIO this module uses (loading it if needed)."""
    _lib()
    return _library_path


def _lib():
    global _library, _library_path
    with _lock:
        if _library is not None:
            return _library
        explicit = os.environ.get("RESTORE_IMAGEIO_LIBRARY")
        path = pathlib.Path(explicit) if explicit else next((p for p in _candidates() if p.is_file()), None)
        if path is None or not path.is_file():
            raise PNGError(f"libRestoreImageIO not found{f' at {explicit}' if explicit else ''}: set "
                           "RESTORE_IMAGEIO_LIBRARY, install a wheel that carries it (scripts/build-wheel.sh), "
                           "or run `swift build -c release --product RestoreImageIO`")
        library = ctypes.CDLL(str(path))
        message = ctypes.c_char_p
        library.cimageio_png_decode.restype = ctypes.c_int
        library.cimageio_png_decode.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_Image),
                                                ctypes.c_void_p, ctypes.c_size_t, message, ctypes.c_size_t]
        library.cimageio_png_encode.restype = ctypes.c_int
        library.cimageio_png_encode.argtypes = [ctypes.POINTER(_Image), ctypes.POINTER(ctypes.c_void_p),
                                                ctypes.POINTER(ctypes.c_size_t), message, ctypes.c_size_t]
        library.cimageio_free.restype = None
        library.cimageio_free.argtypes = [ctypes.c_void_p]
        _library, _library_path = library, str(path)
        return library


def _fail(status, message, source):
    detail = message.value.decode("utf-8", "replace")
    text = f"{source}: {_STATUS.get(status, f'cimageio status {status}')}" + (f" ({detail})" if detail else "")
    error = PNGError(text)
    error.status = status
    return error


def decode_png(data, source="<memory>"):
    """Decodes PNG bytes into an H×W×C array: uint8 or uint16 (native order), C = 1 gray,
    2 gray+alpha, 3 RGB, 4 RGBA; palettes and low bit depths are expanded as rrun does.
    ``source`` names the data in errors."""
    lib = _lib()
    data = bytes(data)
    message = ctypes.create_string_buffer(256)
    header = _Image()
    status = lib.cimageio_png_decode(data, len(data), ctypes.byref(header), None, 0, message, len(message))
    if status != 0:
        raise _fail(status, message, source)
    dtype = np.uint8 if header.bit_depth == 8 else np.uint16
    pixels = np.empty((header.height, header.width, header.channels), dtype=dtype)
    status = lib.cimageio_png_decode(data, len(data), ctypes.byref(header), pixels.ctypes.data, pixels.nbytes,
                                     message, len(message))
    if status != 0:
        raise _fail(status, message, source)
    return pixels


def encode_png(pixels, name="<memory>"):
    """Encodes an H×W×C (or H×W gray) uint8/uint16 array as PNG bytes, as rrun writes them."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise PNGError(f"{name}: expected an H×W×C uint8 or uint16 array with 1…4 channels, "
                       f"got {pixels.dtype} {pixels.shape}")
    pixels = np.ascontiguousarray(pixels)
    image = _Image(pixels.shape[1], pixels.shape[0], 8 * pixels.itemsize, pixels.shape[2], pixels.ctypes.data)
    encoded, size = ctypes.c_void_p(), ctypes.c_size_t()
    message = ctypes.create_string_buffer(256)
    lib = _lib()
    status = lib.cimageio_png_encode(ctypes.byref(image), ctypes.byref(encoded), ctypes.byref(size),
                                     message, len(message))
    try:
        if status != 0:
            raise _fail(status, message, name)
        return ctypes.string_at(encoded, size.value)
    finally:
        lib.cimageio_free(encoded)


def read_png(path):
    """Reads the PNG file at ``path`` (see :func:`decode_png`)."""
    with open(path, "rb") as file:
        return decode_png(file.read(), os.fspath(path))


def write_atomically(path, data):
    """Writes ``data`` to ``path`` through a temporary file beside it, renamed into place
    only when complete (as rrun does), so no half-written file ever has the real name."""
    path = pathlib.Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes it 0600; rrun leaves it to the umask
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_png(path, pixels):
    """Writes ``pixels`` (see :func:`encode_png`) to ``path`` atomically."""
    write_atomically(path, encode_png(pixels, os.fspath(path)))
