"""Named studies: the experiments users run by hand, in one call each.

A study trains a few networks on one data set and writes what its seed
report showed into a :class:`~sknets.studies.report.Report`: loss curves, confusion
matrices or reconstructions, a test table, model summaries and the exact
parameters. ``sknets study NAME`` (see :mod:`sknets.studies.cli`) runs one from the
command line.

======================  =======================================================
study                   what it compares
======================  =======================================================
``architectures``       1 and 2 hidden layers, L2, dropout (MLP, ~100 units)
``optimizers``          vanilla SGD, momentum, RMSprop, Adagrad, Adam
``regularizers``        none, dropout, batch norm, both, L1 + L2 + dropout +
                        batch norm on a 64-64-128-64-64 network
``training``            mini-batch SGD, linear and exponential learning-rate
                        schedules, Adam, L2, early stopping; an over-fitted
                        wide network
``data-size``           2 x 512 on all vs 25% of the data; one layer of 512
                        with ReLU or sigmoid, dropout 0.2, 0.5 or none
``autoencoder``         code sizes of an autoencoder, next to PCA
``search``              ``GridSearchCV`` over ``hidden_layers``
======================  =======================================================

Every study runs on scikit-learn's bundled 8x8 digits by default (no
download, well under a minute on two cores) and on the 28x28 data sets of
:mod:`sknets.datasets`, with settings adapted to each size.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import ConfusionMatrixDisplay, balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from tqdm.auto import tqdm

from ..inspection.compare import compare
from ..autoencoder import AutoencoderTransformer
from ..mlp import MLPClassifier
from ..inspection.plotting import plot_history, plot_reconstructions
from ..inspection.summary import summary

# Data sets a study can run on; all but "digits" go through sknets.datasets.
DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "k49")
_FETCHERS = {"mnist": "fetch_mnist", "fashion-mnist": "fetch_fashion_mnist",
             "kmnist": "fetch_kmnist", "k49": "fetch_kuzushiji49"}


@dataclass
class StudyData:
    """Training, validation and test sets of a study, with what describes them.

    Attributes
    ----------
    name : str
        Data set name, one of ``DATASETS``.
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        Inputs as float32 rows in [0, 1]; labels as strings, the names of
        the classes.
    labels : ndarray of str
        The class names in the data set's own order (for confusion matrices).
    description : str
        Where the data comes from and how it was split.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    labels: np.ndarray
    description: str

    @property
    def small(self):
        """Whether this is the bundled 8x8 digits, which studies train differently."""
        return self.name == "digits"

    def sizes(self):
        """``{"train": n, "validation": n, "test": n}``."""
        return {"train": len(self.X_train), "validation": len(self.X_val),
                "test": len(self.X_test)}


def load_study_data(dataset="digits", data_home=None, n_train=None, n_test=None,
                    random_state=0):
    """The data a study trains and tests on.

    ``"digits"`` is scikit-learn's bundled 8x8 digits (1,797 images, pixels
    divided by 16): 1/7 is set aside at random as the test set, the rest is
    the training set. The 28x28 data sets are read with
    :mod:`sknets.datasets` (downloaded into ``data_home`` if missing), with
    the publishers' training and test sets. Then 1/6 of the training set
    (10,000 of MNIST's 60,000 images) is held out for validation. Every
    split is at random and stratified.

    Parameters
    ----------
    dataset : {"digits", "mnist", "fashion-mnist", "kmnist", "k49"}, default="digits"
    data_home : str or path, default=None
        Folder of the downloaded data sets (see
        :func:`sknets.datasets.get_data_home`); unused for "digits".
    n_train : int, default=None
        Use only this many training images (drawn at random, before the
        validation set is held out of them); None uses all.
    n_test : int, default=None
        Use only this many test images (drawn at random); None uses all.
    random_state : int, default=0
        Seed of the splits and subsamples.

    Returns
    -------
    StudyData

    Examples
    --------
    >>> from sknets.studies import load_study_data
    >>> data = load_study_data("digits")
    >>> data.sizes()
    {'train': 1283, 'validation': 257, 'test': 257}
    """
    from sklearn.model_selection import train_test_split

    rng = np.random.RandomState(random_state)
    if dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        names = digits.target_names.astype(str)
        X, y = (digits.data / 16).astype(np.float32), names[digits.target]
        X, X_test, y, y_test = train_test_split(X, y, test_size=1 / 7, stratify=y,
                                                random_state=rng)
        description = ("scikit-learn's bundled 8x8 handwritten digits (UCI), pixels / 16, "
                       "split at random 5/7 training, 1/7 validation, 1/7 test (stratified).")
    elif dataset in _FETCHERS:
        from .. import datasets

        fetch = getattr(datasets, _FETCHERS[dataset])
        train = fetch(subset="train", data_home=data_home)
        test = fetch(subset="test", data_home=data_home)
        names = np.asarray(train.target_names).astype(str)
        X, y = train.data, names[train.target]
        X_test, y_test = test.data, names[test.target]
        description = (f"{train.DESCR.splitlines()[0]}: the publisher's test set; 1/6 of "
                       "the publisher's training set held out at random (stratified) for "
                       "validation.")
    else:
        raise ValueError(f"Unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}.")
    X, y = _subsample(X, y, n_train, rng)
    X_test, y_test = _subsample(X_test, y_test, n_test, rng)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=1 / 6, stratify=_stratify(y), random_state=rng)
    return StudyData(dataset, X_train, y_train, X_val, y_val, X_test, y_test, names,
                     description)


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = np.sort(rng.choice(len(X), size=n, replace=False))
    return X[index], y[index]


