"""``NumpyMLPClassifier`` and ``NumpyMLPRegressor``: the training loop as estimators."""

import time
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._input import encode_labels, encode_outputs, stratify_labels
from .._params import InstanceOf, Interval, LayerWidths, Options, as_widths, validate_params
from .._input.splits import holdout_indices
from .backprop import ACTIVATIONS, LOSSES, forward, log_softmax, loss_and_gradients
from .training import (
    OPTIMIZERS,
    SCHEDULES,
    Patience,
    glorot_init,
    learning_rate,
    make_optimizer,
    minibatches,
)

# --- Reading init_weights ----------------------------------------------------

def _layers_from_torch(module, activation):
    """``(W, b)`` arrays of a torch feed-forward module's ``nn.Linear`` layers."""
    import torch  # only to read the weights; no torch math is used here

    names = {torch.nn.ReLU: "relu", torch.nn.Sigmoid: "sigmoid", torch.nn.Tanh: "tanh"}
    layers, found = [], set()
    for part in module.modules():
        if isinstance(part, torch.nn.Linear):
            if part.bias is None:
                raise ValueError("init_weights has a Linear layer without bias; "
                                 "NumpyMLP estimators need a bias in every layer.")
            layers.append((part.weight.detach().cpu().numpy(), part.bias.detach().cpu().numpy()))
        elif type(part) in names:
            found.add(names[type(part)])
        elif not (part is module or isinstance(part, (torch.nn.Sequential, torch.nn.Identity))
                  or (isinstance(part, torch.nn.Dropout) and part.p == 0)):
            raise ValueError(
                f"init_weights contains a {type(part).__name__} layer, which NumpyMLP "
                "estimators do not reproduce; use a network of Linear layers and one "
                "activation (e.g. MLPClassifier with dropout=0 and batch_norm=False).")
    if found - {activation}:
        raise ValueError(f"init_weights uses the activation {sorted(found)}, but "
                         f"activation={activation!r}; set activation to match.")
    return layers


def _starting_layers(source, activation):
    """``init_weights`` as a list of ``(W, b)`` arrays (not yet copied)."""
    if isinstance(source, _NumpyNetwork):
        check_is_fitted(source)
        return list(zip(source.coefs_, source.intercepts_))
    if hasattr(source, "get_params"):  # a sknets torch estimator
        if not hasattr(source, "module_"):
            raise ValueError(
                f"init_weights is a {type(source).__name__} without weights: call its "
                "initialize(X, y) or fit(X, y) first. (clone() drops fitted state: to "
                "survive cloning pass estimator.module_ or a list of (W, b) instead.)")
        source = source.module_
    if hasattr(source, "named_parameters"):
        return _layers_from_torch(source, activation)
    try:
        return [(np.asarray(W), np.asarray(b)) for W, b in source]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "init_weights must be None, a list of (W, b) pairs with W of shape "
            "(n_out, n_in), a torch module, or a fitted/initialized sknets estimator; "
            f"got {type(source).__name__}.") from exc


class _FloatDtype:
    def __call__(self, value):
        try:
            return np.dtype(value).kind == "f"
        except TypeError:
            return False

    def __str__(self):
        return "a floating-point dtype such as np.float64 or 'float32'"


# --- The estimators ----------------------------------------------------------

# The torch estimators' ranges for the parameters both have, with the choices
# narrowed to what is written out here. A table of its own, so that the oracle
# does not import the estimators it checks; tests/test_architecture.py pins
# the ranges and defaults to the torch estimators'.
_CONSTRAINTS = {
    "hidden_layers": [LayerWidths()],
    "activation": [Options(*ACTIVATIONS)],
    "l2": [Interval(Real, 0, None)],
    "optimizer": [Options(*OPTIMIZERS)],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "batch_size": [Interval(Integral, 1, None)],
    "shuffle": [Options(True, False)],
    "max_epochs": [Interval(Integral, 1, None)],
    "lr_schedule": [Options(*SCHEDULES)],
    "lr_decay": [Interval(Real, 0, None)],
    "lr_min": [Interval(Real, 0, None)],
    "early_stopping": [Options(True, False)],
    "patience": [Interval(Integral, 1, None), Options(None)],
    "tol": [Interval(Real, 0, None)],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "dtype": [_FloatDtype()],
    "random_state": [Interval(Integral, 0, 2**32 - 1), Options(None),
                     InstanceOf(np.random.RandomState)],
}

