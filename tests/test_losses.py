"""The regressor's losses and the classifier's label smoothing: what each one fits, and
that the history records exactly the chosen criterion."""

from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import mean_poisson_deviance

from sknets import MLPClassifier, MLPRegressor
from sknets._engine.fused import FusedStep

LOSSES = ["squared_error", "absolute_error", "huber", "poisson"]
FAST = dict(lr=2e-2, random_state=0, n_threads=1)


def _by_hand(loss, y, predictions, delta=1.0):
    """Per-element loss of ``predictions`` (the regressor's, after the link) against ``y``."""
    residual = predictions - y
    if loss == "squared_error":
        return residual ** 2
    if loss == "absolute_error":
        return np.abs(residual)
    if loss == "huber":
        size = np.abs(residual)
        return np.where(size < delta, 0.5 * residual ** 2, delta * (size - 0.5 * delta))
    return predictions - y * np.log(predictions)  # poisson, on log(mean) = the output


def _regression_data(n=200, outputs=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    rate = np.exp(0.4 * X[:, :outputs] - 0.2)
    return X, rng.poisson(rate).astype(float)  # counts: every loss accepts them


# --- the history holds the chosen criterion --------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_train_loss_is_the_criterion_by_hand(loss, weighted):
    # One full batch at a vanishing learning rate: epoch 1's training loss is
    # the loss of the network that predict() runs.
    X, y = _regression_data()
    weight = np.random.RandomState(1).uniform(0, 2, len(y)) if weighted else None
    reg = MLPRegressor((8,), loss=loss, huber_delta=0.5, lr=1e-12, max_epochs=1,
                       batch_size=len(X), random_state=0, n_threads=1)
    reg.fit(X, y, sample_weight=weight)
    per_sample = _by_hand(loss, y, reg.predict(X), delta=0.5).mean(1)
    expected = np.average(per_sample, weights=weight)
    assert reg.history_["train_loss"].iloc[0] == pytest.approx(expected, rel=1e-5)
    if loss == "huber":  # both branches count in that number
        residual = np.abs(reg.predict(X) - y)
        assert (residual < 0.5).any() and (residual > 0.5).any()


@pytest.mark.parametrize("loss", LOSSES)
def test_valid_loss_and_r2_are_those_of_the_best_epochs_predictions(loss):
    X, y = _regression_data(n=300)
    reg = MLPRegressor((8,), loss=loss, max_epochs=8, **FAST)
    reg.fit(X[:200], y[:200], validation_data=(X[200:], y[200:]))
    predictions = reg.predict(X[200:])
    best = reg.history_.set_index("epoch").loc[reg.best_epoch_]
    assert best["valid_loss"] == pytest.approx(_by_hand(loss, y[200:], predictions).mean(),
                                               rel=1e-5)
    assert best["valid_r2"] == pytest.approx(reg.score(X[200:], y[200:]), abs=1e-5)


# --- what each loss fits ---------------------------------------------------------------


@pytest.fixture(scope="module")
def skewed_noise():
    """y = 2x + noise whose median is 0 and mean about 0.6 (log-normal, heavy right tail)."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (2000, 1))
    noise = np.exp(rng.normal(size=len(X))) - 1
    return X, 2 * X[:, 0] + noise, noise


def _offset(reg):
    """Mean of the fitted line minus the noise-free one, 2x, over [-1, 1]."""
    grid = np.linspace(-1, 1, 11)[:, None]
    return float(np.mean(reg.predict(grid) - 2 * grid[:, 0]))


def test_absolute_error_fits_the_median_and_squared_error_the_mean(skewed_noise):
    X, y, noise = skewed_noise
    offsets = {
        loss: _offset(MLPRegressor((), loss=loss, max_epochs=40, batch_size=100,
                                   **FAST).fit(X, y))
        for loss in ("squared_error", "huber", "absolute_error")
    }
    assert offsets["squared_error"] == pytest.approx(noise.mean(), abs=0.05)
    assert offsets["absolute_error"] == pytest.approx(np.median(noise), abs=0.05)
    # Huber is squared near the fit and linear in the tail: in between.
    assert offsets["absolute_error"] + 0.05 < offsets["huber"] < offsets["squared_error"] - 0.05


def test_huber_with_a_large_delta_is_half_the_squared_error(skewed_noise):
    X, y, _ = skewed_noise
    huber = MLPRegressor((), loss="huber", huber_delta=1e3, lr=1e-12, max_epochs=1,
                         batch_size=len(X), random_state=0).fit(X, y)
    squared = MLPRegressor((), lr=1e-12, max_epochs=1, batch_size=len(X),
                           random_state=0).fit(X, y)
    assert huber.history_["train_loss"].iloc[0] == pytest.approx(
        squared.history_["train_loss"].iloc[0] / 2, rel=1e-5)


def test_poisson_recovers_a_log_linear_rate_and_predicts_positive_means():
    rng = np.random.RandomState(0)
    X = rng.normal(scale=0.7, size=(3000, 2))
    rate = np.exp(0.3 + 0.8 * X[:, 0] - 0.5 * X[:, 1])
    y = rng.poisson(rate)
    poisson = MLPRegressor((), loss="poisson", max_epochs=40, batch_size=100, **FAST).fit(X, y)
    linear = poisson.module_[0]
    np.testing.assert_allclose(linear.weight.detach().numpy()[0], [0.8, -0.5], atol=0.08)
    assert linear.bias.item() == pytest.approx(0.3, abs=0.08)
    far = np.array([[-6.0, 6.0], [6.0, -6.0]])
    assert (poisson.predict(far) > 0).all()
    np.testing.assert_allclose(poisson.predict(X[:5]),
                               np.exp(linear(torch.tensor(X[:5], dtype=torch.float32))
                                      .detach().numpy()[:, 0]), rtol=1e-6)
    squared = MLPRegressor((), max_epochs=40, batch_size=100, **FAST).fit(X, y)
    assert mean_poisson_deviance(y, poisson.predict(X)) < mean_poisson_deviance(
        y, np.clip(squared.predict(X), 1e-3, None))


@pytest.mark.parametrize("loss", LOSSES)
def test_zero_weights_ignore_samples_with_every_loss(loss):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    clean = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    X2, y2 = np.r_[X, X], np.r_[clean, clean + 20]  # the second copy would shift every fit
    weight = np.r_[np.ones(len(X)), np.zeros(len(X))]
    reg = MLPRegressor((8,), loss=loss, max_epochs=40, batch_size=100, **FAST)
    reg.fit(X2, y2, sample_weight=weight)
    assert abs(reg.predict(X).mean() - clean.mean()) < 0.6
    unweighted = MLPRegressor((8,), loss=loss, max_epochs=40, batch_size=100, **FAST)
    assert unweighted.fit(X2, y2).predict(X).mean() > clean.mean() + 2


# --- refused before training -----------------------------------------------------------


def test_poisson_refuses_negative_targets_before_training():
    X, y = _regression_data()
    reg = MLPRegressor((8,), loss="poisson", max_epochs=2, **FAST)
    with mock.patch("sknets._engine.net.TensorNet.train_epochs") as train:
        with pytest.raises(ValueError, match="non-negative.*down to -1.*loss='squared_error'"):
            reg.fit(X, y - 1)
        with pytest.raises(ValueError, match="non-negative"):
            reg.fit(X, y, validation_data=(X, y - 1))
    train.assert_not_called()
    assert not hasattr(reg, "n_epochs_")
    MLPRegressor((8,), loss="huber", max_epochs=1, **FAST).fit(X, y - 1)  # others take them


def test_warm_start_refuses_another_loss():
    X, y = _regression_data()
    reg = MLPRegressor((8,), max_epochs=2, warm_start=True, **FAST).fit(X, y)
    before = reg.predict(X)
    reg.set_params(loss="poisson")
    with pytest.raises(ValueError, match="loss is 'poisson'.*built with loss='squared_error'"):
        reg.fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        reg.partial_fit(X, y)
    reg.set_params(loss="squared_error", huber_delta=3.0)  # huber_delta is a training setting
    np.testing.assert_array_equal(reg.predict(X), before)
    assert reg.fit(X, y).n_epochs_ == 4


def test_predictions_follow_the_fitted_loss_not_a_later_set_params():
    X, y = _regression_data()
    reg = MLPRegressor((8,), loss="poisson", max_epochs=2, **FAST).fit(X, y)
    before = reg.predict(X)
    reg.set_params(loss="squared_error")
    np.testing.assert_array_equal(reg.predict(X), before)
    assert (before > 0).all()


def test_unknown_loss_is_refused():
    X, y = _regression_data()
    with pytest.raises(ValueError, match="'loss' parameter.*'squared_error'.*'poisson'"):
        MLPRegressor(loss="quantile").fit(X, y)
    with pytest.raises(ValueError, match="'huber_delta' parameter"):
        MLPRegressor(huber_delta=0.0).fit(X, y)


# --- label smoothing -------------------------------------------------------------------


@pytest.fixture(scope="module")
def classes3():
    return make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                               class_sep=2.0, random_state=0)


@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_loss_is_torchs_rule_by_hand(classes3, weighted):
    X, y = classes3
    weight = np.random.RandomState(1).uniform(0, 2, len(y)) if weighted else None
    s = 0.2
    clf = MLPClassifier((8,), label_smoothing=s, lr=1e-12, max_epochs=1, batch_size=len(X),
                        random_state=0).fit(X, y, sample_weight=weight)
    log_proba = clf.predict_log_proba(X)
    per_sample = ((1 - s) * -log_proba[np.arange(len(y)), y] + s * -log_proba.mean(1))
    assert clf.history_["train_loss"].iloc[0] == pytest.approx(
        np.average(per_sample, weights=weight), rel=1e-5)


def test_label_smoothing_tempers_confidence(classes3):
    X, y = classes3
    sharp = MLPClassifier((16,), max_epochs=60, **FAST).fit(X, y)
    smooth = MLPClassifier((16,), max_epochs=60, label_smoothing=0.3, **FAST).fit(X, y)
    # The smoothed target of the true class is 1 - 0.3 + 0.1 = 0.8.
    assert sharp.predict_proba(X).max(1).mean() > 0.9
    assert smooth.predict_proba(X).max(1).mean() < 0.85
    assert smooth.score(X, y) > 0.9


def test_multiclass_training_is_todays_cross_entropy(classes3):
    # The classifier's criterion handles multi-label targets too; on class
    # indices it must train exactly as torch's CrossEntropyLoss does, on the
    # fused path and through autograd (batch_norm).
    X, y = classes3
    for extra in ({}, {"batch_norm": True}):
        clf = MLPClassifier((8,), max_epochs=3, **extra, **FAST)
        ours = clf.fit(X, y)
        history, proba = ours.history_.copy(), ours.predict_proba(X)
        with mock.patch.object(MLPClassifier, "_criterion",
                               return_value=torch.nn.CrossEntropyLoss()):
            torch_ce = clf.fit(X, y)
        np.testing.assert_array_equal(history["train_loss"], torch_ce.history_["train_loss"])
        np.testing.assert_array_equal(proba, torch_ce.predict_proba(X))


@pytest.mark.parametrize("estimator, target", [
    (MLPRegressor((8,), loss="absolute_error", max_epochs=2), "counts"),
    (MLPRegressor((8,), loss="huber", max_epochs=2), "counts"),
    (MLPRegressor((8,), loss="poisson", max_epochs=2), "counts"),
    (MLPRegressor((8,), max_epochs=2), "counts"),
    (MLPClassifier((8,), label_smoothing=0.1, max_epochs=2), "classes"),
])
def test_every_loss_trains_on_the_fused_path(estimator, target, classes3):
    X, y = classes3 if target == "classes" else _regression_data()
    with mock.patch.object(FusedStep, "__call__", autospec=True,
                           side_effect=FusedStep.__call__) as step:
        estimator.set_params(batch_size=100, random_state=0).fit(X, y)
    assert step.call_count == 2 * 3 if target == "classes" else 2 * 2
