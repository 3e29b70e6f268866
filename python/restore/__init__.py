"""Restore from Python: runs converted ``.rgraph`` image-restoration models on CPU.

A thin ctypes binding over libRestore (restore.h) with NumPy arrays; no compiled
extension. The library is found, in this order, at ``$RESTORE_LIBRARY``, next to this
package (``libRestore.so``), or in the repository's ``.build/release`` then
``.build/debug`` folders.

    import numpy as np, restore
    with restore.Model("denoiser.rgraph") as model:
        print(model.metadata)                     # {'restore.range': '0,1', ...}
        clean = model.restore(noisy_uint8_hwc)    # H×W×3 or H×W×4 uint8
        y = model.run(np.zeros((1, 3, 64, 64), np.float32))

    # Deep Image Prior: no trained weights; progress(iteration, total, loss) may cancel.
    denoised = restore.dip(noisy_uint8_hwc, iterations=300, progress=lambda i, n, loss: i < 100)

Errors are raised as subclasses of :class:`RestoreError` carrying the C status and the
library's message. A model may be used from several Python threads: each thread runs
its own session (the library releases the GIL while it works).
"""

import ctypes
import os
import pathlib
import threading
import weakref

import numpy as np

__all__ = [
    "Model", "Session", "RestoreError", "RestoreIOError", "FormatError", "UnsupportedError",
    "ShapeError", "ArgumentError", "RestoreMemoryError", "InternalError", "CancelledError", "version", "library_path",
    "dip",
]

MAX_RANK = 8  # RESTORE_MAX_RANK


