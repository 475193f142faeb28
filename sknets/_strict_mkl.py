"""MKL's strict reproducibility mode, set through its C interface.

``import sknets`` sets ``MKL_CBWR=AUTO,STRICT`` when torch is not loaded yet;
MKL reads the variable once. Where torch is loaded already, MKL accepts the
same mode from ``mkl_cbwr_set`` until it first computes something. This
module makes that call without importing anything but :mod:`ctypes`
(``import sknets`` stays light).
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
    >>> from sknets._strict_mkl import set_strict_mode
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
