"""Fitted networks side by side on a test set."""

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import log_loss, mean_squared_error, r2_score

from ._fitted import fitted_network, named_estimators
from .summary import count_parameters


def compare(estimators, X_test, y_test=None):
    """One row per fitted network: test scores, training facts, size.

    Parameters
    ----------
    estimators : estimator, list of estimators or dict of name -> estimator
        Fitted sknets networks, or pipelines / fitted searches ending in one
        (test scores then come from the whole pipeline). Rows are named by
        the dict's keys, else by class names.
    X_test : array-like of shape (n_samples, n_features)
    y_test : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        Targets; not needed by autoencoders (their target is ``X_test``).

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, with the columns that apply to the models:

        - classifiers: ``test_accuracy`` and ``test_log_loss`` (the
          cross-entropy they were trained on);
        - regressors: ``test_r2`` and ``test_mse``;
        - autoencoders and other transformers with ``inverse_transform``:
          ``test_mse``, the mean squared reconstruction error;

        then for every model ``train_loss`` (training loss of the epoch whose
        weights were kept), ``best_epoch``, ``epochs`` (trained),
        ``parameters`` (as counted by :func:`sknets.summary`) and
        ``fit_seconds``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier, compare
    >>> X, y = load_digits(return_X_y=True)
    >>> models = {f"{w} units": MLPClassifier((w,), max_epochs=5, random_state=0)
    ...           .fit(X[:1500] / 16, y[:1500]) for w in (16, 64)}
    >>> table = compare(models, X[1500:] / 16, y[1500:])
    >>> list(table.index), int(table.loc["16 units", "parameters"])
    (['16 units', '64 units'], 1210)
    """
    rows = {}
    for name, estimator in named_estimators(estimators):
        network = fitted_network(estimator)
        row = _test_scores(estimator, X_test, y_test)
        history = network.history_
        kept = history.loc[history["epoch"] == network.best_epoch_, "train_loss"]
        row.update(
            train_loss=float(kept.iloc[0]) if len(kept) else np.nan,
            best_epoch=network.best_epoch_,
            epochs=network.n_epochs_,
            parameters=count_parameters(network.module_),
            fit_seconds=network.fit_seconds_,
        )
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


def _test_scores(estimator, X_test, y_test):
    if is_classifier(estimator):
        _require_targets(y_test, estimator)
        proba = estimator.predict_proba(X_test)
        # float32 softmax sums to 1 only within ~1e-7, which log_loss warns about.
        proba = proba / proba.sum(axis=1, keepdims=True)
        return {"test_accuracy": estimator.score(X_test, y_test),
                "test_log_loss": log_loss(y_test, proba, labels=estimator.classes_)}
    if is_regressor(estimator):
        _require_targets(y_test, estimator)
        predicted = estimator.predict(X_test)
        return {"test_r2": r2_score(y_test, predicted),
                "test_mse": mean_squared_error(y_test, predicted)}
    if hasattr(estimator, "inverse_transform"):
        X = np.asarray(X_test, dtype=float)
        rebuilt = np.asarray(estimator.inverse_transform(estimator.transform(X_test)), dtype=float)
        return {"test_mse": float(np.mean((rebuilt - X) ** 2))}
    raise TypeError(f"Cannot score {type(estimator).__name__} on a test set: it is neither "
                    "a classifier, a regressor nor a transformer with inverse_transform.")


def _require_targets(y_test, estimator):
    if y_test is None:
        raise ValueError(f"y_test is needed to score {type(estimator).__name__}; "
                         "pass the test targets.")


__all__ = ["compare"]
