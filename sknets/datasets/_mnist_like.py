"""MNIST, Fashion-MNIST, Kuzushiji-MNIST and Kuzushiji-49.

The four data sets share one shape (28x28 grey images, one integer label
each), so one implementation serves them all; what differs lives in the
table ``SPECS``, keyed by the names of :data:`sknets.datasets.DATASETS`:
the publisher's URL and file names, the md5 of each file, the class names
and the description.
"""

import csv
import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._fetch import download_file, get_data_home, resolve_base_url
from ._readers import read_array

IMAGE_SHAPE = (28, 28)
SUBSETS = ("train", "test", "all")

# Written as "index,codepoint,char" CSV, these are byte for byte the publisher's
# kmnist_classmap.csv and k49_classmap.csv (md5 in the table; see the tests).
KMNIST_CHARS = ("お", "き", "す", "つ", "な", "は", "ま", "や", "れ", "を")
K49_CHARS = tuple(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわゐゑをんゝ"
)

# (images, labels) file names of each subset, as the publishers name them.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _npz_files(prefix):
    return {
        subset: (f"{prefix}-{subset}-imgs.npz", f"{prefix}-{subset}-labels.npz")
        for subset in ("train", "test")
    }


_KUZUSHIJI_SOURCE = """\
Source: Center for Open Data in the Humanities (CODH), {url}
License: CC BY-SA 4.0. "KMNIST Dataset" (created by CODH), adapted from
"Kuzushiji Dataset" (created by NIJL and others), doi:10.20676/00000341.
Reference: T. Clanuwat et al., "Deep Learning for Classical Japanese
Literature", arXiv:1812.01718, 2018."""

