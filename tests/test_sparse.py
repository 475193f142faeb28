"""Sparse inputs: trained batch by batch, densified one batch at a time, as the dense array."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sknets import MLPClassifier, MLPRegressor
from sknets._engine import sparse
from sknets._engine.sparse import SparseData, rows_per_chunk

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=4, batch_size=16, random_state=0,
            n_threads=1)


def _data(estimator_class, n=90, n_features=40, seed=0):
    X = sp.random(n, n_features, density=0.1, format="csr", random_state=seed,
                  dtype=np.float64)
    rng = np.random.RandomState(seed)
    if estimator_class is MLPClassifier:
        return X, rng.choice(["a", "b", "c"], size=n)
    return X, np.asarray(X.sum(axis=1)).ravel() + rng.normal(size=n)


def _predictions(estimator, X):
    method = estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    return method(X)


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
@pytest.mark.parametrize("extra", [{}, {"early_stopping": True, "shuffle": False}])
def test_sparse_trains_the_model_the_dense_array_trains(estimator_class, container, extra):
    X, y = _data(estimator_class)
    weights = np.random.RandomState(1).uniform(0.5, 2, size=len(y))
    on_sparse = estimator_class(**FAST, **extra).fit(container(X), y, sample_weight=weights)
    on_dense = estimator_class(**FAST, **extra).fit(X.toarray(), y, sample_weight=weights)
    assert on_sparse._fitted.tables is None
    columns = ["epoch", "train_loss", "valid_loss", "lr"]
    np.testing.assert_array_equal(on_sparse.history_[columns], on_dense.history_[columns])
    np.testing.assert_array_equal(_predictions(on_sparse, container(X)),
                                  _predictions(on_dense, X.toarray()))
    # A sparse-trained model predicts dense arrays, and the reverse.
    np.testing.assert_array_equal(_predictions(on_dense, X), _predictions(on_sparse, X.toarray()))


def test_validation_data_and_partial_fit_take_sparse_matrices():
    X, y = _data(MLPClassifier)
    clf = MLPClassifier(**FAST).fit(X[:60], y[:60], validation_data=(X[60:], y[60:]))
    dense = MLPClassifier(**FAST).fit(X[:60].toarray(), y[:60],
                                      validation_data=(X[60:].toarray(), y[60:]))
    np.testing.assert_array_equal(clf.history_["valid_loss"], dense.history_["valid_loss"])
    reg = MLPRegressor(**FAST)
    X, y = _data(MLPRegressor)
    reg.partial_fit(X[:45], y[:45]).partial_fit(X[45:], y[45:])
    assert reg.n_epochs_ == 2


def test_prediction_densifies_chunk_by_chunk(monkeypatch):
    X, y = _data(MLPRegressor, n=50)
    reg = MLPRegressor(**FAST).fit(X, y)
    whole = reg.predict(X)
    sizes = []
    densify = sparse._dense

    def recorded(rows, device):
        sizes.append(rows.shape[0])
        return densify(rows, device)

    monkeypatch.setattr(sparse, "_dense", recorded)
    monkeypatch.setattr(sparse, "rows_per_chunk", lambda n_features: 7)
    chunked = reg.predict(X)
    assert sizes == [7] * 7 + [1]
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)


def test_an_evaluation_batch_stays_within_64_mb():
    assert rows_per_chunk(50_000) * 50_000 * 4 <= 64 * 2**20
    assert rows_per_chunk(10**9) == 1
    data = SparseData(sp.random(10, 50_000, density=0.001, format="csr", dtype=np.float32),
                      torch.zeros(10), None, "cpu")
    assert data.eval_batch_size == rows_per_chunk(50_000) and len(data) == 10
    X, (y, weight) = data.batch(slice(2, 5))
    assert X.shape == (3, 50_000) and X.dtype == torch.float32 and weight is None


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_missing_values_in_sparse_input_are_refused(estimator_class):
    X, y = _data(estimator_class)
    X = X.copy()
    X.data[3] = np.nan
    column = X.indices[3]
    for missing_values in ("impute", "error"):
        with pytest.raises(ValueError, match=rf"X is a sparse matrix with missing values \(NaN\) "
                                             rf"in columns \['column {column}'\]\. Missing values "
                                             "in sparse input are not imputed"):
            estimator_class(**FAST, missing_values=missing_values).fit(X, y)
    fitted = estimator_class(**FAST).fit(_data(estimator_class)[0], y)
    with pytest.raises(ValueError, match="sparse matrix with missing values"):
        fitted.predict(X)


def test_sparse_input_refuses_table_settings():
    X, y = _data(MLPClassifier)
    with pytest.raises(ValueError, match="categorical_features selects columns, but X is a "
                                         "sparse matrix"):
        MLPClassifier(**FAST, categorical_features=[0]).fit(X, y)
    dense = np.where(np.arange(40) == 0, np.nan, X.toarray())
    clf = MLPClassifier(**FAST).fit(dense, y)  # imputes: its input goes through an encoder
    with pytest.raises(ValueError, match="X is a sparse matrix, but MLPClassifier was fitted "
                                         "on a table"):
        clf.predict(X)