class RestoreError(Exception):
    """A libRestore call failed: ``status`` is the restore_status code, ``message`` its text."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class RestoreIOError(RestoreError):
    """RESTORE_ERROR_IO: a file could not be opened or read."""
    status = 1


class FormatError(RestoreError):
    """RESTORE_ERROR_FORMAT: not a valid .rgraph model, or invalid restoration metadata."""
    status = 2


class UnsupportedError(RestoreError):
    """RESTORE_ERROR_UNSUPPORTED: valid, but not implemented by this library."""
    status = 3


class ShapeError(RestoreError):
    """RESTORE_ERROR_SHAPE: a tensor or image has a shape the model cannot take."""
    status = 4


class ArgumentError(RestoreError):
    """RESTORE_ERROR_ARGUMENT: a bad argument (size, type, name, closed handle)."""
    status = 5


class RestoreMemoryError(RestoreError):
    """RESTORE_ERROR_MEMORY: the sizes involved do not fit in memory."""
    status = 6


class InternalError(RestoreError):
    """RESTORE_ERROR_INTERNAL: a bug in Restore."""
    status = 7


class CancelledError(RestoreError):
    """RESTORE_CANCELLED: a progress callback asked to stop."""
    status = 8


_ERRORS = {cls.status: cls for cls in (RestoreIOError, FormatError, UnsupportedError, ShapeError,
                                       ArgumentError, RestoreMemoryError, InternalError, CancelledError)}

# typedef int (*restore_progress_fn)(void *user_data, int iteration, int total, float loss);
_PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float)

_DIP_TASKS = {"denoise": 0, "inpaint": 1, "sr4": 2}  # restore_dip_task
_DIP_NETS = {"unet": 0, "vit": 1}  # restore_dip_net


class _DipOptions(ctypes.Structure):
    """restore_dip_options."""
    _fields_ = [("task", ctypes.c_int), ("net", ctypes.c_int), ("iterations", ctypes.c_int),
                ("seed", ctypes.c_uint64), ("threads", ctypes.c_int),
                ("mask", ctypes.POINTER(ctypes.c_uint8)), ("mask_stride", ctypes.c_int)]


_DGP_TASKS = {"colorize": 0, "inpaint": 1, "sr4": 2}  # restore_dgp_task
_DGP_SCHEDULES = {"dgp": 0, "all": 1}  # restore_dgp_schedule


class _DgpOptions(ctypes.Structure):
    """restore_dgp_options."""
    _fields_ = [("task", ctypes.c_int), ("schedule", ctypes.c_int), ("class_index", ctypes.c_int),
                ("iterations", ctypes.c_int), ("candidates", ctypes.c_int), ("seed", ctypes.c_uint64),
                ("threads", ctypes.c_int), ("discriminator", ctypes.c_void_p),
                ("mask", ctypes.POINTER(ctypes.c_uint8)), ("mask_stride", ctypes.c_int)]


def _candidate_paths():
    here = pathlib.Path(__file__).resolve().parent
    repository = here.parent.parent
    for name in ("libRestore.so", "libRestore.dylib"):
        yield here / name
    for configuration in ("release", "debug"):
        for name in ("libRestore.so", "libRestore.dylib"):
            yield repository / ".build" / configuration / name


_library = None
_library_path = None
_library_lock = threading.Lock()


def library_path():
    """The path of the libRestore this module uses (loading it if needed)."""
    _lib()
    return _library_path


def _lib():
    global _library, _library_path
    if _library is not None:
        return _library
    with _library_lock:
        if _library is not None:
            return _library
        explicit = os.environ.get("RESTORE_LIBRARY")
        if explicit:
            path = pathlib.Path(explicit)
            if not path.is_file():
                raise RestoreIOError(f"RESTORE_LIBRARY={explicit}: no such file", 1)
        else:
            path = next((p for p in _candidate_paths() if p.is_file()), None)
            if path is None:
                raise RestoreIOError("libRestore not found: set RESTORE_LIBRARY, put libRestore.so next to "
                                     "the restore package, or run `swift build -c release --product Restore`", 1)
        library = ctypes.CDLL(str(path))
        _declare(library)
        _library_path = str(path)
        _library = library
        return library


def _declare(lib):
    c_model, c_session = ctypes.c_void_p, ctypes.c_void_p
    status, text = ctypes.c_int, ctypes.c_char_p
    i64p, f32p, u8p = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_uint8)
    signatures = {
        "restore_version": (text, []),
        "restore_last_error": (text, []),
        "restore_status_string": (text, [ctypes.c_int]),
        "restore_model_load": (status, [text, ctypes.POINTER(c_model)]),
        "restore_model_load_memory": (status, [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(c_model)]),
        "restore_model_free": (None, [c_model]),
        "restore_model_metadata": (text, [c_model, text]),
        "restore_model_metadata_count": (ctypes.c_int, [c_model]),
        "restore_model_metadata_key": (text, [c_model, ctypes.c_int]),
        "restore_model_input_count": (ctypes.c_int, [c_model]),
        "restore_model_input_name": (text, [c_model, ctypes.c_int]),
        "restore_model_output_count": (ctypes.c_int, [c_model]),
        "restore_model_output_name": (text, [c_model, ctypes.c_int]),
        "restore_output_size": (status, [c_model, ctypes.c_int, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]),
        "restore_session_create": (status, [c_model, ctypes.c_int, ctypes.POINTER(c_session)]),
        "restore_session_free": (None, [c_session]),
        "restore_session_set_input": (status, [c_session, text, f32p, i64p, ctypes.c_int]),
        "restore_run_f32": (status, [c_session, f32p, i64p, ctypes.c_int, f32p, ctypes.c_size_t,
                                     i64p, ctypes.POINTER(ctypes.c_int)]),
        "restore_image_u8": (status, [c_session, u8p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                      u8p, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
        "restore_image": (status, [c_session, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
        "restore_session_set_memory_limit": (status, [c_session, ctypes.c_size_t]),
        "restore_dip_options_init": (None, [ctypes.POINTER(_DipOptions)]),
        "restore_dip": (status, [ctypes.POINTER(_DipOptions), ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, _PROGRESS_FN, ctypes.c_void_p]),
        "restore_generator_info": (status, [c_model] + [ctypes.POINTER(ctypes.c_int)] * 4),
        "restore_generate": (status, [c_model, ctypes.c_int, ctypes.c_uint32, ctypes.c_float, ctypes.c_int, ctypes.c_int,
                                      u8p, ctypes.c_int]),
        "restore_dgp_options_init": (None, [ctypes.POINTER(_DgpOptions)]),
        "restore_dgp": (status, [c_model, ctypes.POINTER(_DgpOptions), ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, u8p, ctypes.c_int, _PROGRESS_FN,
                                 ctypes.c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _float32_tensor(array, name):
    """``array`` as a C-ordered float32 array; any other dtype is refused, never cast quietly."""
    data = np.asarray(array)
    if data.dtype != np.float32:
        raise ArgumentError(f"input '{name}' takes float32 data, given {data.dtype}; "
                            f"convert it first (in NumPy: x.astype(np.float32))", 5)
    return np.ascontiguousarray(data)


def _check(status):
    """Raises the exception for a failed call (the message is read on the calling thread)."""
    if status != 0:
        message = _lib().restore_last_error().decode("utf-8", "replace")
        raise _ERRORS.get(status, RestoreError)(message, status)


def _decode(pointer):
    return None if pointer is None else pointer.decode("utf-8", "replace")


def _int_argument(value, name):
    """A Python int that fits a C int, or ArgumentError (ctypes would silently wrap it)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(f"{name} must be an integer, got {type(value).__name__}", 5)
    if not -2**31 <= int(value) < 2**31:
        raise ArgumentError(f"{name} {value} does not fit in a C int", 5)
    return int(value)