SPECS = {
    "mnist": {
        "title": "MNIST handwritten digits",
        "folder": "mnist",
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "files": IDX_FILES,
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "target_names": tuple("0123456789"),
        "classmap": None,
        "descr": """\
Handwritten digits 0-9 (Y. LeCun, C. Cortes, C. J. C. Burges), 28x28 grey
images, centred by centre of mass. 60,000 training and 10,000 test images;
classes are nearly balanced (5,421 to 6,742 training images per digit).
Source: {url}""",
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST clothing images",
        "folder": "fashion-mnist",
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "files": IDX_FILES,
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "target_names": (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        "classmap": None,
        "descr": """\
Zalando article images (H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747),
a drop-in replacement for MNIST that is harder to classify: 28x28 grey
images of 10 kinds of clothing, 6,000 training and 1,000 test images each.
License: MIT. Source: {url}""",
    },
    "kmnist": {
        "title": "Kuzushiji-MNIST (cursive Japanese hiragana)",
        "folder": "kmnist",
        "url": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "files": _npz_files("kmnist"),
        "md5": {
            "kmnist-train-imgs.npz": "a183fbc01ed9a345513b145673d3d0bb",
            "kmnist-train-labels.npz": "b0e1d240e8afec72b50437fc3bc5908a",
            "kmnist-test-imgs.npz": "dace6de62ca8b90843cc45366337d02e",
            "kmnist-test-labels.npz": "3ae489a79983d0fe386152684e3b5412",
            "kmnist_classmap.csv": "899202f6e8dc29a321ac210a03d0f2f1",
        },
        "target_names": KMNIST_CHARS,
        "classmap": "kmnist_classmap.csv",
        "descr": """\
Cursive (kuzushiji) hiragana from classical Japanese books, one character
for each of the 10 rows of the hiragana table: 28x28 grey images, 6,000
training and 1,000 test images per class.
"""
        + _KUZUSHIJI_SOURCE,
    },
    "k49": {
        "title": "Kuzushiji-49 (cursive Japanese hiragana, 49 classes)",
        "folder": "k49",
        "url": "http://codh.rois.ac.jp/kmnist/dataset/k49/",
        "files": _npz_files("k49"),
        "md5": {
            "k49-train-imgs.npz": "7ac088b20481cf51dcd01ceaab89d821",
            "k49-train-labels.npz": "44a8e1b893f81e63ff38d73cad420f7a",
            "k49-test-imgs.npz": "d352e201d846ce6b94f42c990966f374",
            "k49-test-labels.npz": "4da6f7a62e67a832d5eb1bd85c5ee448",
            "k49_classmap.csv": "f7d0d0391f68bdf0fe4cf160ceb85753",
        },
        "target_names": K49_CHARS,
        "classmap": "k49_classmap.csv",
        "descr": """\
Cursive (kuzushiji) hiragana from classical Japanese books: the 48 hiragana
(including the obsolete ゐ and ゑ) and the iteration mark ゝ, 28x28 grey
images, 232,365 training and 38,547 test images. The classes are strongly
IMBALANCED: train with class_weight="balanced" and evaluate with
balanced_accuracy_score, as the publishers recommend.
"""
        + _KUZUSHIJI_SOURCE,
    },
}

_SHARED_DOC = """\
    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which part to load: the publisher's training or test set, or both,
        training images first.
    data_home : str or path-like, default=None
        The cache folder (see :func:`get_data_home`): the files are looked
        for, and downloaded to, its subfolder named above. By default
        the environment variable ``SKNETS_DATA``, else ``~/sknets_data``.
    download_if_missing : bool, default=True
        Whether to download missing files. If False and a file is missing,
        a :class:`FileNotFoundError` is raised and no request is made.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame with one column per pixel
        (``pixel_0`` .. ``pixel_783``), ``target`` a Series, and ``frame``
        both together.
    base_url : str, default=None
        The root URL of a mirror laid out like the cache (the files at
        ``<base_url>/<subfolder>/<file name>``). By default the environment
        variable ``SKNETS_DATASETS_MIRROR``, else the publisher's site
        named above.
    n_retries : int, default=3
        How many times a failed download is tried again.
    delay : float, default=1.0
        Seconds before the first retry; the wait doubles at each retry.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 784), float32, or DataFrame
            The images, flattened row by row, with pixels scaled to [0, 1].
        images : ndarray of shape (n_samples, 28, 28), float32
            The same pixels as 2-D images (a view of the same memory when
            ``as_frame=False``).
        target : ndarray of shape (n_samples,), int64, or Series
            The class index of each image.
        target_names : ndarray of str of shape (n_classes,)
            The class names, ``target_names[target]`` naming each image.
        feature_names : list of str
            ``pixel_0`` .. ``pixel_783``.
        frame : DataFrame or None
            ``data`` and ``target`` together if ``as_frame=True``.
        DESCR : str
            A description of the data set, its source and licence.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrame and Series) described above.

    Raises
    ------
    FileNotFoundError
        If a file is missing and ``download_if_missing=False``.
    OSError
        If a download fails after all retries, or its md5 is not the
        publisher's.
    ValueError
        If a file in the cache is truncated or is not the expected file.

    Notes
    -----
    Files already in the cache are not checksummed again: a copy from
    another source (such as a Linux distribution's package) may differ
    byte-wise from the publisher's file yet hold the same data. Their content
    is validated instead (magic numbers, shapes, counts)."""


def _shared_doc(fetcher):
    """Insert the parameters and returns every fetcher shares into its docstring."""
    if fetcher.__doc__:  # None under python -OO
        fetcher.__doc__ = fetcher.__doc__.replace("    {shared}", _SHARED_DOC)
    return fetcher


def _check_params(subset, n_retries, delay):
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}.")
    if not isinstance(n_retries, numbers.Integral) or n_retries < 0:
        raise ValueError(f"n_retries must be an integer >= 0, got {n_retries!r}.")
    if not isinstance(delay, numbers.Real) or delay < 0:
        raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}.")


def _ensure_files(name, folder, file_names, *, download_if_missing, base_url, n_retries, delay):
    """Download the files missing from ``folder``, or say which are."""
    spec = SPECS[name]
    missing = [f for f in file_names if not (folder / f).is_file()]
    if missing and not download_if_missing:
        raise FileNotFoundError(
            f"{spec['title']}: {', '.join(missing)} not found in {folder}. Pass "
            "download_if_missing=True to download them, or, on a machine without "
            f"internet access, copy the publisher's files ({spec['url']}) there."
        )
    url = resolve_base_url(base_url, spec["folder"], spec["url"])
    for file_name in missing:
        download_file(
            url + file_name,
            folder / file_name,
            spec["md5"][file_name],
            n_retries=n_retries,
            delay=delay,
        )