def _stratify(y):
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 3 else None


@dataclass
class StudySettings:
    """What the user may change in every study.

    Attributes
    ----------
    epochs : int or None
        ``max_epochs`` of every network; None keeps the study's default.
    lr : float or None
        Learning rate of every network (in the optimizers study, of every
        optimizer); None keeps the study's default.
    batch_size : int or None
        Mini-batch size of every network; None keeps the study's default.
    random_state : int
        Seed of every network (the same initial weights where the
        architectures agree).
    device : str
        Torch device of every network.
    n_threads : int or None
        Torch threads of every network.
    verbose : int
        ``verbose`` of every network (1 prints a line per epoch).
    progress : bool
        Show a progress bar over the models of the study.
    """

    epochs: int = None
    lr: float = None
    batch_size: int = None
    random_state: int = 0
    device: str = "cpu"
    n_threads: int = None
    verbose: int = 0
    progress: bool = True

    def overrides(self):
        """The estimator parameters these settings fix."""
        given = {"max_epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size}
        fixed = {k: v for k, v in given.items() if v is not None}
        return {**fixed, "random_state": self.random_state, "device": self.device,
                "n_threads": self.n_threads, "verbose": self.verbose}


@dataclass
class Study:
    """A registered study: what it is and the training settings per data size.

    ``small`` holds the estimator parameters used on the 8x8 digits,
    ``full`` those used on the 28x28 data sets; ``run(study, data,
    settings, report)`` trains the models and fills the report.
    """

    name: str
    title: str
    seed: str
    description: str
    run: callable
    small: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)

    def params(self, data, settings, **model_params):
        """Estimator parameters: study defaults < model's own < user settings."""
        defaults = self.small if data.small else self.full
        params = {**defaults, **model_params, **settings.overrides()}
        params["n_threads"] = default_threads(data, params["n_threads"])
        return params


def default_threads(data, n_threads):
    """``n_threads`` for a network trained on ``data``: 1 on the small digits.

    Networks that small gain nothing from more threads, and lose much when
    the cores are shared; an explicit ``n_threads`` is kept.
    """
    return 1 if n_threads is None and data.small else n_threads


STUDIES = {}


def _register(name, title, seed, small, full):
    def decorate(run):
        STUDIES[name] = Study(name, title, seed, (run.__doc__ or "").strip(), run, small, full)
        return run
    return decorate


