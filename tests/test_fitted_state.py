"""One owner of the fitted state: saves describe the trained network, fits are transactions,
warm starts honour parameters, interrupts keep what ``best_epoch_`` names."""

import io
import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor, load
from sknets._engine.callbacks import EpochLog
from sknets.exceptions import DivergenceError, TrainingInterruptedWarning

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=4, random_state=0, n_threads=1)
_RNG = np.random.RandomState(0)
X = _RNG.normal(size=(90, 4))
Y_CLASSES = np.arange(90) % 3
Y_REGRESSION = X[:, 0] - 2 * X[:, 1]


def _weights(module):
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _same_weights(module, expected):
    state = module.state_dict()
    return state.keys() == expected.keys() and all(
        torch.equal(state[key], expected[key]) for key in state)


def _fitted_view(estimator):
    """What a user sees of a fitted estimator."""
    return dict(classes=getattr(estimator, "classes_", None), n_features=estimator.n_features_in_,
                epochs=estimator.n_epochs_, best=estimator.best_epoch_,
                history=estimator.history_.copy(), weights=_weights(estimator.module_))


def _assert_unchanged(estimator, view, X_seen, predictions):
    after = _fitted_view(estimator)
    assert np.array_equal(after["classes"], view["classes"]) if view["classes"] is not None \
        else after["classes"] is None
    assert (after["n_features"], after["epochs"], after["best"]) == (
        view["n_features"], view["epochs"], view["best"])
    assert after["history"].equals(view["history"])
    assert _same_weights(estimator.module_, view["weights"])
    assert np.array_equal(estimator.predict(X_seen), predictions)


def _round_trip(estimator):
    buffer = io.BytesIO()
    estimator.save(buffer)
    buffer.seek(0)
    return load(buffer)


# --- 1. save writes the network that exists ----------------------------------------


@pytest.mark.parametrize("change", [dict(hidden_layers=(32, 16)), dict(activation="tanh"),
                                    dict(dropout=0.5, batch_norm=True), dict(lr=0.5)])
def test_save_after_set_params_describes_the_trained_network(change):
    clf = MLPClassifier(**FAST).fit(X, Y_CLASSES)
    expected = clf.predict_proba(X)
    clf.set_params(**change)
    restored = _round_trip(clf)
    assert np.array_equal(restored.predict_proba(X), expected)
    assert restored.get_params()["hidden_layers"] == (8,)
    assert restored.get_params()["activation"] == "relu"
    # The estimator itself still predicts with the network it trained.
    assert np.array_equal(clf.predict_proba(X), expected)


def test_pickle_after_set_params_keeps_both_the_new_params_and_the_trained_network():
    reg = MLPRegressor(**FAST).fit(X, Y_REGRESSION)
    expected = reg.predict(X)
    reg.set_params(hidden_layers=(3,))
    copy = pickle.loads(pickle.dumps(reg))
    assert copy.hidden_layers == (3,)
    assert np.array_equal(copy.predict(X), expected)
    assert np.array_equal(_round_trip(copy).predict(X), expected)


# --- 2. fits are transactions ------------------------------------------------------------


@pytest.mark.parametrize("second_fit", [
    # New labels and features pass, then the validation set is refused.
    lambda est: est.fit(np.hstack([X, X]), np.arange(90) % 4,
                        validation_data=(X, Y_CLASSES)),
    # New labels, then an impossible batch-norm setting.
    lambda est: est.set_params(batch_norm=True, batch_size=1).fit(X, np.arange(90) % 5),
    # New features, then bad class weights.
    lambda est: est.set_params(class_weight={"no such label": 2.0}).fit(X[:, :2], Y_CLASSES),
    # Too few samples to hold out a stratified validation set.
    lambda est: est.set_params(early_stopping=True, validation_fraction=0.1).fit(
        X[:8, :3], [0, 0, 1, 1, 2, 2, 3, 3]),
], ids=["validation-data", "batch-norm", "class-weight", "holdout"])
def test_a_failed_fit_leaves_the_estimator_as_it_was(second_fit):
    clf = MLPClassifier(**FAST).fit(X, Y_CLASSES)
    view, predictions = _fitted_view(clf), clf.predict(X)
    with pytest.raises(ValueError):
        second_fit(clf)
    _assert_unchanged(clf, view, X, predictions)


