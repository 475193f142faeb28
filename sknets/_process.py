"""Process-wide settings sknets makes through C interfaces.

Only :mod:`ctypes` is imported here (``import sknets`` stays light).

MKL's strict reproducibility mode: ``import sknets`` sets
``MKL_CBWR=AUTO,STRICT`` when torch is not loaded yet; MKL reads the
variable once. Where torch is loaded already, MKL accepts the same mode
from ``mkl_cbwr_set`` until it first computes something
(:func:`set_strict_mode`).

glibc's allocator (:func:`keep_freed_memory`): a training step allocates
and frees tensors of a few megabytes each time (the gathered batch of
1,000 images is 3 MB). glibc serves blocks that large from memory mapped
for them, and returns freed memory to the system once more than a few
megabytes sit free at the top of its heap; its thresholds adapt as blocks
are freed, but in a fresh process a fit went on mapping and faulting in
new pages: 784-100-10 at batch 1,000 took 0.195 s and up to 62,000 page
faults a fit, against 0.157 s and almost none with blocks of up to 32 MB
taken from the heap and up to 64 MB kept free in it. At batch 100
(0.3 MB batches) glibc alone was as fast or faster (0.334 against 0.366 s,
0.3735 against 0.3715 s, 0.330 against 0.338 s in three sets of fresh
processes). So the first training whose batches hold at least
``LARGE_BATCH_BYTES`` of inputs sets those two thresholds (``mallopt``) on
glibc, unless the user has tuned the allocator (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_`` or a
``glibc.malloc`` tunable in ``GLIBC_TUNABLES``): the process then keeps up
to 64 MB of freed memory for reuse instead of returning it to the system.
"""

import ctypes
import os

# mkl_cbwr.h: the mode "AUTO" (the code path MKL would pick anyway) with the
# STRICT flag (the same bits whatever the number of threads).
_MKL_CBWR_AUTO = 2
_MKL_CBWR_STRICT = 0x10000
_MKL_CBWR_SUCCESS = 0

# The public name, and the name torch's statically linked MKL exports it under.
_SETTERS = ("mkl_cbwr_set", "MKL_CBWR_Set", "mkl_serv_cbwr_set")


def set_strict_mode(torch):
    """Turn MKL's strict mode on in torch's MKL; whether MKL accepted it.

    ``torch`` is the loaded torch module. False where torch carries no MKL
    (ARM builds), where its MKL has computed already (the mode can no
    longer change), or where the library cannot be opened: the caller then
    leaves everything as it was.

    Examples
    --------
    >>> import torch
    >>> from sknets._process import set_strict_mode
    >>> set_strict_mode(torch) in (True, False)
    True
    """
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        library = ctypes.CDLL(path)  # loaded already: the same handle
    except OSError:
        return False
    for name in _SETTERS:
        setter = getattr(library, name, None)
        if setter is not None:
            setter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
            return setter(_MKL_CBWR_AUTO | _MKL_CBWR_STRICT) == _MKL_CBWR_SUCCESS
    return False


# malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Batches of at least this many bytes of inputs set the thresholds (the
# engine's keep_memory_for): 335 images of 784 floats.
LARGE_BATCH_BYTES = 2 ** 20

MMAP_THRESHOLD = 32 * 2 ** 20  # glibc's own ceiling for its adaptive threshold
TRIM_THRESHOLD = 64 * 2 ** 20

_USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                "MALLOC_MMAP_MAX_")


def keep_freed_memory(environ=None, libc=None):
    """Set glibc's mmap and trim thresholds for a training process; whether they were set.

    False where the C library is not glibc (``os.confstr`` names no glibc
    version, or it has no ``mallopt``) or where ``environ`` (default:
    ``os.environ``) tunes the allocator already. ``libc``: the C library
    to call, by default the process's own.

    Examples
    --------
    >>> from sknets._process import keep_freed_memory
    >>> keep_freed_memory(environ={"MALLOC_TRIM_THRESHOLD_": "131072"})
    False
    """
    environ = os.environ if environ is None else environ
    if any(name in environ for name in _USER_TUNING) or \
            "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    if libc is None:
        try:
            if not os.confstr("CS_GNU_LIBC_VERSION"):
                return False
            libc = ctypes.CDLL(None)
        except (AttributeError, ValueError, OSError):  # not Linux, or no such name
            return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.restype, mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    # mallopt returns 1 on success; either call ends glibc's adapting of the
    # thresholds. 32 MB is the largest mmap threshold glibc accepts on 64 bits.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