def run_study(name, data, settings=None, report=None):
    """Run a named study and return its report.

    Parameters
    ----------
    name : str
        A key of ``STUDIES``.
    data : StudyData
        From :func:`load_study_data`.
    settings : StudySettings, default=None
        User overrides; the study's defaults if None.
    report : sknets.studies.report.Report, default=None
        Report to fill; a new one if None.

    Returns
    -------
    sknets.studies.report.Report
        Call its ``write(folder)`` to save the HTML, PNG, CSV and JSON files.

    Examples
    --------
    >>> from sknets.studies import StudySettings, load_study_data, run_study
    >>> data = load_study_data("digits")
    >>> report = run_study("architectures", data, StudySettings(epochs=2, progress=False))
    >>> report.tables["test_results"].shape[0]
    4
    """
    from .report import Report

    if name not in STUDIES:
        raise ValueError(f"Unknown study {name!r}; the studies are {', '.join(STUDIES)}.")
    study = STUDIES[name]
    settings = settings or StudySettings()
    report = report or Report(f"sknets study: {study.title}")
    report.results["study"] = name
    report.section("Study", f"{study.description} (After seed report {study.seed}.)")
    report.describe_data(data)
    study.run(study, data, settings, report)
    return report


# --- shared steps of the supervised studies --------------------------------------


def _fit_all(models, data, settings, desc):
    """Fit every model on the training set, monitored on the validation set."""
    bar = tqdm(models.items(), desc=desc, unit="model", disable=not settings.progress)
    for name, model in bar:
        bar.set_postfix_str(name)
        model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    bar.close()
    return models


def _report_classifiers(report, models, data, curves_caption):
    """Curves, test table, confusion matrices, summaries and parameters."""
    report.section("Training curves", curves_caption)
    axes = plot_history(models, metrics=("loss", "accuracy"))
    axes[0].set_yscale("log")  # the late epochs, where models differ, stay visible
    axes[0].set_title("loss (cross-entropy, log scale) by epoch")
    axes[1].set_title("validation accuracy by epoch")
    report.figure("curves", axes[0].figure,
                  "Solid: training, dashed: validation; a star marks the epoch whose "
                  "weights each model kept (lowest validation loss).")
    _report_test_table(report, models, data)
    _report_confusion_matrices(report, models, data)
    _report_models(report, models)


def _report_test_table(report, models, data):
    table = compare(models, data.X_test, data.y_test)
    report.section("Test results",
                   f"Each model with the weights of its best validation epoch, scored on "
                   f"the {len(data.X_test):,} test samples.")
    report.table("test_results", table)
    report.results["histories"] = {name: model.history_.to_dict(orient="list")
                                   for name, model in models.items()}
    return table


def _report_confusion_matrices(report, models, data):
    import matplotlib.pyplot as plt

    n = len(models)
    columns = min(n, 3 if n > 4 else 2)
    rows = -(-n // columns)
    size = 4.2 if len(data.labels) <= 10 else 6.0
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows),
                             squeeze=False, layout="constrained")
    for axis, (name, model) in zip(axes.flat, models.items()):
        ConfusionMatrixDisplay.from_estimator(
            model, data.X_test, data.y_test, labels=data.labels, ax=axis, colorbar=False,
            include_values=len(data.labels) <= 10, cmap="Blues",
            text_kw={"fontsize": 7})
        axis.set_title(name)
    for axis in axes.flat[n:]:
        axis.remove()
    report.figure("confusion_matrices", fig,
                  "Confusion matrices on the test set (rows: true class, columns: predicted).")


def _report_models(report, models):
    report.section("Models", "Keras-style summaries (batch-norm running statistics count "
                             "as non-trainable parameters).")
    for name, model in models.items():
        report.code(f"{name}", summary(model).to_text())
    report.parameters(models)


def fit_and_report(model, data, report):
    """Fit one classifier on a study's data and add its curves, test scores,
    confusion matrix, summary and parameters to ``report``.

    ``sknets train`` runs this.

    Parameters
    ----------
    model : MLPClassifier
        Unfitted; it is fitted on ``data``'s training set, monitored on its
        validation set.
    data : StudyData
    report : sknets.studies.report.Report

    Returns
    -------
    report : sknets.studies.report.Report

    Examples
    --------
    >>> from sknets import MLPClassifier
    >>> from sknets.studies.report import Report
    >>> from sknets.studies import fit_and_report, load_study_data
    >>> report = fit_and_report(MLPClassifier(max_epochs=3), load_study_data(), Report("x"))
    >>> list(report.tables)
    ['data', 'test_results', 'parameters']
    """
    report.describe_data(data)
    models = {"model": model}
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    _report_classifiers(report, models, data, "Training and validation loss, and "
                                              "validation accuracy.")
    return report