def version():
    """libRestore's version string."""
    return _lib().restore_version().decode()


def _image_layout(image):
    """A C-ordered copy-if-needed of an H×W or H×W×C (C = 1…4) uint8/uint16 image, with its
    width, height, channels and bits."""
    if not isinstance(image, np.ndarray) or image.dtype not in (np.uint8, np.uint16):
        raise ArgumentError("the image must be a uint8 or uint16 numpy array (H×W or H×W×C, C = 1…4)", 5)
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ArgumentError(f"the image must be H×W or H×W×C with C = 1…4, got shape {image.shape}", 5)
    pixels = np.ascontiguousarray(image)
    height, width = (_int_argument(v, "image size") for v in pixels.shape[:2])
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return pixels, width, height, channels, 8 * pixels.itemsize


def dip(image, task="denoise", mask=None, net="unet", iterations=500, seed=0, threads=2, progress=None):
    """Deep Image Prior (Ulyanov et al., 2018), as ``rrun dip``: restores one image with no
    trained weights by fitting a randomly initialised generator to it.

    ``image`` is laid out as for :meth:`Model.restore`; the result has the same layout,
    4× wider and taller for ``task="sr4"``. ``task`` is "denoise", "inpaint" (``mask``:
    an H×W array, nonzero where the pixel is known) or "sr4"; ``net`` "unet" or "vit".
    ``progress(iteration, total, loss)`` is called after every iteration; returning False
    cancels (:class:`CancelledError`), and an exception it raises cancels and is raised
    again here."""
    if task not in _DIP_TASKS:
        raise ArgumentError(f"task must be one of {', '.join(_DIP_TASKS)}, got {task!r}", 5)
    if net not in _DIP_NETS:
        raise ArgumentError(f"net must be one of {', '.join(_DIP_NETS)}, got {net!r}", 5)
    pixels, width, height, channels, bits = _image_layout(image)
    lib = _lib()
    options = _DipOptions()
    lib.restore_dip_options_init(ctypes.byref(options))
    options.task, options.net = _DIP_TASKS[task], _DIP_NETS[net]
    options.iterations = _int_argument(iterations, "iterations")
    options.threads = _int_argument(threads, "threads")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ArgumentError(f"seed must be an integer in 0 … 2⁶⁴−1, got {seed!r}", 5)
    options.seed = int(seed)
    mask_bytes = None
    if mask is not None:
        mask_bytes = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
        if mask_bytes.shape != (height, width):
            raise ArgumentError(f"the mask has shape {mask_bytes.shape}, the image is {height}×{width}", 5)
        options.mask = mask_bytes.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        options.mask_stride = width
    factor = 4 if task == "sr4" else 1
    result = np.empty((height * factor, width * factor) + pixels.shape[2:], dtype=pixels.dtype)
    raised = []

    def report(_user_data, iteration, total, loss):
        try:
            return 0 if progress(iteration, total, loss) is not False else 1
        except BaseException as error:  # carried out of the C call and raised again below
            raised.append(error)
            return 1
    callback = _PROGRESS_FN(report) if progress is not None else _PROGRESS_FN()
    status = lib.restore_dip(ctypes.byref(options), pixels.ctypes.data, width, height, channels, bits,
                             _int_argument(width * channels * pixels.itemsize, "row bytes"), result.ctypes.data,
                             _int_argument(width * factor * channels * pixels.itemsize, "output row bytes"),
                             callback, None)
    if raised:
        raise raised[0]
    _check(status)
    return result


