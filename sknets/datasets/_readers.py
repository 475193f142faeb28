"""Readers for the IDX (MNIST) and ``.npz`` (Kuzushiji) image/label files.

Both readers return the arrays exactly as stored (``uint8``) after checking
that the file is what it claims to be, so a truncated download or a foreign
file fails here with the file's name instead of producing wrong data later.
"""

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte) and
# the number of dimensions.
IDX_LABELS_MAGIC = 0x00000801
IDX_IMAGES_MAGIC = 0x00000803

_GZIP_SIGNATURE = b"\x1f\x8b"


def _corrupt(path, problem):
    return ValueError(
        f"{path} is not a valid data file: {problem}. Delete it so that it is "
        "downloaded again, or replace it with the publisher's file."
    )


def _read_bytes(path):
    """The file's content, decompressed if it is gzip (whatever its name)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, f"its gzip stream is damaged or truncated ({exc})") from exc


def read_idx(path, ndim):
    """Read an IDX file of unsigned bytes (plain or gzip-compressed).

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``train-images-idx3-ubyte.gz``.
    ndim : {1, 3}
        The number of dimensions expected: 1 for a label file (magic number
        ``0x00000801``), 3 for an image file (``0x00000803``).

    Returns
    -------
    array : ndarray of uint8
        A read-only array of shape ``(n,)`` or ``(n, rows, cols)``.

    Raises
    ------
    ValueError
        If the file is not an IDX file of unsigned bytes with ``ndim``
        dimensions, or holds fewer or more bytes than its header announces.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from sknets.datasets._readers import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path, ndim=1)
    array([7, 2, 1], dtype=uint8)
    """
    expected_magic = {1: IDX_LABELS_MAGIC, 3: IDX_IMAGES_MAGIC}[ndim]
    content = _read_bytes(path)
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise _corrupt(
            path, f"it has {len(content)} bytes, fewer than an IDX header ({header_size})"
        )
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        kind = "label" if ndim == 1 else "image"
        raise _corrupt(
            path,
            f"its magic number is 0x{magic:08x}, not 0x{expected_magic:08x} "
            f"(IDX {kind} file of unsigned bytes)",
        )
    shape = tuple(int(d) for d in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected_size = header_size + int(np.prod(shape))
    if len(content) != expected_size:
        state = "truncated" if len(content) < expected_size else "too long"
        raise _corrupt(
            path,
            f"it is {state}: its header announces shape {shape}, i.e. "
            f"{expected_size} bytes, but it holds {len(content)}",
        )
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(shape)


def read_npz(path, ndim):
    """Read the single ``uint8`` array of a publisher's ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``kmnist-train-imgs.npz``; its array is ``arr_0``.
    ndim : {1, 3}
        The number of dimensions expected: 1 for labels, 3 for images.

    Returns
    -------
    array : ndarray of uint8
        An array of shape ``(n,)`` or ``(n, rows, cols)``.

    Raises
    ------
    ValueError
        If the file is not a readable ``.npz`` archive holding ``arr_0`` as a
        ``uint8`` array with ``ndim`` dimensions.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sknets.datasets._readers import read_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.npz")
    >>> np.savez_compressed(path, np.array([3, 1], dtype=np.uint8))
    >>> read_npz(path, ndim=1)
    array([3, 1], dtype=uint8)
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not a zip archive")
        with archive:
            array = archive["arr_0"] if "arr_0" in archive.files else None
            names = archive.files
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise _corrupt(path, f"it cannot be read as an .npz archive ({exc})") from exc
    if array is None:
        raise _corrupt(path, f"it holds the arrays {names}, not 'arr_0'")
    if array.dtype != np.uint8 or array.ndim != ndim:
        raise _corrupt(
            path,
            f"its array has dtype {array.dtype} and {array.ndim} dimensions, "
            f"expected uint8 with {ndim}",
        )
    return array


def read_array(path, ndim):
    """Read an IDX or ``.npz`` file, chosen by the file name's extension."""
    if str(path).endswith(".npz"):
        return read_npz(path, ndim)
    return read_idx(path, ndim)