# --- the studies ---------------------------------------------------------------------


@_register("architectures", "MLP architectures and regularization", "000",
           small=dict(hidden_layers=(100,), lr=3e-3, batch_size=64, max_epochs=30),
           full=dict(hidden_layers=(100,), lr=2e-4, batch_size=100, max_epochs=20))
def _architectures(study, data, settings, report):
    """One hidden layer of 100 ReLU units, two hidden layers, one layer with an
    L2 penalty and one layer with dropout, trained with Adam; the weights of the
    best validation epoch are kept and compared on the test set."""
    variants = {
        "1 layer": {},
        "2 layers": {"hidden_layers": (100, 100)},
        "1 layer + L2": {"l2": 1e-3},
        "1 layer + dropout": {"dropout": 0.2},
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    _fit_all(models, data, settings, "architectures")
    _report_classifiers(report, models, data,
                        "Training and validation loss, and validation accuracy, of the "
                        "four networks.")


# Learning rates at which each optimizer is usually run on MNIST-sized MLPs.
_OPTIMIZER_LR = {"sgd": 0.1, "momentum": 0.01, "rmsprop": 1e-3, "adagrad": 1e-2, "adam": 1e-3}


@_register("optimizers", "Optimizers", "000 (b)",
           small=dict(hidden_layers=(100,), batch_size=64, max_epochs=30),
           full=dict(hidden_layers=(100,), batch_size=100, max_epochs=20))
def _optimizers(study, data, settings, report):
    """Vanilla mini-batch gradient descent against momentum (0.9), RMSprop,
    Adagrad and Adam on the same network with the same initial weights, each at
    its customary learning rate (``--lr`` sets one rate for all)."""
    models = {
        f"{name} (lr={settings.lr or lr:g})": MLPClassifier(
            **study.params(data, settings, optimizer=name, lr=lr))
        for name, lr in _OPTIMIZER_LR.items()
    }
    _fit_all(models, data, settings, "optimizers")
    _report_classifiers(report, models, data,
                        "All optimizers start from the same weights and see the same "
                        "batches in the same order.")


_DEEP = (64, 64, 128, 64, 64)


@_register("regularizers", "Regularizers on a deep network", "003",
           small=dict(hidden_layers=_DEEP, lr=2e-3, batch_size=64, max_epochs=40),
           full=dict(hidden_layers=_DEEP, lr=1e-3, batch_size=128, max_epochs=40))
def _regularizers(study, data, settings, report):
    """The five-hidden-layer ReLU network 64-64-128-64-64 without regularization,
    with dropout (0.33), with batch normalization, with both (the seed report's
    "2 regularizers") and with L1 + L2 + dropout + batch normalization: how the
    gap between training and validation loss changes."""
    variants = {
        "none": {},
        "dropout": {"dropout": 0.33},
        "batch norm": {"batch_norm": True},
        "dropout + batch norm": {"dropout": 0.33, "batch_norm": True},
        "L1 + L2 + dropout + batch norm": {"l1": 1e-5, "l2": 1e-4, "dropout": 0.33,
                                           "batch_norm": True},
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    _fit_all(models, data, settings, "regularizers")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6),
                             sharey=True, layout="constrained")
    for axis, (name, model) in zip(axes, models.items()):
        plot_history(model, "loss", ax=axis)
        axis.set_yscale("log")
        axis.set_title(name)
    report.section("Generalization gap", "Training against validation loss, model by model.")
    report.figure("loss_by_model", fig,
                  "Loss on a log scale; a star marks the epoch of lowest validation loss, "
                  "whose weights were kept.")
    _report_classifiers(report, models, data, "The four networks overlaid.")


@_register("search", "Grid search over hidden layers", "004",
           small=dict(lr=3e-3, batch_size=64, max_epochs=20),
           full=dict(lr=1e-3, batch_size=128, max_epochs=15))