class Model:
    """A loaded ``.rgraph`` model. Immutable; usable from several threads at once."""

    def __init__(self, path):
        self._handle = None
        handle = ctypes.c_void_p()
        _check(_lib().restore_model_load(os.fsencode(path), ctypes.byref(handle)))
        self._adopt(handle)

    @classmethod
    def from_bytes(cls, data):
        """Loads a model from the bytes of an .rgraph file (copied by the library)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ArgumentError(f"from_bytes needs bytes, got {type(data).__name__}", 5)
        buffer = bytes(data)
        handle = ctypes.c_void_p()
        _check(_lib().restore_model_load_memory(buffer, len(buffer), ctypes.byref(handle)))
        model = cls.__new__(cls)
        model._handle = None
        model._adopt(handle)
        return model

    def _adopt(self, handle):
        self._handle = handle
        self._sessions = threading.local()
        # Weak, so a thread's session is freed when the thread ends (its locals go away).
        self._all_sessions = weakref.WeakSet()
        self._sessions_lock = threading.Lock()
        lib = _lib()
        self.metadata = {
            key: _decode(lib.restore_model_metadata(handle, key.encode()))
            for key in (_decode(lib.restore_model_metadata_key(handle, i))
                        for i in range(lib.restore_model_metadata_count(handle)))
        }
        self.inputs = [_decode(lib.restore_model_input_name(handle, i))
                       for i in range(lib.restore_model_input_count(handle))]
        self.outputs = [_decode(lib.restore_model_output_name(handle, i))
                        for i in range(lib.restore_model_output_count(handle))]

    @property
    def handle(self):
        """The C ``restore_model *``; ArgumentError once closed."""
        if self._handle is None:
            raise ArgumentError("the model is closed", 5)
        return self._handle

    def metadata_value(self, key):
        """The metadata value for ``key``, or None if absent."""
        return self.metadata.get(key)

    def output_size(self, width, height):
        """(width, height) of the image ``restore`` makes from a width×height one."""
        out_width, out_height = ctypes.c_int(), ctypes.c_int()
        _check(_lib().restore_output_size(self.handle, _int_argument(width, "width"), _int_argument(height, "height"),
                                          ctypes.byref(out_width), ctypes.byref(out_height)))
        return out_width.value, out_height.value

    def session(self, threads=0):
        """A new session of this model (one per thread; 0 threads = one per processor)."""
        return Session(self, threads)

    def _thread_session(self):
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = Session(self, 0)
            self._sessions.session = session
            with self._sessions_lock:
                self._all_sessions.add(session)
        return session

    def run(self, array, inputs=None):
        """Runs the model on ``array`` (float32 NCHW, its first input) and returns its first
        output. ``inputs`` maps other input names to arrays."""
        return self._thread_session().run(array, inputs)

    def restore(self, image, tile=0, overlap=-1, inputs=None, max_memory=None):
        """Restores an image with the model's restoration metadata, as ``rrun`` does: H×W
        (gray) or H×W×C with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), uint8 or
        uint16. Returns an image of the same layout and dtype, of ``output_size``.
        tile 0 and overlap -1 choose them as ``rrun`` does: tiles from the memory budget
        (``max_memory`` bytes; None is a quarter of physical memory, at most 1 GiB), the overlap from the
        model's metadata or receptive field."""
        return self._thread_session().restore(image, tile, overlap, inputs, max_memory)

    def generator_info(self):
        """For a class-conditional generator (a converted BigGAN): (width, height, classes,
        latent size). Raises UnsupportedError for another model."""
        values = [ctypes.c_int() for _ in range(4)]
        _check(_lib().restore_generator_info(self.handle, *(ctypes.byref(v) for v in values)))
        return tuple(v.value for v in values)

    def generate(self, class_index, seed=0, count=1, truncation=0.0, threads=2):
        """``count`` images of ``class_index`` as ``rrun generate`` makes them (z as
        pytorch-pretrained-biggan's truncated_noise_sample draws it for ``seed``); a
        count×H×W×3 uint8 array. ``truncation`` 0 is the one the model was converted at."""
        width, height, _, _ = self.generator_info()
        count = _int_argument(count, "count")
        if count < 1:
            raise ArgumentError(f"count must be at least 1, got {count}", 5)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
            raise ArgumentError(f"seed must be an integer in 0 … 2³²−1, got {seed!r}", 5)
        out = np.empty((count, height, width, 3), np.uint8)
        _check(_lib().restore_generate(self.handle, _int_argument(class_index, "class_index"), int(seed),
                                       float(truncation), count, _int_argument(threads, "threads"),
                                       out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), width * 3))
        return out

    def dgp(self, image, task="colorize", mask=None, class_index=None, iterations=500, schedule="dgp",
            candidates=100, seed=0, threads=2, discriminator=None, progress=None):
        """Deep Generative Prior with this generator, as ``rrun dgp``: restores ``image``
        (H×W or H×W×C, C = 1…4, uint8 or uint16). ``task`` is "colorize", "inpaint" (``mask``:
        an H×W array, nonzero where the pixel is known) or "sr4"; ``schedule`` "dgp"
        (progressive) or "all"; ``discriminator`` a :class:`Model` of its features or None.
        Returns side×side×3 uint8, side = min(H, W) (×4 for sr4).
        ``progress(iteration, total, loss)`` is called after every iteration; returning
        False cancels (:class:`CancelledError`), and an exception it raises cancels and is
        raised again here."""
        if task not in _DGP_TASKS:
            raise ArgumentError(f"task must be one of {', '.join(_DGP_TASKS)}, got {task!r}", 5)
        if schedule not in _DGP_SCHEDULES:
            raise ArgumentError(f"schedule must be one of {', '.join(_DGP_SCHEDULES)}, got {schedule!r}", 5)
        if not isinstance(image, np.ndarray) or image.dtype not in (np.uint8, np.uint16):
            raise ArgumentError("the image must be a uint8 or uint16 numpy array (H×W or H×W×C, C = 1…4)", 5)
        if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
            raise ArgumentError(f"the image must be H×W or H×W×C with C = 1…4, got shape {image.shape}", 5)
        pixels = np.ascontiguousarray(image)
        height, width = (_int_argument(v, "image size") for v in pixels.shape[:2])
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        lib = _lib()
        options = _DgpOptions()
        lib.restore_dgp_options_init(ctypes.byref(options))
        options.task, options.schedule = _DGP_TASKS[task], _DGP_SCHEDULES[schedule]
        options.class_index = -1 if class_index is None else _int_argument(class_index, "class_index")
        options.iterations = _int_argument(iterations, "iterations")
        options.candidates = _int_argument(candidates, "candidates")
        options.threads = _int_argument(threads, "threads")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise ArgumentError(f"seed must be an integer in 0 … 2⁶⁴−1, got {seed!r}", 5)
        options.seed = int(seed)
        if discriminator is not None:
            options.discriminator = discriminator.handle
        mask_bytes = None
        if mask is not None:
            mask_bytes = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
            if mask_bytes.shape != (height, width):
                raise ArgumentError(f"the mask has shape {mask_bytes.shape}, the image is {height}×{width}", 5)
            options.mask = mask_bytes.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
            options.mask_stride = width
        side = min(width, height) * (4 if task == "sr4" else 1)
        result = np.empty((side, side, 3), np.uint8)
        raised = []

        def report(_user_data, iteration, total, loss):
            try:
                return 0 if progress(iteration, total, loss) is not False else 1
            except BaseException as error:  # carried out of the C call and raised again below
                raised.append(error)
                return 1
        callback = _PROGRESS_FN(report) if progress is not None else _PROGRESS_FN()
        status = lib.restore_dgp(self.handle, ctypes.byref(options), pixels.ctypes.data, width, height, channels,
                                 8 * pixels.itemsize, _int_argument(width * channels * pixels.itemsize, "row bytes"),
                                 result.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), side * 3, callback, None)
        if raised:
            raise raised[0]
        _check(status)
        return result

    def close(self):
        """Frees the model and the sessions ``run``/``restore`` made. Idempotent."""
        if self._handle is None:
            return
        with self._sessions_lock:
            for session in list(self._all_sessions):
                session.close()
            self._all_sessions = weakref.WeakSet()
        _lib().restore_model_free(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None and _library is not None:
            self.close()

    def __repr__(self):
        state = "closed" if self._handle is None else f"inputs={self.inputs} outputs={self.outputs}"
        return f"<restore.Model {state}>"


class Session:
    """Runs a model; use one per thread (the library refuses concurrent use)."""

    def __init__(self, model, threads=0):
        self._handle = None
        handle = ctypes.c_void_p()
        _check(_lib().restore_session_create(model.handle, _int_argument(threads, "threads"), ctypes.byref(handle)))
        self._handle = handle
        self.model = model

    @property
    def handle(self):
        if self._handle is None:
            raise ArgumentError("the session is closed", 5)
        return self._handle

    def set_input(self, name, array):
        """Sets a model input other than the first/image one for later runs; None clears it."""
        lib = _lib()
        if array is None:
            _check(lib.restore_session_set_input(self.handle, name.encode(), None, None, 0))
            return
        data = _float32_tensor(array, name)
        if data.ndim < 1 or data.ndim > MAX_RANK:
            raise ArgumentError(f"input '{name}' has rank {data.ndim}, expected 1…{MAX_RANK}", 5)
        shape = np.array(data.shape, dtype=np.int64)
        _check(lib.restore_session_set_input(self.handle, name.encode(), data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                             shape.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), data.ndim))

    def _with_inputs(self, inputs, body):
        inputs = inputs or {}
        try:
            for name, value in inputs.items():
                self.set_input(name, value)
            return body()
        finally:
            for name in inputs:
                if self._handle is not None:
                    _lib().restore_session_set_input(self._handle, name.encode(), None, None, 0)

    def run(self, array, inputs=None):
        """Tensor mode: ``array`` (float32, C order) as the first input; returns the first output."""
        data = _float32_tensor(array, self.model.inputs[0] if self.model.inputs else "input")
        if data.ndim < 1 or data.ndim > MAX_RANK:
            raise ArgumentError(f"the input has rank {data.ndim}, expected 1…{MAX_RANK}", 5)
        shape = np.array(data.shape, dtype=np.int64)
        return self._with_inputs(inputs, lambda: self._run(data, shape))

    def _run(self, data, shape):
        lib = _lib()
        f32p, i64p = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int64)
        output_shape = (ctypes.c_int64 * MAX_RANK)()
        output_rank = ctypes.c_int(0)
        arguments = (self.handle, data.ctypes.data_as(f32p), shape.ctypes.data_as(i64p), data.ndim)
        # Capacity 0 asks for the output's shape (the plan is cached for the real run).
        status = lib.restore_run_f32(*arguments, None, 0, output_shape, ctypes.byref(output_rank))
        if status != 0 and not (status == ArgumentError.status and output_rank.value > 0):
            _check(status)
        result = np.empty(tuple(output_shape[:output_rank.value]), dtype=np.float32)
        _check(lib.restore_run_f32(*arguments, result.ctypes.data_as(f32p), result.size,
                                   output_shape, ctypes.byref(output_rank)))
        return result

    def restore(self, image, tile=0, overlap=-1, inputs=None, max_memory=None):
        """Image mode: see :meth:`Model.restore`."""
        pixels, width, height, channels, bits = _image_layout(image)
        tile, overlap = _int_argument(tile, "tile"), _int_argument(overlap, "overlap")
        if max_memory is not None and (not isinstance(max_memory, int) or max_memory <= 0):
            raise ArgumentError(f"max_memory must be a positive number of bytes, got {max_memory!r}", 5)
        out_width, out_height = self.model.output_size(width, height)
        result = np.empty((out_height, out_width) + pixels.shape[2:], dtype=pixels.dtype)

        def body():
            lib = _lib()
            _check(lib.restore_session_set_memory_limit(self.handle, max_memory or 0))
            _check(lib.restore_image(self.handle, pixels.ctypes.data, width, height, channels, bits,
                                     _int_argument(width * channels * pixels.itemsize, "row bytes"), result.ctypes.data,
                                     _int_argument(out_width * channels * pixels.itemsize, "output row bytes"),
                                     tile, overlap))
            return result
        return self._with_inputs(inputs, body)

    def close(self):
        """Frees the session. Idempotent."""
        if self._handle is not None:
            _lib().restore_session_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None and _library is not None:
            self.close()