def _read_pair(folder, images_name, labels_name, n_classes):
    """The images and labels of one subset, checked against each other."""
    images = read_array(folder / images_name, ndim=3)
    labels = read_array(folder / labels_name, ndim=1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{folder / images_name} holds images of shape {images.shape[1:]}, "
            f"expected {IMAGE_SHAPE}: it is not a file of this data set."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{folder / images_name} holds {len(images)} images but "
            f"{folder / labels_name} holds {len(labels)} labels: one of the two "
            "is from another data set or release. Replace both."
        )
    if len(labels) and labels.max() >= n_classes:
        raise ValueError(
            f"{folder / labels_name} holds the label {labels.max()}, but the data "
            f"set has {n_classes} classes: it is not a file of this data set."
        )
    return images, labels


def _read_classmap(path, n_classes):
    """The characters of a publisher's class map (index,codepoint,char)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "char" not in rows[0]:
        raise ValueError(f"{path} is not a class map: it has no 'char' column.")
    if "index" in rows[0]:
        rows.sort(key=lambda row: int(row["index"]))
    if len(rows) != n_classes:
        raise ValueError(
            f"{path} maps {len(rows)} classes, expected {n_classes}: it belongs to "
            "another data set. Delete it to use the built-in class names."
        )
    return [row["char"] for row in rows]


def _target_names(spec, folder):
    default = spec["target_names"]
    classmap = spec["classmap"] and folder / spec["classmap"]
    if classmap and classmap.is_file():
        return np.array(_read_classmap(classmap, len(default)))
    return np.array(default)


def fetch_mnist_like(
    name,
    *,
    subset,
    data_home,
    download_if_missing,
    return_X_y,
    as_frame,
    base_url,
    n_retries,
    delay,
):
    """Load the data set ``name`` (a key of ``SPECS``); see :func:`fetch_mnist`."""
    _check_params(subset, n_retries, delay)
    spec = SPECS[name]
    folder = get_data_home(data_home) / spec["folder"]
    subsets = ("train", "test") if subset == "all" else (subset,)
    _ensure_files(
        name,
        folder,
        [f for s in subsets for f in spec["files"][s]],
        download_if_missing=download_if_missing,
        base_url=base_url,
        n_retries=n_retries,
        delay=delay,
    )
    n_classes = len(spec["target_names"])
    pairs = [_read_pair(folder, *spec["files"][s], n_classes) for s in subsets]
    pixels = np.concatenate([images for images, _ in pairs])
    target = np.concatenate([labels for _, labels in pairs]).astype(np.int64)

    images = np.divide(pixels, np.float32(255), dtype=np.float32)
    data = images.reshape(len(images), -1)
    feature_names = [f"pixel_{i}" for i in range(data.shape[1])]
    frame = None
    if as_frame:
        data = pd.DataFrame(data, columns=feature_names, copy=False)
        target = pd.Series(target, name="target")
        frame = pd.concat([data, target], axis=1)
    if return_X_y:
        return data, target
    descr = f"{spec['title']}\n{'=' * len(spec['title'])}\n\n"
    descr += spec["descr"].format(url=spec["url"])
    return Bunch(
        data=data,
        images=images,
        target=target,
        target_names=_target_names(spec, folder),
        feature_names=feature_names,
        frame=frame,
        DESCR=descr,
    )


@_shared_doc
def fetch_mnist(
    *,
    subset="train",
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
    base_url=None,
    n_retries=3,
    delay=1.0,
):
    """Load the MNIST handwritten digits (classification, 10 classes).

    =================   ==========================
    Classes             10 (digits "0" .. "9")
    Samples             60,000 train + 10,000 test
    Dimensionality      784 (28x28 pixels)
    Features            float32, in [0, 1]
    =================   ==========================

    The files are downloaded once, from the publisher's copy at
    https://ossci-datasets.s3.amazonaws.com/mnist/, into
    ``data_home/mnist/``.

    {shared}

    See Also
    --------
    fetch_fashion_mnist : A harder drop-in replacement for MNIST.
    sknets.model_selection.train_val_test_split : Carve out a validation set.

    Examples
    --------
    >>> from sknets.datasets import fetch_mnist
    >>> mnist = fetch_mnist(subset="test")  # doctest: +SKIP
    >>> mnist.data.shape, mnist.target[:5]  # doctest: +SKIP
    ((10000, 784), array([7, 2, 1, 0, 4]))
    """
    return fetch_mnist_like("mnist", **locals())


@_shared_doc
def fetch_fashion_mnist(
    *,
    subset="train",
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
    base_url=None,
    n_retries=3,
    delay=1.0,
):
    """Load Fashion-MNIST, Zalando's clothing images (classification, 10 classes).

    =================   ==========================
    Classes             10 ("T-shirt/top" .. "Ankle boot")
    Samples             60,000 train + 10,000 test, balanced
    Dimensionality      784 (28x28 pixels)
    Features            float32, in [0, 1]
    =================   ==========================

    The files are downloaded once, from the publisher's site
    http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/, into
    ``data_home/fashion-mnist/``.

    {shared}

    See Also
    --------
    fetch_mnist : The handwritten digits this data set replaces.

    Examples
    --------
    >>> from sknets.datasets import fetch_fashion_mnist
    >>> X, y = fetch_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((10000, 784), dtype('float32'))
    """
    return fetch_mnist_like("fashion-mnist", **locals())


@_shared_doc
def fetch_kmnist(
    *,
    subset="train",
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
    base_url=None,
    n_retries=3,
    delay=1.0,
):
    """Load Kuzushiji-MNIST, cursive Japanese hiragana (classification, 10 classes).

    =================   ==========================
    Classes             10 (お き す つ な は ま や れ を)
    Samples             60,000 train + 10,000 test, balanced
    Dimensionality      784 (28x28 pixels)
    Features            float32, in [0, 1]
    =================   ==========================

    The NumPy-format files (``kmnist-train-imgs.npz`` ...) are downloaded
    once, from http://codh.rois.ac.jp/kmnist/dataset/kmnist/, into
    ``data_home/kmnist/``. ``target_names`` are the characters of
    the publisher's class map, which is built in; a ``kmnist_classmap.csv``
    placed in that folder is read instead.

    {shared}

    See Also
    --------
    fetch_kuzushiji49 : All 49 hiragana classes.

    Examples
    --------
    >>> from sknets.datasets import fetch_kmnist
    >>> kmnist = fetch_kmnist(subset="test")  # doctest: +SKIP
    >>> kmnist.target_names[kmnist.target[:3]]  # doctest: +SKIP
    array(['ま', 'す', 'な'], dtype='<U1')
    """
    return fetch_mnist_like("kmnist", **locals())


@_shared_doc
def fetch_kuzushiji49(
    *,
    subset="train",
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
    base_url=None,
    n_retries=3,
    delay=1.0,
):
    """Load Kuzushiji-49, cursive Japanese hiragana (classification, 49 classes).

    =================   ==========================
    Classes             49 (48 hiragana and the iteration mark ゝ)
    Samples             232,365 train + 38,547 test, IMBALANCED
    Dimensionality      784 (28x28 pixels)
    Features            float32, in [0, 1]
    =================   ==========================

    The classes are strongly imbalanced, some having many times as many
    images as others: fit classifiers with ``class_weight="balanced"`` and score
    them with :func:`sklearn.metrics.balanced_accuracy_score` (the
    publishers' metric for this data set) rather than plain accuracy.

    The NumPy-format files (``k49-train-imgs.npz`` ...) are downloaded once,
    from http://codh.rois.ac.jp/kmnist/dataset/k49/, into ``data_home/k49/``.
    ``target_names`` are the characters of the publisher's class map, in its
    order (あ い う ... わ ゐ ゑ を ん ゝ), which is built in; a
    ``k49_classmap.csv`` placed in that folder is read
    instead.

    {shared}

    See Also
    --------
    fetch_kmnist : The balanced 10-class version.

    Examples
    --------
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from sknets.datasets import fetch_kuzushiji49
    >>> X, y = fetch_kuzushiji49(subset="train", return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (232365, 784)
    """
    return fetch_mnist_like("k49", **locals())