def _search(study, data, settings, report):
    """``GridSearchCV`` (3-fold, stratified, on training + validation data) over
    ``hidden_layers``; the best candidate, refitted, is scored on the test set
    (accuracy and balanced accuracy, the metric for imbalanced sets such as
    Kuzushiji-49)."""
    grid = {"hidden_layers": [(50,), (100,), (100, 80), (256, 128)]}
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    cv = StratifiedKFold(3, shuffle=True, random_state=settings.random_state)
    n_fits = len(grid["hidden_layers"]) * cv.get_n_splits()
    bar = tqdm(total=n_fits + 1, desc="search", unit="model", disable=not settings.progress)
    search = GridSearchCV(MLPClassifier(**study.params(data, settings)), grid, cv=cv,
                          scoring=_ProgressScorer(bar), refit=False)
    search.fit(X, y)
    best = clone(search.estimator).set_params(**search.best_params_)
    bar.set_postfix_str("refit of the best")
    best.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    bar.update(1)
    bar.close()

    results = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame({
        "hidden_layers": results["param_hidden_layers"].map(str),
        "mean_accuracy": results["mean_test_score"],
        "std_accuracy": results["std_test_score"],
        "rank": results["rank_test_score"],
        "mean_fit_seconds": results["mean_fit_time"],
    }).set_index("hidden_layers")
    report.section("Cross-validation",
                   f"3-fold cross-validated accuracy of each candidate on the "
                   f"{len(X):,} training + validation samples.")
    report.table("search_results", table)
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
    positions = np.arange(len(table))
    axis.bar(positions, table["mean_accuracy"], yerr=table["std_accuracy"], capsize=4,
             color=["C1" if r == 1 else "C0" for r in table["rank"]])
    axis.set_xticks(positions, table.index)
    axis.set_xlabel("hidden_layers")
    axis.set_ylabel("cross-validated accuracy")
    low = (table["mean_accuracy"] - 3 * table["std_accuracy"]).min()
    axis.set_ylim(max(0.0, low - 0.02), min(1.0, table["mean_accuracy"].max() + 0.02))
    report.figure("search_scores", fig,
                  "Mean accuracy ± one standard deviation over the folds; the best in orange.")

    name = f"best: hidden_layers={best.hidden_layers}"
    models = {name: best}
    table = _report_test_table(report, models, data)
    table["test_balanced_accuracy"] = balanced_accuracy_score(data.y_test,
                                                              best.predict(data.X_test))
    report.table("test_results", table)
    report.section("Best model", "The best candidate refitted on the training set, "
                                 "monitored on the validation set.")
    axes = plot_history(best, metrics=("loss", "accuracy"))
    report.figure("best_curves", axes[0].figure, "Training curves of the refitted best model.")
    _report_confusion_matrices(report, models, data)
    _report_models(report, models)


class _ProgressScorer:
    """Accuracy scorer that advances a progress bar once per scored fit."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, estimator, X, y):
        self.bar.update(1)
        return estimator.score(X, y)


@_register("autoencoder", "Autoencoder code sizes", "002",
           small=dict(hidden_layers=(), lr=1e-2, batch_size=64, max_epochs=60, dropout=0.0),
           full=dict(hidden_layers=(), lr=1e-3, batch_size=1000, max_epochs=15, dropout=0.1))
def _autoencoder(study, data, settings, report):
    """Autoencoders input → code (ReLU) → input (sigmoid) trained with Adam on
    the mean squared reconstruction error, for several code sizes: training and
    validation loss, reconstructions of test images, and the test error next to
    PCA with as many components."""
    sizes = (4, 8, 16, 32) if data.small else (64, 128, 256, 512)
    models = {f"code {size}": AutoencoderTransformer(
        **study.params(data, settings, code_size=size, code_activation="relu",
                       output_activation="sigmoid"))
        for size in sizes}
    bar = tqdm(models.items(), desc="autoencoder", unit="model", disable=not settings.progress)
    for name, model in bar:
        bar.set_postfix_str(name)
        model.fit(data.X_train, validation_data=data.X_val)
    bar.close()

    report.section("Training curves", "Mean squared reconstruction error by epoch.")
    axis = plot_history(models, "loss")
    axis.set_ylabel("loss (mean squared error)")
    report.figure("curves", axis.figure, "Solid: training, dashed: validation; a star marks "
                                         "the epoch whose weights each model kept.")

    table = compare(models, data.X_test)
    table["pca_test_mse"] = [_pca_error(size, data.X_train, data.X_test, settings.random_state)
                             for size in sizes]
    report.section("Test results", "Mean squared reconstruction error of the test images, "
                                   "next to PCA with as many components (fitted on the "
                                   "same training images).")
    report.table("test_results", table)
    report.results["histories"] = {name: model.history_.to_dict(orient="list")
                                   for name, model in models.items()}

    import matplotlib.pyplot as plt

    n = 10
    fig, axes = plt.subplots(1 + len(models), n, figsize=(1.1 * n, 1.2 * (1 + len(models))),
                             squeeze=False, layout="constrained")
    for row, (name, model) in enumerate(models.items(), start=1):
        plot_reconstructions(model, data.X_test, n=n, axes=axes[[0, row]])
        axes[row, 0].set_ylabel(name)
    report.section("Reconstructions", "Test images (top row) and their reconstructions.")
    report.figure("reconstructions", fig, "Top: originals; below: one row per code size.")
    _report_models(report, models)


def _pca_error(n_components, X, X_test, random_state):
    """Test mean squared reconstruction error of PCA fitted on ``X``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components, random_state=random_state).fit(X)
    return float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))


