"""Bad input, diverging training and interrupted training, for every estimator."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

import sknets
from sknets import MLPClassifier, MLPRegressor
from sknets._base import BaseNetwork
from sknets._engine import build
from sknets._input import as_float
from sknets.exceptions import DivergenceError, DivergenceWarning, TrainingInterruptedWarning
from sknets._engine.modules import linear_layers

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=6, random_state=0)
# Every network estimator sknets exports: the rules hold for all of them.
ESTIMATORS = sorted((obj for name in sknets.__all__
                     if isinstance(obj := getattr(sknets, name), type)
                     and issubclass(obj, BaseNetwork)), key=lambda cls: cls.__name__)


def _data(estimator_class, n=60, n_features=3, seed=0):
    """(X, y) for the estimator's kind; an autoencoder ignores y, which is X here."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    if is_classifier(estimator_class()):
        return X, np.arange(n) % 3
    if is_regressor(estimator_class()):
        return X, X[:, 0] - 2 * X[:, 1]
    return X, X


def _predict(estimator, X):
    """Predictions, or codes for a transformer."""
    return (estimator.predict if hasattr(estimator, "predict") else estimator.transform)(X)


# --- callbacks injected into the skorch net -------------------------------------------


@pytest.fixture
def extra_callbacks(monkeypatch):
    """Callbacks appended to those sknets builds, for the next fits of this test."""
    extra = []
    stopping = build.stopping_callbacks
    monkeypatch.setattr(build, "stopping_callbacks",
                        lambda params, has_valid: stopping(params, has_valid) + extra)
    return extra


class AfterBatch(Callback):
    """Runs ``action(net)`` once, after training batch ``batch`` (from 1) of epoch ``epoch``."""

    def __init__(self, epoch, batch, action):
        self.epoch, self.batch, self.action = epoch, batch, action
        self.done = False

    def on_epoch_begin(self, net, **kwargs):
        self.seen = 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training and not self.done and len(net.history) == self.epoch:
            self.seen += 1
            if self.seen == self.batch:
                self.done = True
                self.action(net)


