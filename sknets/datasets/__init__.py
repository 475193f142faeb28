"""Data sets: the MNIST family (downloaded and cached) and image folders."""

from ._fetch import get_data_home
from ._images import load_image_folder
from ._mnist_like import fetch_fashion_mnist, fetch_kmnist, fetch_kuzushiji49, fetch_mnist

__all__ = [
    "fetch_fashion_mnist",
    "fetch_kmnist",
    "fetch_kuzushiji49",
    "fetch_mnist",
    "get_data_home",
    "load_image_folder",
]
