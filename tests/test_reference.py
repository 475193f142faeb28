"""The NumPy oracle: its gradients, and the torch estimators' agreement with it."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sknets import MLPClassifier, MLPRegressor
from sknets.reference import (
    Adam,
    Momentum,
    NumpyMLPClassifier,
    NumpyMLPRegressor,
    forward,
    glorot_init,
    learning_rate,
    loss_and_gradients,
    softmax_cross_entropy,
    squared_error,
)
from sknets.reference.backprop import ACTIVATIONS

# Both sides compute on one thread: on networks this small a second BLAS or
# torch thread only adds synchronisation, and is several times slower on a
# busy machine.
TORCH_ONLY = {"n_threads": 1}


@pytest.fixture
def classification():
    X, y = make_classification(n_samples=256, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


def _twins(params, X, y, torch_cls=MLPClassifier, numpy_cls=NumpyMLPClassifier,
           validation_data=None):
    """Torch and NumPy estimators fitted from the same starting weights."""
    torch_net = torch_cls(**params, warm_start=True, **TORCH_ONLY).initialize(X, y)
    with threadpool_limits(limits=1):
        numpy_net = numpy_cls(**params, init_weights=torch_net).fit(
            X, y, validation_data=validation_data)
    torch_net.fit(X, y, validation_data=validation_data)
    return torch_net, numpy_net


# --- gradients ---------------------------------------------------------------


def _numeric_gradients(objective, layers, h=1e-6):
    """Central finite differences of ``objective()`` for every entry of every array."""
    numeric = []
    for array in (a for layer in layers for a in layer):
        grad = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            saved = array[i]
            array[i] = saved + h
            up = objective()
            array[i] = saved - h
            down = objective()
            array[i] = saved
            grad[i] = (up - down) / (2 * h)
        numeric.append(grad)
    return numeric


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_match_finite_differences(activation, l2, loss):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(7, 5))
    Y = np.eye(3)[rng.randint(3, size=7)] if loss == "cross_entropy" else rng.normal(size=(7, 3))
    layers = [(W, rng.normal(scale=0.1, size=b.shape)) for W, b in glorot_init([5, 6, 4, 3], rng)]

    def objective():  # the documented objective, written independently
        data_loss, _ = loss_and_gradients(X, Y, layers, activation, l2, loss)
        return data_loss + l2 / 2 * sum((W**2).sum() for W, _ in layers)

    _, analytic = loss_and_gradients(X, Y, layers, activation, l2, loss)
    analytic = np.concatenate([g.ravel() for pair in analytic for g in pair])
    numeric = np.concatenate([g.ravel() for g in _numeric_gradients(objective, layers)])
    relative_error = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert relative_error < 1e-6
    if l2:  # biases are not penalised: their gradients equal the unpenalised ones
        _, plain = loss_and_gradients(X, Y, layers, activation, 0.0, loss)
        _, penalised = loss_and_gradients(X, Y, layers, activation, l2, loss)
        np.testing.assert_array_equal(plain[0][1], penalised[0][1])


def test_losses_match_scikit_learn_metrics():
    rng = np.random.RandomState(0)
    logits, y = rng.normal(size=(20, 4)) * 3, rng.randint(4, size=20)
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    loss, _ = softmax_cross_entropy(logits, np.eye(4)[y])
    assert loss == pytest.approx(log_loss(y, proba, labels=range(4)), rel=1e-12)
    output, target = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    assert squared_error(output, target)[0] == pytest.approx(
        mean_squared_error(target, output), rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, grad = softmax_cross_entropy(np.array([[1e4, 0.0], [0.0, 1e4]]), np.eye(2))
    assert loss == 0.0
    assert np.isfinite(grad).all()


def test_optimizers_follow_their_formulas():
    # Momentum: v1 = g1, v2 = mu * v1 + g2; Adam's second step by hand.
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    w = np.zeros(2)
    opt = Momentum(0.9)
    opt.step([w], [g1], 0.1)
    opt.step([w], [g2], 0.1)
    np.testing.assert_allclose(w, -0.1 * g1 - 0.1 * (0.9 * g1 + g2))
    w = np.zeros(2)
    opt = Adam()
    opt.step([w], [g1], 0.1)
    opt.step([w], [g2], 0.1)
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    second = 0.1 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(w, -0.1 * np.sign(g1) - second, rtol=1e-6)


# --- equivalence with the torch estimators -----------------------------------

OPTIMIZER_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01}


@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("lr_schedule", ["constant", "linear", "exponential"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_torch_estimator_trains_like_the_oracle(classification, optimizer, lr_schedule, l2):
    X, y = classification
    lr = OPTIMIZER_LR[optimizer]
    decay = {"constant": {}, "linear": {"lr_decay": lr / 20, "lr_min": lr / 3},
             "exponential": {"lr_decay": 0.1}}[lr_schedule]
    # 256 samples in batches of 50: the last batch of each epoch has 6.
    params = dict(hidden_layers=(16, 8), optimizer=optimizer, lr=lr, momentum=0.8,
                  lr_schedule=lr_schedule, **decay, l2=l2, batch_size=50, max_epochs=15,
                  patience=None, shuffle=False, random_state=0)
    torch_net, numpy_net = _twins(params, X, y)
    np.testing.assert_allclose(torch_net.history_["train_loss"],
                               numpy_net.history_["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(torch_net.history_["lr"], numpy_net.history_["lr"], rtol=1e-9)
    np.testing.assert_allclose(torch_net.predict_proba(X), numpy_net.predict_proba(X),
                               atol=1e-4)
    # Training changed the loss: the agreement is not that of two idle nets.
    assert numpy_net.history_["train_loss"].iloc[-1] < 0.9 * numpy_net.history_["train_loss"][0]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activations_agree_with_torch(classification, activation):
    X, y = classification
    params = dict(hidden_layers=(12, 6), activation=activation, lr=0.01, batch_size=64,
                  max_epochs=10, patience=None, shuffle=False, random_state=1)
    torch_net, numpy_net = _twins(params, X, y)
    np.testing.assert_allclose(torch_net.history_["train_loss"],
                               numpy_net.history_["train_loss"], rtol=1e-4)


def test_early_stopping_and_best_weights_agree_with_torch():
    # Noisy labels and a large rate: the validation loss bottoms out early.
    # A large tol makes some improvements too small to reset the patience
    # counter, yet the weights kept are those of the lowest validation loss.
    X, y = make_classification(n_samples=400, n_features=20, n_informative=4, flip_y=0.3,
                               random_state=0)
    X = X.astype(np.float32)
    params = dict(hidden_layers=(64,), lr=1e-2, max_epochs=40, patience=8, tol=0.02,
                  early_stopping=True, validation_fraction=0.25, shuffle=False, random_state=0)
    torch_net, numpy_net = _twins(params, X, y)
    assert numpy_net.n_epochs_ < 40
    assert (torch_net.n_epochs_, torch_net.best_epoch_) == (numpy_net.n_epochs_,
                                                           numpy_net.best_epoch_)
    for column in ["train_loss", "valid_loss", "valid_accuracy"]:
        np.testing.assert_allclose(torch_net.history_[column], numpy_net.history_[column],
                                   rtol=1e-4)
    valid_loss = numpy_net.history_["valid_loss"].to_numpy()
    assert numpy_net.best_epoch_ == valid_loss.argmin() + 1 < numpy_net.n_epochs_
    np.testing.assert_allclose(torch_net.predict_proba(X), numpy_net.predict_proba(X),
                               atol=1e-4)


def test_tol_stopping_without_validation_agrees_with_torch(classification):
    X, y = classification
    params = dict(hidden_layers=(32,), lr=0.05, max_epochs=200, patience=3, tol=1e-2,
                  batch_size=64, shuffle=False, random_state=0)
    torch_net, numpy_net = _twins(params, X, y)
    assert torch_net.n_epochs_ == numpy_net.n_epochs_ < 200
    assert torch_net.best_epoch_ == numpy_net.best_epoch_


def test_regressor_agrees_with_torch():
    X, y = make_regression(n_samples=200, n_features=6, n_targets=2, noise=5.0, random_state=0)
    X, y = X.astype(np.float32), (y / y.std(0)).astype(np.float32)
    params = dict(hidden_layers=(16,), optimizer="momentum", lr=0.01, l2=0.01, batch_size=32,
                  max_epochs=10, patience=None, shuffle=False, random_state=0)
    torch_net, numpy_net = _twins(params, X, y, MLPRegressor, NumpyMLPRegressor,
                                  validation_data=(X[:40], y[:40]))
    for column in ["train_loss", "valid_loss", "valid_r2"]:
        np.testing.assert_allclose(torch_net.history_[column], numpy_net.history_[column],
                                   rtol=1e-4)
    np.testing.assert_allclose(torch_net.predict(X), numpy_net.predict(X), atol=1e-4)


# --- real data ---------------------------------------------------------------


@pytest.mark.slow
def test_mnist_accuracy_matches_torch(mnist_small):
    X, y, X_test, y_test = mnist_small
    params = dict(hidden_layers=(100,), lr=1e-3, batch_size=200, max_epochs=5, patience=None,
                  shuffle=False, random_state=0)
    torch_net, numpy_net = _twins(params, X, y)
    torch_accuracy = torch_net.score(X_test, y_test)
    numpy_accuracy = numpy_net.score(X_test, y_test)
    assert numpy_accuracy > 0.9
    assert abs(numpy_accuracy - torch_accuracy) <= 0.005


# --- the estimator -----------------------------------------------------------


def test_history_and_fitted_attributes(classification):
    X, y = classification
    clf = NumpyMLPClassifier(hidden_layers=(16, 8), lr=0.01, max_epochs=6, patience=None,
                             random_state=0).fit(X, y, validation_data=(X[:50], y[:50]))
    assert list(clf.history_.columns) == ["epoch", "train_loss", "valid_loss",
                                          "valid_accuracy", "lr", "seconds"]
    assert clf.history_["epoch"].tolist() == list(range(1, 7)) and clf.n_epochs_ == 6
    assert [W.shape for W in clf.coefs_] == [(16, 8), (8, 16), (3, 8)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    best = clf.history_.set_index("epoch").loc[clf.best_epoch_]
    assert best["valid_accuracy"] == pytest.approx(clf.score(X[:50], y[:50]))
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([3, 10, 42])])
def test_any_labels(classification, labels):
    X, y = classification
    clf = NumpyMLPClassifier(hidden_layers=(16,), lr=0.01, max_epochs=20,
                             random_state=0).fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, labels)
    assert clf.score(X, labels[y]) > 0.7


def test_lr_column_follows_the_schedule(classification):
    X, y = classification
    clf = NumpyMLPClassifier(hidden_layers=(8,), lr=0.05, lr_schedule="exponential",
                             lr_decay=0.5, lr_min=0.01, max_epochs=6, patience=None,
                             random_state=0).fit(X, y)
    expected = [max(0.05 * np.exp(-0.5 * t), 0.01) for t in range(6)]
    np.testing.assert_allclose(clf.history_["lr"], expected)
    assert learning_rate(3, 0.05, "linear", 0.02, 0.0) == 0.0


def test_random_state_and_shuffle(classification):
    X, y = classification
    params = dict(hidden_layers=(8,), lr=0.01, max_epochs=5, random_state=0)
    a = NumpyMLPClassifier(**params).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    unshuffled = NumpyMLPClassifier(**params, shuffle=False).fit(X, y)
    assert not np.allclose(a.history_["train_loss"], unshuffled.history_["train_loss"])


def test_float32_dtype(classification):
    X, y = classification
    clf = NumpyMLPClassifier(hidden_layers=(8,), lr=0.01, max_epochs=5, dtype="float32",
                             random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(X).dtype == np.float32
    wide = clone(clf).set_params(dtype=np.float64).fit(X, y)
    np.testing.assert_allclose(clf.history_["train_loss"], wide.history_["train_loss"],
                               rtol=1e-4)


def test_init_weights_sources_give_the_same_start(classification):
    X, y = classification
    torch_net = MLPClassifier(hidden_layers=(8,), random_state=3).initialize(X, y)
    pairs = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
             for m in torch_net.module_ if isinstance(m, torch.nn.Linear)]
    before = [W.copy() for W, _ in pairs]
    params = dict(hidden_layers=(8,), lr=0.01, max_epochs=3, shuffle=False)
    fits = [NumpyMLPClassifier(**params, init_weights=source).fit(X, y)
            for source in (torch_net, torch_net.module_, pairs)]
    for other in fits[1:]:
        np.testing.assert_array_equal(fits[0].predict_proba(X), other.predict_proba(X))
    for W, W_before in zip(pairs, before):
        np.testing.assert_array_equal(W[0], W_before)  # the caller's arrays are copied
    # A fitted NumPy estimator lends its weights too: with stateless SGD, two
    # 3-epoch runs are one run of 6 epochs.
    sgd = dict(params, optimizer="sgd")
    first = NumpyMLPClassifier(**sgd, init_weights=pairs).fit(X, y)
    continued = NumpyMLPClassifier(**sgd, init_weights=first).fit(X, y)
    straight = NumpyMLPClassifier(**dict(sgd, max_epochs=6), init_weights=pairs).fit(X, y)
    np.testing.assert_allclose(continued.predict_proba(X), straight.predict_proba(X))


@pytest.mark.parametrize("change, message", [
    ({"hidden_layers": (5,)}, "hidden_layers=\\(5,\\)"),
    ({"activation": "tanh"}, "activation=.tanh."),
])
def test_init_weights_must_match_the_estimator(classification, change, message):
    X, y = classification
    torch_net = MLPClassifier(hidden_layers=(8,)).initialize(X, y)
    params = dict(dict(hidden_layers=(8,), max_epochs=1, init_weights=torch_net), **change)
    with pytest.raises(ValueError, match=message):
        NumpyMLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("source, message", [
    (MLPClassifier(hidden_layers=(8,)), "call its initialize\\(X, y\\) or fit"),
    (MLPClassifier(hidden_layers=(8,), dropout=0.5), "Dropout layer"),
    ("weights.npz", "init_weights must be None, a list"),
])
def test_unusable_init_weights_are_explained(classification, source, message):
    X, y = classification
    if isinstance(source, MLPClassifier) and source.dropout:
        source.initialize(X, y)
    with pytest.raises(ValueError, match=message):
        NumpyMLPClassifier(hidden_layers=(8,), init_weights=source).fit(X, y)


@pytest.mark.parametrize("param, value", [
    ("activation", "gelu"), ("optimizer", "rmsprop"), ("lr_schedule", "cosine"),
    ("dtype", "int32"), ("lr", 0.0),
])
def test_unsupported_parameter_values(classification, param, value):
    X, y = classification
    with pytest.raises(ValueError, match=f"'{param}' parameter of NumpyMLPClassifier must be"):
        NumpyMLPClassifier(**{param: value}).fit(X, y)


def test_forward_matches_torch_module(classification):
    X, _ = classification
    torch_net = MLPRegressor(hidden_layers=(5, 4), activation="sigmoid").initialize(
        X, np.zeros((len(X), 2)))
    layers = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
              for m in torch_net.module_ if isinstance(m, torch.nn.Linear)]
    output, _ = forward(X.astype(np.float64), layers, "sigmoid")
    np.testing.assert_allclose(output, torch_net.predict(X), rtol=1e-5, atol=1e-6)


# --- scikit-learn compatibility ----------------------------------------------

CHECKED = [
    NumpyMLPClassifier(hidden_layers=(16,), lr=1e-2, max_epochs=30, random_state=0),
    NumpyMLPRegressor(hidden_layers=(16,), lr=1e-2, max_epochs=30, random_state=0),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_compatible(estimator, check):
    check(estimator)
