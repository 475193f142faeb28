"""The local data cache and the downloads that fill it.

Downloads stream to a temporary file in the cache folder, are checked against
the md5 kept in the package, and only then are moved into place with an
atomic :func:`os.replace`: an interrupted or corrupted download never leaves
a file that could later pass for data. Files already in the cache are not
checksummed again (copies repackaged by a distribution can differ byte-wise
from the publisher's, e.g. in their gzip header); the readers validate their
content instead.
"""

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

DATA_HOME_ENV = "SKNETS_DATA"
MIRROR_ENV = "SKNETS_DATASETS_MIRROR"

_CHUNK_SIZE = 1 << 16
_TIMEOUT_SECONDS = 60

logger = logging.getLogger(__name__)


def get_data_home(data_home=None):
    """Return the folder where sknets caches the data sets it downloads.

    The folder is, in this order of precedence: ``data_home`` if given, the
    environment variable ``SKNETS_DATA`` if set, else ``~/sknets_data``. A
    leading ``~`` is expanded. The folder is not created here; the fetchers
    create it when they first download into it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder, which then wins over the environment variable.

    Returns
    -------
    data_home : pathlib.Path
        The cache folder. Each data set lives in a subfolder of it, e.g.
        ``mnist/`` or ``fashion-mnist/``.

    Examples
    --------
    >>> from sknets.datasets import get_data_home
    >>> get_data_home("/tmp/my_data").as_posix()
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or Path("~", "sknets_data")
    return Path(data_home).expanduser()


def resolve_base_url(base_url, folder, publisher_url):
    """The URL of the folder a data set's files are downloaded from.

    A mirror (``base_url``, else the environment variable
    ``SKNETS_DATASETS_MIRROR``) is laid out like the cache: the files of a
    data set are in its subfolder, e.g. ``<mirror>/mnist/``. Without a mirror
    the publisher's URL is used.
    """
    mirror = base_url or os.environ.get(MIRROR_ENV)
    if not mirror:
        return publisher_url
    return f"{mirror.rstrip('/')}/{folder}/"


def _urlopen(url, timeout):
    # Kept as a module-level name so tests can prove that no request is made.
    return urllib.request.urlopen(url, timeout=timeout)


class _ChecksumError(OSError):
    """A download completed but its content is not the expected file."""


def _stream_to(url, tmp_file, description):
    """Write the body of ``url`` into ``tmp_file``; return its md5."""
    md5 = hashlib.md5()
    with _urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = 0
        with tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            desc=description,
            leave=False,
            disable=None,
        ) as progress:
            while chunk := response.read(_CHUNK_SIZE):
                tmp_file.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if expected is not None and received != expected:
        raise http.client.IncompleteRead(b"", expected - received)
    return md5.hexdigest()


def _is_permanent(error):
    """Errors that a retry cannot fix: a wrong checksum, a 4xx answer."""
    if isinstance(error, _ChecksumError):
        return True
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500


def download_file(url, path, md5, *, n_retries=3, delay=1.0):
    """Download ``url`` to ``path``, verifying its md5, atomically.

    Parameters
    ----------
    url : str
        The file's URL.
    path : pathlib.Path
        Where the file goes; its folder is created if needed.
    md5 : str
        The expected md5 (hex digest) of the file.
    n_retries : int, default=3
        How many times a failed download (network error, server error,
        connection cut short) is tried again.
    delay : float, default=1.0
        Seconds to wait before the first retry; the wait doubles at each
        following retry.

    Returns
    -------
    path : pathlib.Path
        The downloaded file.

    Raises
    ------
    OSError
        If the download fails after all retries, or its md5 differs from
        ``md5``. Nothing is left at ``path`` (nor any temporary file) then.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(n_retries + 1):
        tmp = tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
        )
        try:
            with tmp:
                logger.info("Downloading %s to %s", url, path)
                actual_md5 = _stream_to(url, tmp, description=path.name)
            if actual_md5 != md5:
                raise _ChecksumError(
                    f"The file downloaded from {url} has md5 {actual_md5}, expected "
                    f"{md5}: it is not the publisher's file (corrupted in transit, "
                    "or a mirror serving something else). Nothing was saved."
                )
            os.replace(tmp.name, path)
            return path
        except (OSError, http.client.HTTPException) as error:
            last_error = error
            if _is_permanent(error) or attempt == n_retries:
                break
            logger.warning("Download of %s failed (%s); retrying", url, error)
            time.sleep(delay * 2**attempt)
        finally:
            if os.path.exists(tmp.name):
                os.remove(tmp.name)
    if isinstance(last_error, _ChecksumError):
        raise last_error
    raise OSError(
        f"Could not download {url} after {attempt + 1} attempt(s): {last_error!r}. "
        f"If this machine is offline, get the file elsewhere and put it in "
        f"{path.parent} by hand, or point base_url (or the environment "
        f"variable {MIRROR_ENV}) to a mirror."
    ) from last_error