def test_a_failed_first_fit_leaves_the_estimator_unfitted():
    clf = MLPClassifier(**FAST)
    with pytest.raises(ValueError):
        clf.fit(X, Y_CLASSES, validation_data=(X[:, :2], Y_CLASSES))
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "classes_")


def test_a_diverging_partial_fit_keeps_the_model_of_the_previous_call():
    reg = MLPRegressor(**FAST)
    for _ in range(3):
        reg.partial_fit(X, Y_REGRESSION)
    view, predictions = _fitted_view(reg), reg.predict(X)
    reg.set_params(optimizer="sgd", lr=1e6, batch_size=5)
    with pytest.raises(DivergenceError):
        reg.partial_fit(X, 1e4 * Y_REGRESSION)
    _assert_unchanged(reg, view, X, predictions)
    # Training goes on from there once the learning rate is sane again.
    reg.set_params(lr=1e-3).partial_fit(X, Y_REGRESSION)
    assert reg.n_epochs_ == 4


def test_partial_fit_refuses_other_classes_than_the_first_call_declared():
    clf = MLPClassifier(**FAST).partial_fit(X, Y_CLASSES, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"labels not seen at fit: \[7\]"):
        clf.partial_fit(X, Y_CLASSES, classes=[0, 1, 2, 7])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_epochs_ == 1


# --- 3. warm starts honour parameters -----------------------------------------------------


def test_warm_start_applies_a_new_learning_rate_and_schedule():
    clf = MLPClassifier(**dict(FAST, warm_start=True, patience=None)).fit(X, Y_CLASSES)
    clf.set_params(lr=0.05, max_epochs=2).fit(X, Y_CLASSES)
    assert clf.history_["lr"].tolist() == [0.01] * 4 + [0.05] * 2
    clf.set_params(lr_schedule="step", lr_step_size=1, lr_gamma=0.5, lr=0.1,
                   max_epochs=2).fit(X, Y_CLASSES)
    # The schedule runs on the epoch count: epochs 7 and 8 are t = 6 and 7.
    assert clf.history_["lr"].tolist()[-2:] == pytest.approx([0.1 * 0.5 ** 6, 0.1 * 0.5 ** 7])


def test_warm_start_with_another_optimizer_starts_a_fresh_optimizer_state():
    clf = MLPClassifier(**dict(FAST, warm_start=True)).fit(X, Y_CLASSES)
    assert isinstance(clf.net_.optimizer_, torch.optim.Adam)
    start = _weights(clf.module_)
    clf.set_params(optimizer="momentum", momentum=0.5, lr=0.0123, max_epochs=1)
    clf.fit(X, Y_CLASSES)
    optimizer = clf.net_.optimizer_
    assert isinstance(optimizer, torch.optim.SGD)
    assert {g["momentum"] for g in optimizer.param_groups} == {0.5}
    assert {round(g["lr"], 6) for g in optimizer.param_groups} == {0.0123}
    # Training continued from the previous weights.
    assert not _same_weights(clf.module_, start) and clf.n_epochs_ == 5


def test_warm_start_keeps_the_optimizer_state_when_the_optimizer_is_unchanged():
    clf = MLPClassifier(**dict(FAST, warm_start=True, max_epochs=1)).fit(X, Y_CLASSES)
    steps = [float(s["step"]) for s in clf.net_.optimizer_.state.values()]
    clf.fit(X, Y_CLASSES)
    assert [float(s["step"]) for s in clf.net_.optimizer_.state.values()] == [
        2 * step for step in steps]


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_warm_start_applies_a_new_penalty(penalty):
    plain = MLPRegressor(**dict(FAST, warm_start=True, optimizer="sgd")).fit(X, Y_REGRESSION)
    penalised = clone(plain).fit(X, Y_REGRESSION)
    plain.set_params(max_epochs=1).fit(X, Y_REGRESSION)
    penalised.set_params(max_epochs=1, **{penalty: 1.0}).fit(X, Y_REGRESSION)
    first_weight = next(iter(penalised.module_.parameters()))
    assert first_weight.abs().sum() < next(iter(plain.module_.parameters())).abs().sum()