_PARAMETERS_DOC = """hidden_layers : tuple of int, default=(100,)
        Width of each hidden layer; ``()`` is a linear model.
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
        Non-linearity after each hidden layer.
    l2 : float, default=0.0
        The objective of a mini-batch is ``data_loss + l2 / 2 * sum(W ** 2)``
        over the weight matrices (biases not penalised): ``l2 * W`` is added
        to each weight gradient before the optimizer's step.
        ``history_["train_loss"]`` reports ``data_loss`` alone.
    optimizer : {"sgd", "momentum", "adam"}, default="adam"
        :class:`GradientDescent`, :class:`Momentum` or :class:`Adam`.
    lr : float, default=1e-3
        Initial learning rate η0.
    momentum : float in [0, 1), default=0.9
        μ of "momentum"; ignored by the other optimizers.
    batch_size : int, default=200
        Mini-batch size, capped at the number of training samples.
    shuffle : bool, default=True
        Draw a new batch order every epoch; False takes consecutive slices
        of the training data in order.
    max_epochs : int, default=200
        Passes over the training data (the most, when stopping early).
    lr_schedule : {"constant", "linear", "exponential"}, default="constant"
        Rate of epoch ``t`` (``t = 0`` first), see :func:`learning_rate`.
    lr_decay : float, default=0.0
        Slope of "linear", rate of "exponential".
    lr_min : float, default=0.0
        Floor of "linear" and "exponential".
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for the
        classifier) unless ``fit`` gets ``validation_data``, and stop when
        the validation loss has not improved by more than ``tol`` for
        ``patience`` epochs. Whenever there is a validation set, the weights
        of the epoch with the lowest validation loss are restored at the end.
    patience : int or None, default=10
        Epochs without improvement before stopping. Without a validation
        set, training stops when the training loss has not improved by more
        than ``tol`` for ``patience`` epochs; None always trains
        ``max_epochs`` epochs.
    tol : float, default=1e-4
        Smallest loss decrease that counts as an improvement.
    validation_fraction : float in (0, 1), default=0.1
        Share of the data held out when ``early_stopping=True``.
    init_weights : None, list of (W, b), torch module or sknets estimator, default=None
        Starting weights. None draws them from ``random_state`` as the
        torch estimators do: Glorot-uniform weights and zero biases
        (:func:`glorot_init`). A list gives ``W`` of shape (n_out, n_in) and
        ``b`` for each layer. A torch module (made of ``Linear`` layers and
        the same activation) or an sknets estimator that has been fitted or
        built with ``initialize(X, y)`` lends its weights, which are copied.
        The shapes must match ``hidden_layers`` and the data.
    dtype : floating dtype, default=np.float64
        Precision of the data, weights and arithmetic.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split (the same split as the torch estimators
        for the same int), the starting weights and the batch order."""

_ATTRIBUTES_DOC = """n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    coefs_ : list of ndarray
        Weight matrix of each layer, shape (n_out, n_in) as torch's
        ``nn.Linear.weight`` (the transpose of scikit-learn's ``coefs_``).
    intercepts_ : list of ndarray
        Bias of each layer.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``train_loss``, ``valid_loss``,
        ``valid_{score}`` (NaN without a validation set), ``lr``, ``seconds``.
    best_epoch_ : int
        Epoch of the lowest validation loss (training loss without a
        validation set); with a validation set, the weights are this epoch's.
    n_epochs_ : int
        Epochs trained.
    fit_seconds_ : float
        Wall-clock seconds of ``fit``."""