class Snapshots(Callback):
    """Copies of the weights at the end of every epoch, by epoch number."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, net, **kwargs):
        self.weights[net.history[-1, "epoch"]] = _weights(net.module_)


def _weights(module):
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _assert_same_weights(module, expected):
    for key, value in module.state_dict().items():
        assert torch.equal(value, expected[key]), key


def _interrupt(net):
    raise KeyboardInterrupt


def _poison(net):
    with torch.no_grad():
        linear_layers(net.module_)[0].weight.fill_(float("nan"))


# --- interrupts ----------------------------------------------------------------------


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_interrupt_keeps_best_weights_and_complete_history(extra_callbacks, estimator_class):
    X, y = _data(estimator_class)
    snapshots = Snapshots()
    extra_callbacks += [("snapshots", snapshots),
                        ("interrupt", AfterBatch(epoch=5, batch=2, action=_interrupt))]
    est = estimator_class(**dict(FAST, max_epochs=20, batch_size=16, tol=0.0))
    with pytest.warns(TrainingInterruptedWarning,
                      match=r"interrupted in epoch 5; the weights of epoch \d \(lowest "
                            r"validation loss\) were restored, and history_ holds the 4"):
        est.fit(X[:45], y[:45], validation_data=(X[45:], y[45:]))
    history = est.history_
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history[["train_loss", "valid_loss", "seconds"]].notna().all().all()
    assert est.n_epochs_ == 4
    assert est.best_epoch_ == history.set_index("epoch")["valid_loss"].idxmin()
    _assert_same_weights(est.module_, snapshots.weights[est.best_epoch_])
    assert np.isfinite(_predict(est, X).astype(float)).all()


def test_interrupt_without_validation_keeps_the_weights_of_that_moment(extra_callbacks):
    X, y = _data(MLPClassifier)
    at_interrupt = {}

    def interrupt(net):
        at_interrupt.update(_weights(net.module_))
        raise KeyboardInterrupt

    extra_callbacks.append(("interrupt", AfterBatch(epoch=3, batch=2, action=interrupt)))
    clf = MLPClassifier(**dict(FAST, batch_size=16))
    with pytest.warns(TrainingInterruptedWarning,
                      match="interrupted in epoch 3; the weights are those at the interruption"):
        clf.fit(X, y)
    assert clf.history_["epoch"].tolist() == [1, 2]
    _assert_same_weights(clf.module_, at_interrupt)
    # The estimator is usable: it predicts and trains on.
    assert set(clf.predict(X)) <= set(clf.classes_)
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.history_["epoch"].tolist() == list(range(1, 9))


def test_interrupt_in_the_first_epoch_leaves_an_empty_history(extra_callbacks):
    X, y = _data(MLPRegressor)
    extra_callbacks.append(("interrupt", AfterBatch(epoch=1, batch=1, action=_interrupt)))
    reg = MLPRegressor(**dict(FAST, batch_size=16))
    with pytest.warns(TrainingInterruptedWarning, match="history_ holds the 0 complete epochs"):
        reg.fit(X, y, validation_data=(X, y))
    assert len(reg.history_) == 0 and reg.n_epochs_ == 0 and reg.best_epoch_ == 0
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("validation", [True, False])
def test_early_stopping_is_not_reported_as_an_interrupt(validation):
    X, y = _data(MLPClassifier)
    clf = MLPClassifier(**dict(FAST, max_epochs=300, patience=2, tol=10.0,
                               early_stopping=validation))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        clf.fit(X, y)
    assert clf.n_epochs_ == 3  # no epoch improves by tol=10: stops after patience=2


# --- divergence ------------------------------------------------------------------------


def test_huge_learning_rate_raises_and_leaves_the_estimator_unfitted():
    X, y = _data(MLPRegressor)
    reg = MLPRegressor(hidden_layers=(8,), optimizer="sgd", lr=1e4, max_epochs=20,
                       random_state=0)
    with pytest.raises(DivergenceError, match=r"Training diverged in epoch \d+: the training "
                                              r"loss is (nan|inf).*lr=10000"):
        reg.fit(X, 100 * y)
    assert not hasattr(reg, "net_") and not hasattr(reg, "history_")
    with pytest.raises(NotFittedError):
        reg.predict(X)
    assert issubclass(DivergenceError, ValueError) and issubclass(DivergenceError,
                                                                  FloatingPointError)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_divergence_with_validation_restores_the_best_finite_epoch(extra_callbacks,
                                                                   estimator_class):
    X, y = _data(estimator_class)
    snapshots = Snapshots()

    def blow_up(net):
        for group in net.optimizer_.param_groups:
            group["lr"] = 1e12

    extra_callbacks += [("snapshots", snapshots), ("blow_up", AfterBatch(4, 1, blow_up))]
    est = estimator_class(**dict(FAST, max_epochs=20, batch_size=16, optimizer="sgd",
                                 lr=0.05))
    with pytest.warns(DivergenceWarning, match=r"Training diverged in epoch [45]: .* the "
                                               r"weights of epoch \d \(lowest validation"):
        est.fit(X[:45], y[:45], validation_data=(X[45:], y[45:]))
    history = est.history_.set_index("epoch")
    assert np.isfinite(history["train_loss"]).all()
    assert est.best_epoch_ == history["valid_loss"].idxmin() <= 4
    _assert_same_weights(est.module_, snapshots.weights[est.best_epoch_])
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    # The optimizer's NaN state is gone: training on starts afresh.
    assert not est.net_.optimizer_.state


def test_nan_validation_loss_never_counts_as_the_best(extra_callbacks):
    # NaN weights after the last step of epoch 3: its training loss is still
    # finite but its validation loss is NaN; epoch 4 then diverges.
    X, y = _data(MLPRegressor)
    snapshots = Snapshots()
    extra_callbacks += [("snapshots", snapshots), ("poison", AfterBatch(3, 3, _poison))]
    reg = MLPRegressor(**dict(FAST, batch_size=15, max_epochs=10))
    with pytest.warns(DivergenceWarning, match="epoch 4"):
        reg.fit(X[:45], y[:45], validation_data=(X[45:], y[45:]))
    history = reg.history_.set_index("epoch")
    assert np.isnan(history.loc[3, "valid_loss"])
    assert reg.best_epoch_ == history.loc[[1, 2], "valid_loss"].idxmin()
    _assert_same_weights(reg.module_, snapshots.weights[reg.best_epoch_])


def test_weights_broken_by_the_very_last_step_are_caught(extra_callbacks):
    X, y = _data(MLPRegressor)
    extra_callbacks.append(("poison", AfterBatch(2, 4, _poison)))
    reg = MLPRegressor(**dict(FAST, batch_size=15, max_epochs=2))
    with pytest.raises(DivergenceError, match="epoch 2: the weights or batch-norm "
                                              "statistics are not finite at its end"):
        reg.fit(X, y)


# --- input validation -----------------------------------------------------------------

_X = np.random.RandomState(0).normal(size=(30, 3))


# scikit-learn's float32 conversion of 1e39 warns before it refuses the result.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("estimator_class", ESTIMATORS)
@pytest.mark.parametrize("X, error, message", [
    (np.where(_X > 1, np.inf, _X), ValueError, "Input X contains infinity"),
    (_X * 1e39, ValueError, r"infinity or a value too large for dtype\('float32'\)"),
    (_X[:0], ValueError, r"Found array with 0 sample\(s\)"),
    (_X[:, :0], ValueError, r"Found array with 0 feature\(s\)"),
    (_X.reshape(30, 3, 1), ValueError, "Found array with dim 3"),
    (_X.astype(str).astype(object) + "x", ValueError, "could not convert string to float"),
    (_X + 1j, ValueError, "Complex data not supported"),
])
def test_bad_X_at_fit(estimator_class, X, error, message):
    _, y = _data(estimator_class, n=30)
    with pytest.raises(error, match=message):
        estimator_class(**FAST).fit(X, y[:X.shape[0]])


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_missing_values_and_sparse_X_at_fit(estimator_class):
    # The classifier and the regressor impute NaN (or refuse it with
    # missing_values="error") and train on sparse matrices; the autoencoder
    # refuses both, with scikit-learn's messages.
    _, y = _data(estimator_class, n=30)
    with_nan = np.where(_X > 1, np.nan, _X)
    if not estimator_class._table_input:
        with pytest.raises(ValueError, match="Input X contains NaN"):
            estimator_class(**FAST).fit(with_nan, y)
        with pytest.raises(TypeError, match=r"Sparse data was passed.*\.toarray\(\)"):
            estimator_class(**FAST).fit(sp.csr_matrix(_X), y)
        return
    with pytest.raises(ValueError, match=r"X has missing values \(NaN\) in columns \['column "
                                         r"0', 'column 1', 'column 2'\]\. Impute them first"):
        estimator_class(**FAST, missing_values="error").fit(with_nan, y)
    assert estimator_class(**FAST).fit(with_nan, y).n_features_in_ == 3
    assert estimator_class(**FAST).fit(sp.csr_matrix(_X), y).n_features_in_ == 3


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_bad_X_at_predict(estimator_class):
    X, y = _data(estimator_class)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = estimator_class(**FAST).fit(frame, y)
    name = estimator_class.__name__
    with pytest.raises(ValueError, match=f"X has 2 features, but {name} is expecting 3"):
        _predict(est, X[:, :2])
    with pytest.raises(ValueError, match="The feature names should match those that were "
                                         "passed during fit"):
        _predict(est, frame.rename(columns={"a": "z"}))
    # A numeric DataFrame is standardised inside the classifier and the
    # regressor (an encoder of its columns), which imputes NaN at predict.
    if estimator_class._table_input:
        assert np.isfinite(_predict(est, frame.iloc[:2] * np.nan)).all()
    else:
        with pytest.raises(ValueError, match="Input X contains NaN"):
            _predict(est, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        _predict(est, X[:0])
    # Finite float32 inputs can still overflow inside the network: with unit
    # weights, 3e38 * 3 features is beyond float32's range.
    with torch.no_grad():
        linear_layers(est.module_)[0].weight.fill_(1.0)
    # (The classifier and the regressor standardise the DataFrame's columns
    # first: about 3.1e38 then.)
    with pytest.raises(ValueError, match=r"outputs are not finite .*up to 3(\.\d+)?e\+38 "
                                         r"here\) overflow float32"):
        _predict(est, np.full((2, 3), 3e38))


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_object_arrays_of_numbers_are_converted(estimator_class):
    X, y = _data(estimator_class)
    plain = estimator_class(**FAST).fit(X, y)
    boxed = estimator_class(**FAST).fit(X.astype(object), y)
    np.testing.assert_array_equal(_predict(boxed, X.astype(object)), _predict(plain, X))


@pytest.mark.parametrize("y, message", [
    (np.ones(30), "only one class"),
    (np.array(["a", 1] * 15, dtype=object), r"y mixes labels of types \['int', 'str'\]"),
    (np.linspace(0, 1, 30), "Unknown label type: continuous"),
    (np.where(np.arange(30) % 2, 1.0, np.nan), "Input y contains NaN"),
    # 0/1 columns are multi-label targets; several multi-class columns are not.
    (np.c_[np.arange(30) % 3, np.arange(30) % 2], "y of shape \\(30, 2\\) is "
                                                  "multiclass-multioutput"),
])
def test_bad_labels(y, message):
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**FAST).fit(_X, y)


def test_labels_unseen_at_fit_in_partial_fit_and_validation_data():
    clf = MLPClassifier(**FAST).partial_fit(_X, np.arange(30) % 2)
    with pytest.raises(ValueError, match=r"labels not seen at fit: \['1', 'cat'\]"):
        clf.partial_fit(_X[:2], np.array(["1", "cat"]))
    with pytest.raises(ValueError, match=r"labels not seen at fit: \[2\]"):
        MLPClassifier(**FAST).fit(_X, np.arange(30) % 2, validation_data=(_X, np.arange(30) % 3))


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, bool, np.float64])
def test_labels_of_every_dtype_index_the_same_classes(dtype):
    # Integer and bool labels take a shorter path than the others (no
    # type_of_target pass); every dtype must give the same classes, indices
    # and refusals of unseen labels.
    from sknets._input import fit_labels, label_index

    y = (np.arange(30) % 3 == 0) if dtype is bool else (np.arange(30) * 7 % 5 + 1)
    y = y.astype(dtype)
    classes = fit_labels(y)
    np.testing.assert_array_equal(classes.astype(float), np.unique(y.astype(float)))
    index = label_index(y, classes)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(classes[index], y)
    if dtype is not bool:
        unseen = np.array([1, 9, 0]).astype(dtype)
        with pytest.raises(ValueError, match=r"labels not seen at fit: \[0(\.0)?, 9(\.0)?\]"):
            label_index(unseen, classes)
    with pytest.raises(ValueError, match="Unknown label type"):
        fit_labels(np.arange(30) / 7)


@pytest.mark.parametrize("y, error, message", [
    (np.full(30, 1e39), ValueError, r"y has values up to 1e\+39 in magnitude, beyond the "
                                    r"range of float32"),
    (np.where(np.arange(30) % 2, 1e30, 0.0), DivergenceError,
     r"epoch 1: the training loss is inf.*scale the inputs, and a regressor's targets"),
    (np.array(["a", "b"] * 15), ValueError, "y must be numeric; got an array of dtype <U1"),
    (np.where(np.arange(30) % 2, 1.0, np.inf), ValueError, "Input y contains infinity"),
])
def test_bad_regression_targets(y, error, message):
    with pytest.raises(error, match=message):
        MLPRegressor(**FAST).fit(_X, y)


def test_bad_sample_weight():
    with pytest.raises(ValueError, match="Input sample_weight contains NaN"):
        MLPClassifier(**FAST).fit(_X, np.arange(30) % 2, sample_weight=np.full(30, np.nan))
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        MLPClassifier(**FAST).fit(_X, np.arange(30) % 2, sample_weight=np.full(30, -1.0))


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_batch_norm_and_single_sample_batches(estimator_class):
    X, y = _data(estimator_class, n=33)
    # 33 = 2 * 16 + 1: the last sample is folded into the second batch.
    est = estimator_class(**dict(FAST, batch_norm=True, batch_size=16)).fit(X, y)
    assert est.n_epochs_ == 6
    one = estimator_class(**dict(FAST, batch_norm=True))
    with pytest.raises(ValueError, match="batch_norm=True needs mini-batches of at least 2 "
                                         "samples; got batch_size=200 and 1 training samples"):
        if is_classifier(one):
            one.partial_fit(X[:1], y[:1], classes=np.unique(y))
        else:
            one.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="got batch_size=1 and 33 training samples"):
        estimator_class(**dict(FAST, batch_norm=True, batch_size=1)).fit(X, y)


def test_float64_beyond_float32_range_never_reaches_torch():
    with pytest.raises(ValueError, match=r"y has values up to 1e\+39 in magnitude"):
        MLPRegressor(**FAST).fit(_X, np.full(len(_X), 1e39))
    with pytest.raises(ValueError, match=r"X has values up to 1e\+39 in magnitude"):
        as_float(np.array([[1.0, 1e39]]))
    assert as_float(np.array([[1.0, 3e38]])).dtype == np.float32


@pytest.mark.parametrize("early_stopping", [True, False])
def test_overflowing_batch_norm_statistics_are_caught(early_stopping):
    # Found by the property tests: the variance of 1e30 overflows float32, so
    # running_var is inf from the first epoch on while the loss stays finite;
    # no epoch has finite weights to restore.
    X, y = np.array([[0.0], [1e30], [1e30]]), np.zeros(3)
    reg = MLPRegressor(hidden_layers=(4,), batch_norm=True, batch_size=2, max_epochs=3,
                       early_stopping=early_stopping, random_state=0)
    with pytest.raises(DivergenceError, match="batch-norm statistics are not finite"):
        reg.fit(X, y)
