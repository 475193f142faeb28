"""The data a study trains, validates and tests on."""

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .. import datasets
from .._input import stratify_labels
from ..model_selection import train_val_test_split

# Data sets a study can run on: scikit-learn's bundled digits, then the
# downloadable ones, under the names of sknets.datasets.
DATASETS = ("digits", *datasets.DATASETS)


@dataclass
class StudyData:
    """Training, validation and test sets of a study, with what describes them.

    Attributes
    ----------
    name : str
        Data set name, one of ``DATASETS``.
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        Inputs as float32 rows in [0, 1]; labels as the class numbers
        ``0 .. n_classes - 1`` (int64), as the :mod:`sknets.datasets`
        fetchers and scikit-learn's ``load_digits`` return them, so that a
        model trained here scores on what they return.
    labels : ndarray of int
        The class numbers, ``0 .. n_classes - 1``.
    names : ndarray of str
        The class names, ``names[label]`` naming each label (the fetchers'
        ``target_names``).
    description : str
        Where the data comes from and how it was split.
    small : bool
        Whether the images are few and small (the 8x8 digits): studies then
        use their settings for small data, and one torch thread.

    Examples
    --------
    >>> from sknets.studies import load_study_data
    >>> data = load_study_data("digits")
    >>> data.small, data.describe()["n_features"]
    (True, 64)
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    labels: np.ndarray
    names: np.ndarray
    description: str
    small: bool = False

    def sizes(self):
        """``{"train": n, "validation": n, "test": n}``."""
        return {"train": len(self.X_train), "validation": len(self.X_val),
                "test": len(self.X_test)}

    def describe(self):
        """The mapping :meth:`sknets.studies.report.Report.describe_data` takes."""
        return {"name": self.name, "description": self.description,
                "n_features": int(self.X_train.shape[1]),
                "classes": [str(c) for c in self.names], **self.sizes()}


def load_study_data(dataset="digits", data_home=None, n_train=None, n_test=None,
                    random_state=0):
    """The data a study trains and tests on.

    ``"digits"`` is scikit-learn's bundled 8x8 digits (1,797 images, pixels
    divided by 16), split by :func:`sknets.model_selection.train_val_test_split`
    into 5/7 training, 1/7 validation and 1/7 test images. The 28x28 data
    sets are read with :mod:`sknets.datasets` (downloaded into
    ``data_home`` if missing): the publisher's test set is the test set, and
    1/6 of the publisher's training set (10,000 of MNIST's 60,000 images) is
    held out for validation. Every split is at random and stratified.

    Labels are class numbers, as the fetchers return them (``names`` holds
    the class names): a model trained on this data, or saved by ``sknets
    train``, scores directly on ``fetch_*(subset="test", return_X_y=True)``
    and predicts class numbers; ``names[model.predict(X)]`` names them.

    Parameters
    ----------
    dataset : {"digits", "mnist", "fashion-mnist", "kmnist", "k49"}, default="digits"
    data_home : str or path, default=None
        Folder of the downloaded data sets (see
        :func:`sknets.datasets.get_data_home`); unused for "digits".
    n_train : int, default=None
        Use only this many training and validation images together (drawn at
        random, in the proportions of the split: 5 to 1); None uses all.
    n_test : int, default=None
        Use only this many test images (drawn at random); None uses all.
    random_state : int, default=0
        Seed of the splits and subsamples.

    Returns
    -------
    StudyData

    Raises
    ------
    ValueError
        If ``dataset`` is not one of ``DATASETS``.

    Examples
    --------
    >>> from sknets.studies import load_study_data
    >>> data = load_study_data("digits")
    >>> data.sizes()
    {'train': 1283, 'validation': 257, 'test': 257}
    >>> load_study_data("digits", n_train=600, n_test=50).sizes()
    {'train': 500, 'validation': 100, 'test': 50}
    """
    rng = check_random_state(random_state)
    if dataset == "digits":
        digits = load_digits()
        names = digits.target_names.astype(str)
        X, y = (digits.data / 16).astype(np.float32), digits.target.astype(np.int64)
        X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
            X, y, stratify=stratify(y), random_state=rng)
        description = ("scikit-learn's bundled 8x8 handwritten digits (UCI), pixels / 16, "
                       "split at random 5/7 training, 1/7 validation, 1/7 test (stratified).")
    elif dataset in datasets.DATASETS:
        fetch = datasets.DATASETS[dataset]
        train = fetch(subset="train", data_home=data_home)
        test = fetch(subset="test", data_home=data_home)
        names = np.asarray(train.target_names).astype(str)
        y = np.asarray(train.target, dtype=np.int64)
        X_train, X_val, y_train, y_val = train_test_split(
            train.data, y, test_size=1 / 6, stratify=stratify(y), random_state=rng)
        X_test, y_test = test.data, np.asarray(test.target, dtype=np.int64)
        description = (f"{train.DESCR.splitlines()[0]}: the publisher's test set; 1/6 of "
                       "the publisher's training set held out at random (stratified) for "
                       "validation.")
    else:
        raise ValueError(f"Unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}.")
    if n_train is not None:
        n_val = round(n_train * len(X_val) / (len(X_train) + len(X_val)))
        X_train, y_train = _subsample(X_train, y_train, n_train - n_val, rng)
        X_val, y_val = _subsample(X_val, y_val, n_val, rng)
    X_test, y_test = _subsample(X_test, y_test, n_test, rng)
    return StudyData(dataset, X_train, y_train, X_val, y_val, X_test, y_test,
                     np.arange(len(names)), names, description, small=dataset == "digits")


def stratify(y):
    """``y`` if a split can keep its class proportions, else None (a plain random split).

    The library's rule: every class needs at least two samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.studies.data import stratify
    >>> stratify(np.array(["a", "a", "b"])) is None
    True
    """
    codes = np.unique(y, return_inverse=True)[1]
    return None if stratify_labels(codes) is None else y


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = np.sort(rng.choice(len(X), size=n, replace=False))
    return X[index], y[index]


__all__ = ["DATASETS", "StudyData", "load_study_data", "stratify"]