@pytest.mark.parametrize("estimator, change", [
    (MLPClassifier, dict(hidden_layers=(5,))),
    (MLPClassifier, dict(activation="tanh")),
    (MLPClassifier, dict(dropout=0.3)),
    (MLPRegressor, dict(batch_norm=True)),
])
def test_warm_start_refuses_a_changed_network_by_name(estimator, change):
    y = Y_CLASSES if estimator is MLPClassifier else Y_REGRESSION
    est = estimator(**dict(FAST, warm_start=True)).fit(X, y)
    view, predictions = _fitted_view(est), est.predict(X)
    (name, value), = change.items()
    est.set_params(**change)
    with pytest.raises(ValueError, match=rf"{name} is {re.escape(repr(value))}, but the fitted "
                                         rf"network was built with {name}=.*set warm_start=False"):
        est.fit(X, y)
    _assert_unchanged(est, view, X, predictions)
    # Without warm_start the new network is trained from scratch.
    est.set_params(warm_start=False).fit(X, y)
    assert est.n_epochs_ == FAST["max_epochs"]


def test_partial_fit_refuses_a_changed_network():
    reg = MLPRegressor(**FAST).partial_fit(X, Y_REGRESSION)
    reg.set_params(hidden_layers=(2,))
    with pytest.raises(ValueError, match="partial_fit continues training that network"):
        reg.partial_fit(X, Y_REGRESSION)


# --- 4. an interrupt keeps the weights best_epoch_ names --------------------------------


def test_interrupt_while_an_epoch_line_prints_keeps_the_weights_best_epoch_names(
        monkeypatch, capsys):
    printed = EpochLog.on_epoch_end
    weights_at = {}

    def print_then_interrupt(self, net, **kwargs):
        printed(self, net, **kwargs)
        epoch = net.history[-1, "epoch"]
        weights_at[epoch] = _weights(net.module_)
        if epoch == 3:
            raise KeyboardInterrupt  # Ctrl-C as the line of epoch 3 is printed

    monkeypatch.setattr(EpochLog, "on_epoch_end", print_then_interrupt)
    clf = MLPClassifier(**dict(FAST, max_epochs=10, verbose=1))
    with pytest.warns(TrainingInterruptedWarning):
        clf.fit(X, Y_CLASSES, validation_data=(X, Y_CLASSES))
    history = clf.history_.set_index("epoch")
    assert clf.best_epoch_ == history["valid_loss"].idxmin()
    assert _same_weights(clf.module_, weights_at[clf.best_epoch_])


# --- the autoencoder owns its state the same way ---------------------------------------


def test_autoencoder_save_after_set_params_and_failed_fit():
    ae = AutoencoderTransformer(hidden_layers=(6,), code_size=2, **{
        k: v for k, v in FAST.items() if k != "hidden_layers"}).fit(X)
    codes = ae.transform(X)
    ae.set_params(code_size=3, loss="bce", output_activation="sigmoid")
    with pytest.raises(ValueError, match="loss='bce' needs inputs in"):
        ae.fit(X)
    assert np.array_equal(ae.transform(X), codes)
    assert np.array_equal(_round_trip(ae).transform(X), codes)


# --- callbacks ------------------------------------------------------------------------------


class _Rows(Callback):
    def on_train_begin(self, net, **kwargs):
        self.rows_ = []

    def on_epoch_end(self, net, **kwargs):
        self.rows_.append(dict(net.history[-1]))


def test_callbacks_see_every_epoch_and_are_left_out_of_saved_files():
    rows = _Rows()
    clf = MLPClassifier(**dict(FAST, callbacks=[("rows", rows)])).fit(
        X, Y_CLASSES, validation_data=(X, Y_CLASSES))
    assert [row["epoch"] for row in rows.rows_] == [1, 2, 3, 4]
    accuracies = [row["valid_accuracy"] for row in rows.rows_]
    assert accuracies == clf.history_["valid_accuracy"].tolist()
    restored = _round_trip(clf)
    assert restored.callbacks is None
    assert np.array_equal(restored.predict(X), clf.predict(X))
    assert clone(clf).callbacks[0][1] is not rows  # searches get copies


def test_a_callback_that_is_not_one_is_refused_by_position():
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be a skorch callback"):
        MLPRegressor(**dict(FAST, callbacks=[print])).fit(X, Y_REGRESSION)