class _NumpyNetwork(BaseEstimator):
    """Training loop shared by the NumPy classifier and regressor."""

    _parameter_constraints = _CONSTRAINTS
    _loss = None  # key of LOSSES
    _score_name = None  # the validation score's column, after "valid_"

    def __init__(self, hidden_layers=(100,), *, activation="relu", l2=0.0, optimizer="adam",
                 lr=1e-3, momentum=0.9, batch_size=200, shuffle=True, max_epochs=200,
                 lr_schedule="constant", lr_decay=0.0, lr_min=0.0, early_stopping=False,
                 patience=10, tol=1e-4, validation_fraction=0.1, init_weights=None,
                 dtype=np.float64, random_state=None):
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.l2 = l2
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_min = lr_min
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.init_weights = init_weights
        self.dtype = dtype
        self.random_state = random_state

    # Subclass hooks: targets as the matrix Y the loss expects, and a score.
    def _encode_targets(self, y, reset):
        raise NotImplementedError

    def _score_outputs(self, output, Y):
        raise NotImplementedError

    def _validate_kwargs(self):
        return {}

    def fit(self, X, y, validation_data=None):
        """Train the network from its starting weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        validation_data : tuple (X_val, y_val), default=None
            Validation set monitored every epoch, used instead of holding out
            ``validation_fraction`` of ``X``.

        Returns
        -------
        self
        """
        validate_params(self)
        dtype = np.dtype(self.dtype)
        X, y = validate_data(self, X, y, dtype=dtype, **self._validate_kwargs())
        Y, strata = self._encode_targets(y, reset=True)
        # Drawn as the torch estimators draw it, so the same int holds out
        # the same validation samples.
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        rng = np.random.RandomState(seed)
        X, Y, valid = self._validation_split(X, Y, strata, validation_data, rng)
        layers = self._initial_layers(X.shape[1], Y.shape[1], rng, dtype)
        start = time.perf_counter()
        layers, rows = self._train(X, Y, valid, layers, rng)
        self.fit_seconds_ = time.perf_counter() - start
        self.coefs_ = [W for W, _ in layers]
        self.intercepts_ = [b for _, b in layers]
        columns = ["epoch", "train_loss", "valid_loss", f"valid_{self._score_name}", "lr",
                   "seconds"]
        self.history_ = pd.DataFrame(rows, columns=columns)
        monitored = self.history_["train_loss" if valid is None else "valid_loss"].to_numpy()
        self.best_epoch_ = int(np.argmin(monitored)) + 1
        self.n_epochs_ = len(rows)
        return self

    def _validation_split(self, X, Y, strata, validation_data, rng):
        """(X_train, Y_train, (X_valid, Y_valid) or None)."""
        if validation_data is not None:
            X_val, y_val = validation_data
            X_val, y_val = validate_data(self, X_val, y_val, reset=False,
                                         dtype=np.dtype(self.dtype), **self._validate_kwargs())
            return X, Y, (X_val, self._encode_targets(y_val, reset=False)[0])
        if not self.early_stopping:
            return X, Y, None
        train, valid = holdout_indices(len(X), self.validation_fraction, rng, strata)
        return X[train], Y[train], (X[valid], Y[valid])

    def _initial_layers(self, n_features, n_outputs, rng, dtype):
        widths = [n_features, *as_widths(self.hidden_layers), n_outputs]
        if self.init_weights is None:
            return glorot_init(widths, rng, dtype)
        layers = [(np.array(W, dtype=dtype), np.array(b, dtype=dtype))
                  for W, b in _starting_layers(self.init_weights, self.activation)]
        expected = [((n_out, n_in), (n_out,)) for n_in, n_out in zip(widths[:-1], widths[1:])]
        got = [(W.shape, b.shape) for W, b in layers]
        if got != expected:
            raise ValueError(
                f"init_weights has layers of shapes {got}, but hidden_layers="
                f"{self.hidden_layers!r} on this data needs {expected} ((W, b) with W of "
                "shape (n_out, n_in)); set hidden_layers to match the weights.")
        return layers

    def _train(self, X, Y, valid, layers, rng):
        """The training loop; returns the final layers and the history rows."""
        params = [array for layer in layers for array in layer]  # updated in place
        optimizer = make_optimizer(self.optimizer, self.momentum)
        batch_size = min(self.batch_size, len(X))
        # With a validation set only early_stopping=True stops training; the
        # best weights are kept either way.
        stops = valid is None or self.early_stopping
        patience = Patience(self.patience if stops else None, self.tol)
        best_valid_loss, best_layers = np.inf, None
        rows = []
        for epoch in range(self.max_epochs):
            tic = time.perf_counter()
            lr = learning_rate(epoch, self.lr, self.lr_schedule, self.lr_decay, self.lr_min)
            loss_sum = 0.0
            for batch in minibatches(len(X), batch_size, rng if self.shuffle else None):
                loss, gradients = loss_and_gradients(X[batch], Y[batch], layers,
                                                     self.activation, self.l2, self._loss)
                optimizer.step(params, [g for pair in gradients for g in pair], lr)
                loss_sum += loss * len(batch)
            row = {"epoch": epoch + 1, "train_loss": loss_sum / len(X), "valid_loss": np.nan,
                   f"valid_{self._score_name}": np.nan, "lr": lr}
            monitored = row["train_loss"]
            if valid is not None:
                output, _ = forward(valid[0], layers, self.activation)
                monitored = row["valid_loss"] = LOSSES[self._loss](output, valid[1])[0]
                row[f"valid_{self._score_name}"] = self._score_outputs(output, valid[1])
                if monitored < best_valid_loss:
                    best_valid_loss = monitored
                    best_layers = [(W.copy(), b.copy()) for W, b in layers]
            row["seconds"] = time.perf_counter() - tic
            rows.append(row)
            if patience.should_stop(monitored):
                break
        return (layers if best_layers is None else best_layers), rows

    def _output(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.dtype(self.dtype))
        output, _ = forward(X, list(zip(self.coefs_, self.intercepts_)), self.activation)
        return output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class NumpyMLPClassifier(ClassifierMixin, _NumpyNetwork):
    __doc__ = f"""Multi-layer perceptron classifier in plain NumPy, for teaching and checking.

    The same network, loss and training loop as :class:`sknets.MLPClassifier`
    (for the parameters both have), written out with NumPy arrays: hidden
    layers ``Linear -> activation``, a linear output of one unit per class
    and the softmax cross-entropy averaged over each mini-batch.

    Parameters
    ----------
    {_PARAMETERS_DOC}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    {_ATTRIBUTES_DOC.format(score="accuracy")}

    See Also
    --------
    sknets.MLPClassifier : The PyTorch implementation this one checks.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets.reference import NumpyMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NumpyMLPClassifier(hidden_layers=(64,), lr=1e-2, max_epochs=20, random_state=0)
    >>> clf.fit(X / 16, y).score(X / 16, y) > 0.95
    True
    >>> [W.shape for W in clf.coefs_]
    [(64, 64), (10, 64)]
    """

    _loss = "cross_entropy"
    _score_name = "accuracy"

    def _encode_targets(self, y, reset):
        index = encode_labels(self, y, reset)
        one_hot = np.eye(len(self.classes_), dtype=np.dtype(self.dtype))[index]
        return one_hot, stratify_labels(index)

    def _score_outputs(self, output, Y):
        return float((output.argmax(axis=1) == Y.argmax(axis=1)).mean())

    def predict_proba(self, X):
        """Class probabilities, the softmax of the network's outputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns ordered as ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably."""
        return log_softmax(self._output(X))

    def predict(self, X):
        """Most probable class of each sample (labels from ``classes_``)."""
        best = self._output(X).argmax(axis=1)
        return self.classes_[best]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class NumpyMLPRegressor(RegressorMixin, _NumpyNetwork):
    __doc__ = f"""Multi-layer perceptron regressor in plain NumPy, for teaching and checking.

    The network of :class:`NumpyMLPClassifier` trained on the mean squared
    error over samples and outputs, as :class:`sknets.MLPRegressor`; ``y``
    may have several columns.

    Parameters
    ----------
    {_PARAMETERS_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of target columns.
    {_ATTRIBUTES_DOC.format(score="r2")}

    See Also
    --------
    sknets.MLPRegressor : The PyTorch implementation this one checks.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import NumpyMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(500, 2))
    >>> y = X[:, 0] ** 2 + X[:, 1]
    >>> reg = NumpyMLPRegressor(hidden_layers=(32,), lr=1e-2, max_epochs=100, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.9
    True
    """

    _loss = "squared_error"
    _score_name = "r2"

    def _validate_kwargs(self):
        return {"multi_output": True, "y_numeric": True}

    def _encode_targets(self, y, reset):
        return encode_outputs(self, y, reset, np.dtype(self.dtype)), None

    def _score_outputs(self, output, Y):
        return float(r2_score(Y, output))

    def predict(self, X):
        """Predicted targets, 1-D when ``y`` was 1-D at fit."""
        output = self._output(X)
        return output[:, 0] if self._y_1d else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
