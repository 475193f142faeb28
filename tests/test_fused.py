"""The fused training step agrees with autograd, and covers what it claims."""

from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sknets import MLPClassifier, MLPRegressor
from sknets._engine.fused import FusedStep
from sknets._engine.modules import MLP


@pytest.fixture
def data():
    X, y = make_classification(n_samples=600, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    return X, y, weight


def _fit_both(estimator, X, y, **fit_params):
    fused = estimator.fit(X, y, **fit_params)
    fused_history, fused_out = fused.history_.copy(), _outputs(fused, X)
    with mock.patch.object(FusedStep, "build", return_value=None):
        eager = estimator.fit(X, y, **fit_params)
    return fused_history, fused_out, eager.history_, _outputs(eager, X)


def _outputs(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X)


@pytest.mark.parametrize("params", [
    {},
    {"dropout": 0.3},
    {"activation": "tanh", "hidden_layers": (16, 8)},
    {"activation": "sigmoid", "l2": 0.01},
    {"activation": "identity"},
    {"hidden_layers": ()},
    {"optimizer": "momentum", "lr": 0.05},
])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_step_matches_autograd(data, params, weighted):
    X, y, weight = data
    clf = MLPClassifier(**{"hidden_layers": (32,), "max_epochs": 5, "random_state": 0, **params})
    fused_h, fused_p, eager_h, eager_p = _fit_both(
        clf, X, y, sample_weight=weight if weighted else None)
    np.testing.assert_allclose(fused_h["train_loss"], eager_h["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(fused_p, eager_p, atol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_fused_step_matches_autograd_for_regression(data, weighted):
    X, _, weight = data
    y = np.c_[X[:, 0] + X[:, 1], X[:, 2] ** 2]
    reg = MLPRegressor(hidden_layers=(32,), dropout=0.1, max_epochs=5, random_state=0)
    fused_h, fused_p, eager_h, eager_p = _fit_both(
        reg, X, y, sample_weight=weight if weighted else None)
    np.testing.assert_allclose(fused_h["train_loss"], eager_h["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(fused_p, eager_p, atol=1e-5)


def test_plain_mlp_trains_through_the_fused_step(data):
    X, y, _ = data
    with mock.patch.object(FusedStep, "__call__", autospec=True,
                           side_effect=FusedStep.__call__) as step:
        MLPClassifier(hidden_layers=(8,), max_epochs=2, batch_size=100, random_state=0).fit(X, y)
    assert step.call_count == 12  # 2 epochs x 6 batches


@pytest.mark.parametrize("module, criterion, penalty", [
    (MLP(4, (8,), 2, batch_norm=True), torch.nn.CrossEntropyLoss(), None),
    (MLP(4, (8,), 2, activation="gelu"), torch.nn.CrossEntropyLoss(), None),
    (MLP(4, (8,), 2), torch.nn.BCEWithLogitsLoss(), None),
    (MLP(4, (8,), 2), torch.nn.CrossEntropyLoss(label_smoothing=0.1), None),
    (MLP(4, (8,), 2), torch.nn.CrossEntropyLoss(), lambda module: 0.0),
    (MLP(4, (8,), 2, output_activation="sigmoid"), torch.nn.MSELoss(), None),
])
def test_other_networks_fall_back_to_autograd(module, criterion, penalty):
    assert FusedStep.build(module, criterion, penalty) is None


def test_unsupported_networks_still_train(data):
    X, y, _ = data
    clf = MLPClassifier(hidden_layers=(16,), batch_norm=True, activation="gelu", l1=1e-4,
                        max_epochs=5, random_state=0).fit(X, y)
    assert clf.history_["train_loss"].iloc[-1] < clf.history_["train_loss"].iloc[0]
