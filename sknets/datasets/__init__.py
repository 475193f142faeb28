"""Data sets: the MNIST family (downloaded and cached) and image folders.

``DATASETS`` names the downloadable data sets once for the whole package:
the ``sknets`` command's ``--dataset``, the studies and the benchmark
scripts all read it, so a data set has one name everywhere.

Examples
--------
>>> from sknets.datasets import DATASETS
>>> list(DATASETS)
['mnist', 'fashion-mnist', 'kmnist', 'k49']
>>> DATASETS["fashion-mnist"].__name__
'fetch_fashion_mnist'
"""

from ._fetch import get_data_home
from ._images import load_image_folder
from ._mnist_like import fetch_fashion_mnist, fetch_kmnist, fetch_kuzushiji49, fetch_mnist

#: Name -> fetcher of each downloadable data set. The name is also the
#: subfolder of the cache (``get_data_home() / name``) the fetcher reads.
DATASETS = {
    "mnist": fetch_mnist,
    "fashion-mnist": fetch_fashion_mnist,
    "kmnist": fetch_kmnist,
    "k49": fetch_kuzushiji49,
}

__all__ = [
    "DATASETS",
    "fetch_fashion_mnist",
    "fetch_kmnist",
    "fetch_kuzushiji49",
    "fetch_mnist",
    "get_data_home",
    "load_image_folder",
]