# --- studies added for the seed reports 004 and 001 --------------------------------


def _with_balanced_accuracy(table, models, data):
    """Add the test balanced accuracy (the metric for imbalanced sets, e.g. Kuzushiji-49)."""
    table["test_balanced_accuracy"] = [
        balanced_accuracy_score(data.y_test, model.predict(data.X_test))
        for model in models.values()]
    return table


@_register("training", "Training improvements and over-fitting", "004",
           small=dict(hidden_layers=(100, 80), batch_size=64, max_epochs=40),
           full=dict(hidden_layers=(100, 80), batch_size=128, max_epochs=25))
def _training(study, data, settings, report):
    """The two-layer network 100-80 trained with mini-batch SGD (learning rate
    0.1), then with a linear (with saturation) and an exponential learning-rate
    schedule, with Adam, Adam + L2, and Adam + L2 + early stopping; then a
    deliberately over-fitted wide network (one layer of 5,000 units, no
    regularization) trained for twice as many epochs, one at a time, while its
    training and validation accuracy are recorded. Test accuracy and balanced
    accuracy are reported."""
    epochs = settings.epochs or (study.small if data.small else study.full)["max_epochs"]
    variants = {
        "SGD": dict(optimizer="sgd", lr=0.1),
        "SGD + linear schedule": dict(optimizer="sgd", lr=0.1, lr_schedule="linear",
                                      lr_decay=0.1 / epochs, lr_min=0.01),
        "SGD + exponential schedule": dict(optimizer="sgd", lr=0.1,
                                           lr_schedule="exponential",
                                           lr_decay=4 / epochs, lr_min=1e-3),
        "Adam": dict(optimizer="adam", lr=1e-3),
        "Adam + L2": dict(optimizer="adam", lr=1e-3, l2=1e-4),
        "Adam + L2 + early stopping": dict(optimizer="adam", lr=1e-3, l2=1e-4,
                                           early_stopping=True, patience=5),
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    _fit_all(models, data, settings, "training")
    report.section("Learning rates", "The learning rate of every epoch, as each schedule set it.")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for name, model in models.items():
        axis.plot(model.history_["epoch"], model.history_["lr"], label=name)
    axis.set(xlabel="epoch", ylabel="learning rate", yscale="log")
    axis.legend(fontsize=7)
    report.figure("learning_rates", axis.figure, "Learning rate by epoch.")
    _report_classifiers(report, models, data,
                        "Training and validation loss, and validation accuracy; every "
                        "network starts from the same weights.")
    _with_balanced_accuracy(report.tables["test_results"], models, data)
    report.table("test_results", report.tables["test_results"])
    # Twice the epochs: memorising the training set takes longer than converging.
    _report_overfit(study, data, settings, report, 2 * epochs)


def _report_overfit(study, data, settings, report, epochs):
    """Train the [5000] network one epoch at a time, recording both accuracies."""
    import matplotlib.pyplot as plt

    model = MLPClassifier(**{**study.params(data, settings, hidden_layers=(5000,),
                                            optimizer="adam", lr=1e-3),
                             "patience": None})
    rows = []
    for epoch in tqdm(range(1, epochs + 1), desc="over-fitted [5000]", unit="epoch",
                      disable=not settings.progress):
        model.partial_fit(data.X_train, data.y_train, classes=data.labels)
        rows.append({"epoch": epoch, "train_loss": float(model.history_["train_loss"].iloc[-1]),
                     "train_accuracy": model.score(data.X_train, data.y_train),
                     "valid_accuracy": model.score(data.X_val, data.y_val)})
    curves = pd.DataFrame(rows).set_index("epoch")
    fig, axis = plt.subplots(figsize=(6, 3.8), layout="constrained")
    axis.plot(curves.index, curves["train_accuracy"], label="training")
    axis.plot(curves.index, curves["valid_accuracy"], "--", label="validation")
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy")
    axis.legend()
    report.section("Over-fitting", "One hidden layer of 5,000 ReLU units, Adam, no "
                                   "regularization and no early stopping: the last epoch's "
                                   "weights are kept.")
    report.figure("overfit", fig, "Accuracy on the training and validation sets by epoch.")
    report.table("overfit_curves", curves)
    final = {"train_accuracy": curves["train_accuracy"].iloc[-1],
             "valid_accuracy": curves["valid_accuracy"].iloc[-1],
             "best_valid_accuracy": curves["valid_accuracy"].max(),
             "test_accuracy": model.score(data.X_test, data.y_test),
             "test_balanced_accuracy": balanced_accuracy_score(data.y_test,
                                                               model.predict(data.X_test))}
    report.table("overfit_results", pd.DataFrame([final], index=pd.Index(["[5000]"],
                                                                         name="model")))


@_register("data-size", "Training-set size, depth, activation and dropout", "001",
           small=dict(optimizer="rmsprop", lr=1e-3, batch_size=64, max_epochs=30),
           full=dict(optimizer="rmsprop", lr=1e-3, batch_size=128, max_epochs=20))
def _data_size(study, data, settings, report):
    """Keras's MNIST example network, 2 x 512 ReLU units with dropout 0.2 trained
    with RMSprop, on all of the training set and on 25% of it; then, on the same
    25%, one layer of 512 units with ReLU or sigmoid and dropout 0.2, and with
    sigmoid and dropout 0.5 or no dropout."""
    from sklearn.model_selection import train_test_split

    quarter = train_test_split(data.X_train, data.y_train, train_size=0.25,
                               stratify=_stratify(data.y_train),
                               random_state=settings.random_state)[::2]
    variants = {
        "2x512 relu, dropout 0.2, all data": ({"hidden_layers": (512, 512), "dropout": 0.2},
                                              False),
        "2x512 relu, dropout 0.2, 25%": ({"hidden_layers": (512, 512), "dropout": 0.2}, True),
        "512 relu, dropout 0.2, 25%": ({"hidden_layers": (512,), "dropout": 0.2}, True),
        "512 sigmoid, dropout 0.2, 25%": ({"hidden_layers": (512,), "dropout": 0.2,
                                           "activation": "sigmoid"}, True),
        "512 sigmoid, dropout 0.5, 25%": ({"hidden_layers": (512,), "dropout": 0.5,
                                           "activation": "sigmoid"}, True),
        "512 sigmoid, no dropout, 25%": ({"hidden_layers": (512,), "activation": "sigmoid"},
                                         True),
    }
    models, sizes = {}, {}
    bar = tqdm(variants.items(), desc="data-size", unit="model", disable=not settings.progress)
    for name, (params, on_quarter) in bar:
        bar.set_postfix_str(name)
        X, y = quarter if on_quarter else (data.X_train, data.y_train)
        models[name] = MLPClassifier(**study.params(data, settings, **params))
        models[name].fit(X, y, validation_data=(data.X_val, data.y_val))
        sizes[name] = len(X)
    bar.close()
    _report_classifiers(report, models, data,
                        "Training and validation loss, and validation accuracy; the same "
                        "validation set for all.")
    table = report.tables["test_results"]
    table.insert(0, "n_train", pd.Series(sizes))
    report.table("test_results", table)


__all__ = ["DATASETS", "STUDIES", "Study", "StudyData", "StudySettings", "default_threads",
           "fit_and_report",
           "load_study_data", "run_study"]
