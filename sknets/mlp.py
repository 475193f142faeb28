"""Multi-layer perceptrons for classification and regression."""

import math
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from ._base import NETWORK_CONSTRAINTS, NETWORK_PARAMETERS_DOC, BaseNetwork
from ._engine.losses import REGRESSION_LOSSES, ClassificationLoss, log_link, regression_loss
from ._engine.modules import MLP
from ._input import (check_labels, dense_labels, fit_labels, fit_outputs, indicator_matrix,
                     label_index, output_matrix, stratify_labels, target_kind)
from ._params import TABLE_PARAMETERS_DOC, InstanceOf, Interval, Options, as_widths, plain


class _ScorerName:
    """A parameter constraint: the name of one of scikit-learn's scorers."""

    def __call__(self, value):
        return isinstance(value, str) and value in get_scorer_names()

    def __str__(self):
        return "a scikit-learn scorer name (sklearn.metrics.get_scorer_names() lists them)"


class _SupervisedNetwork(BaseNetwork):
    """What the classifier and the regressor share beyond ``BaseNetwork``."""

    # Tables as they come: categorical and string columns, missing values,
    # standardised numeric columns (the table parameters).
    _table_input = True

    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "scoring": [Options(None), _ScorerName(),
                    InstanceOf(Callable, name="a callable scorer(estimator, X, y)")],
        "categorical_features": [Options("from_dtype", None),
                                 InstanceOf(list, tuple, np.ndarray, pd.Index,
                                            name="a list of column names or indices, or a "
                                                 "boolean mask")],
        "one_hot_max_categories": [Interval(Integral, 0, None)],
        "standardize": [Options(True, False)],
        "missing_values": [Options("impute", "error")],
        "warm_start": [Options(True, False)],
    }

    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the network from scratch (or further, with ``warm_start``).

        A call that raises leaves the estimator as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            A classifier's labels, or its 0/1 indicator matrix of shape
            (n_samples, n_labels) for multi-label targets; a regressor's
            targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss: a mini-batch's data loss is
            ``sum(w_i * loss_i) / sum(w_i)``, where ``loss_i`` is the mean of
            sample ``i``'s loss over its outputs (or labels).
        validation_data : tuple (X_val, y_val), default=None
            Validation set monitored every epoch, used instead of carving
            ``validation_fraction`` out of ``X``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            With ``warm_start=True``, if a parameter that shapes the network
            (``hidden_layers``, ``activation``, ``dropout``, ``batch_norm``,
            and a regressor's ``loss``) differs from the fitted network's,
            or ``y`` is of another kind than the fitted network's (one label
            per sample or a multi-label indicator matrix).
        """
        return self._fit(X, y, sample_weight=sample_weight, validation_data=validation_data,
                         epochs=self.max_epochs, warm=self.warm_start)

    def _build_module(self, n_features, n_outputs):
        return MLP(n_features, as_widths(self.hidden_layers), n_outputs,
                   self.activation, self.dropout, self.batch_norm)

    def _sample_weight(self, sample_weight, encoded, targets):
        if sample_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, np.empty(len(encoded)), dtype=np.float32)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("sample_weight must be finite and non-negative.")
        if weights.sum() <= 0:
            raise ValueError("sample_weight sums to zero: at least one sample must count.")
        # Equal weights scale the loss of every batch alike and cancel in the
        # weighted mean; dropping them keeps the unweighted (faster) path.
        return None if np.all(weights == weights[0]) else weights

    def _epoch_scorer(self, targets, has_valid):
        if self.scoring is None:
            return None
        if not has_valid:
            raise ValueError(
                f"scoring={_scoring_repr(self.scoring)} is computed on a validation set: set "
                "early_stopping=True or pass validation_data to fit.")
        scorer = get_scorer(self.scoring)
        stand_in = self._scored_outputs(targets)
        methods = getattr(scorer, "_response_method", None)
        methods = (methods,) if isinstance(methods, str) else methods or ()
        if methods and not any(hasattr(stand_in, method) for method in methods):
            raise ValueError(
                f"scoring={self.scoring!r} scores the output of {' or '.join(methods)}, "
                f"which {type(self).__name__} does not have: choose a scorer of its "
                f"predictions{_REGRESSION_SCORERS if isinstance(self, RegressorMixin) else ''}.")
        name = self.scoring if isinstance(self.scoring, str) else "score"
        return _EpochScorer(name, scorer, stand_in)

    def _scored_outputs(self, targets):
        """The stand-in that a scorer asks for predictions (see :class:`_EpochScorer`)."""
        raise NotImplementedError

    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on ``(X, y)``, continuing from the current weights.

        The first call builds the network. A call that raises leaves the
        estimator as it was: a diverging epoch keeps the model of the
        previous call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            If training diverged in this epoch.
        """
        return self._partial_fit(X, y, sample_weight)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        return self._fit(X, y, sample_weight=sample_weight, epochs=1, warm=True, partial=True,
                         classes=classes)


class MLPClassifier(ClassifierMixin, _SupervisedNetwork):
    __doc__ = f"""Multi-layer perceptron classifier trained with PyTorch through skorch.

    A stack of fully connected hidden layers and a linear output layer of one
    unit per class, trained on the softmax cross-entropy. Labels may be of
    any type (strings, bools, non-contiguous ints); inputs are converted once
    to float32.

    Multi-label targets, a 0/1 indicator matrix ``y`` of shape (n_samples,
    n_labels) (scikit-learn's "multilabel-indicator"), train one sigmoid
    output per label on the binary cross-entropy, averaged over samples and
    labels; ``predict`` then returns the indicator matrix of the labels of
    probability above 0.5, and ``score`` the subset accuracy.

    Parameters
    ----------
    {NETWORK_PARAMETERS_DOC}
    {TABLE_PARAMETERS_DOC}
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy (``torch.nn.CrossEntropyLoss``'s
        ``label_smoothing``): the target of each sample puts
        ``1 - label_smoothing`` on its class and spreads ``label_smoothing``
        evenly over all classes. Multi-label targets smooth each label's
        0/1 target towards 0.5 by the same rule.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``;
        "balanced" uses ``n_samples / (n_classes * count(class))``. Not for
        multi-label targets (a ``ValueError``): weigh their samples with
        ``sample_weight``.
    warm_start : bool, default=False
        If True, ``fit`` continues training the network of the previous
        ``fit`` (its weights, and its optimizer's state when ``optimizer``
        is unchanged) instead of starting anew. Training parameters changed
        in between (``lr``, the schedule, ``optimizer``, ``l1``, ``l2``,
        ``batch_size``, ``max_epochs``, stopping...) apply to the new fit;
        changing a parameter that shapes the network (``hidden_layers``,
        ``activation``, ``dropout``, ``batch_norm``) raises a
        ``ValueError``: set ``warm_start=False`` to train a new network.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted; for multi-label targets the
        column indices ``0, 1, ..., n_labels - 1``.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``train_loss``, ``valid_loss``
        and ``valid_accuracy`` (the subset accuracy for multi-label targets;
        NaN without a validation set), ``valid_<scoring>`` with ``scoring``,
        ``lr`` and ``seconds``.
    best_epoch_ : int
        Epoch of the lowest validation loss (of the highest validation score
        with ``scoring``; of the lowest training loss without a validation
        set) among the epochs of the last ``fit``; with a validation set,
        the returned weights are those of this epoch.
    n_epochs_ : int
        Epochs trained (in total, with ``warm_start``).
    fit_seconds_ : float
        Wall-clock seconds of the last ``fit``.
    module_ : torch.nn.Module
        The trained network (outputs are logits).
    net_ : skorch.NeuralNet
        The skorch net that trained it.

    See Also
    --------
    MLPRegressor : The same network for regression.
    sklearn.neural_network.MLPClassifier : scikit-learn's NumPy implementation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layers=(64,), lr=1e-2, max_epochs=20, random_state=0)
    >>> clf.fit(X / 16, y).score(X / 16, y) > 0.95
    True
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)

    Multi-label targets, one column per label:

    >>> from sklearn.datasets import make_multilabel_classification
    >>> X, Y = make_multilabel_classification(n_samples=200, n_classes=3, random_state=0)
    >>> multi = MLPClassifier(hidden_layers=(16,), max_epochs=5, random_state=0).fit(X, Y)
    >>> multi.classes_, multi.predict(X[:2]).shape, multi.predict_proba(X[:2]).shape
    (array([0, 1, 2]), (2, 3), (2, 3))
    """

    _parameter_constraints = {
        **_SupervisedNetwork._parameter_constraints,
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [Options(None, "balanced"), InstanceOf(dict)],
    }
    # The targets keep the dtype _encode_targets gives them: int64 class
    # indices, or a float32 0/1 matrix for multi-label targets.
    _target_dtype = None
    _validate_kwargs = {"multi_output": True}
    _target_attributes = ("classes_",)
    _score_name = "accuracy"

    def __init__(self, hidden_layers=(100,), *, activation="relu", dropout=0.0,
                 batch_norm=False, l1=0.0, l2=0.0, optimizer="adam", lr=1e-3,
                 momentum=0.9, batch_size=200, shuffle=True, max_epochs=200, lr_schedule="constant",
                 lr_decay=0.0, lr_min=0.0, lr_step_size=10, lr_gamma=0.1, lr_patience=5,
                 lr_warmup_epochs=0, clip_grad_norm=None, early_stopping=False, patience=10,
                 tol=1e-4, validation_fraction=0.1, scoring=None,
                 categorical_features="from_dtype", one_hot_max_categories=10,
                 standardize=True, missing_values="impute", label_smoothing=0.0,
                 class_weight=None, warm_start=False, random_state=None, device="cpu",
                 n_threads=None, verbose=0, callbacks=None):
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l1 = l1
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
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.lr_patience = lr_patience
        self.lr_warmup_epochs = lr_warmup_epochs
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.categorical_features = categorical_features
        self.one_hot_max_categories = one_hot_max_categories
        self.standardize = standardize
        self.missing_values = missing_values
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.callbacks = callbacks

    def _fit_targets(self, y, classes=None):
        y = dense_labels(y)
        if target_kind(y) != "multilabel-indicator":
            return {"classes_": fit_labels(y, classes)}
        labels = np.arange(y.shape[1])
        if classes is not None and not np.array_equal(np.asarray(classes), labels):
            raise ValueError(
                f"y is a multi-label indicator matrix of {y.shape[1]} columns, whose classes "
                f"are the column indices {labels.tolist()}; got classes={classes!r}. Pass "
                "classes=None or those indices.")
        return {"classes_": labels, "_multilabel": True}

    def _encode_targets(self, y, targets):
        y = dense_labels(y)
        if targets.get("_multilabel", False):
            return indicator_matrix(y, len(targets["classes_"]))
        if y.ndim == 2 and y.shape[1] > 1:
            kind = target_kind(y)
            if kind == "multilabel-indicator":
                raise ValueError(
                    f"y is a multi-label indicator matrix, but this classifier was fitted on "
                    f"one label per sample (classes {targets['classes_'].tolist()}). Pass one "
                    "label per sample, or fit a new classifier on the matrix (warm_start=False "
                    "or fit instead of partial_fit).")
            raise ValueError(
                f"y of shape {y.shape} is {kind}: MLPClassifier learns one label per sample "
                "(y of shape (n_samples,)) or several 0/1 labels per sample (a multi-label "
                "indicator matrix). For several multi-class targets, wrap it in "
                "sklearn.multioutput.MultiOutputClassifier.")
        if y.ndim == 2:
            y = column_or_1d(y, warn=True)
        return label_index(y, targets["classes_"], hint=_PARTIAL_FIT_HINT)

    def _n_outputs(self, n_features, targets):
        return len(targets["classes_"])

    def _criterion(self):
        return ClassificationLoss(self.label_smoothing)

    def _split_stratify(self, encoded):
        return None if encoded.ndim == 2 else stratify_labels(encoded)

    def _sample_weight(self, sample_weight, encoded, targets):
        weights = super()._sample_weight(sample_weight, encoded, targets)
        if self.class_weight is None:
            return weights
        if targets.get("_multilabel", False):
            raise ValueError(
                f"class_weight={self.class_weight!r} weighs the classes of one label per "
                "sample, but y is a multi-label indicator matrix, whose samples have several "
                "labels. Set class_weight=None, and pass per-sample weights as sample_weight.")
        classes = targets["classes_"]
        class_weight = self.class_weight
        if isinstance(class_weight, dict):
            _check_class_weight(class_weight, classes)
            class_weight = {i: class_weight.get(c, 1.0) for i, c in enumerate(classes)}
        per_sample = compute_sample_weight(class_weight, encoded).astype(np.float32)
        if weights is not None:
            per_sample = per_sample * weights
        if per_sample.sum() <= 0:
            raise ValueError("class_weight gives every sample of y weight zero: at least one "
                             "class present in y must have a positive weight.")
        return per_sample

    def _valid_metrics(self, y_valid):
        return _subset_accuracy_sum if y_valid.dim() == 2 else _accuracy_sum

    def _scored_outputs(self, targets):
        return _ClassifierOutputs(len(targets["classes_"]), targets.get("_multilabel", False))

    def _is_multilabel(self):
        return self._fitted.targets.get("_multilabel", False)

    def predict_proba(self, X):
        """Class probabilities: softmax of the network's outputs, or one sigmoid per label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns ordered as ``classes_``; rows sum to 1. For multi-label
            targets, the probability of each label (column) on its own.
        """
        check_is_fitted(self)
        return _class_probabilities(self._forward(X), self._is_multilabel())

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably."""
        check_is_fitted(self)
        return _class_log_probabilities(self._forward(X), self._is_multilabel())

    def predict(self, X):
        """Most probable class of each sample, or the labels of probability above 0.5.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_``; for multi-label targets, the 0/1
            indicator matrix of the labels whose probability exceeds 0.5.
        """
        check_is_fitted(self)
        return _class_predictions(self._forward(X), self._is_multilabel(), self.classes_)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``(X, y)``, as scikit-learn's classifiers.

        Raises
        ------
        ValueError
            If ``y`` holds labels of another kind than ``classes_`` (names
            where the model predicts numbers, or the reverse), naming both.
        """
        check_is_fitted(self)
        _check_label_kind(y, self.classes_)
        return super().score(X, y, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one epoch on ``(X, y)`` from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a multi-label indicator matrix.
        classes : array-like, default=None
            All labels, required on the first call if ``y`` lacks some;
            later calls may repeat them, but not change them. For
            multi-label targets, the column indices (or None).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            If training diverged in this epoch; the estimator keeps the
            model of the previous call.
        """
        if classes is not None and self.__sklearn_is_fitted__():
            check_labels(classes, self.classes_)
        return self._partial_fit(X, y, sample_weight, classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


_PARTIAL_FIT_HINT = " Pass every label as `classes` to the first partial_fit call."


def _check_label_kind(y, classes):
    """Refuse labels of another kind (text or numbers) than the fitted classes."""
    y = np.asarray(y)
    if y.dtype.kind == "O" or classes.dtype.kind == "O" or not len(y):
        return
    if (y.dtype.kind in "US") != (classes.dtype.kind in "US"):
        kind = {True: "names (strings)", False: "numbers"}
        raise ValueError(
            f"y holds {kind[y.dtype.kind in 'US']}, but this classifier predicts "
            f"{kind[classes.dtype.kind in 'US']}: its classes_ are {classes.tolist()[:5]}"
            f"{'...' if len(classes) > 5 else ''}. Map y to the same kind of labels first "
            "(e.g. names = classes_[y] or y = np.searchsorted(classes_, names)).")


def _check_class_weight(class_weight, classes):
    """Refuse class weights that name unknown labels or are not finite and non-negative."""
    missing = set(class_weight) - set(classes.tolist())
    if missing:
        raise ValueError(f"class_weight names labels not in y: {sorted(missing, key=str)}; "
                         f"the classes are {classes.tolist()}.")
    for label, weight in class_weight.items():
        weight = plain(weight)
        if isinstance(weight, bool) or not isinstance(weight, Real):
            raise TypeError(f"class_weight[{label!r}] must be a number; got {weight!r}.")
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"class_weight[{label!r}] must be finite and non-negative; "
                             f"got {weight!r}.")


def _accuracy_sum(y_pred, y_true):
    return {"accuracy": (y_pred.argmax(dim=1) == y_true).sum()}


def _subset_accuracy_sum(y_pred, y_true):
    """Samples of the batch whose labels are all predicted right (scikit-learn's
    ``accuracy_score`` of indicator matrices, once divided by the sample count)."""
    return {"accuracy": ((y_pred > 0) == (y_true > 0.5)).all(dim=1).sum()}


def _class_probabilities(outputs, multilabel):
    """Class probabilities from a classifier's outputs (logits), as a float64 array."""
    # In float64 so each row sums to 1 to float64 precision (scikit-learn's
    # log_loss checks it); the forward pass stays float32.
    outputs = outputs.double()
    proba = torch.sigmoid(outputs) if multilabel else torch.softmax(outputs, dim=1)
    return proba.cpu().numpy()


def _class_log_probabilities(outputs, multilabel):
    outputs = outputs.double()
    if multilabel:
        return torch.nn.functional.logsigmoid(outputs).cpu().numpy()
    return torch.log_softmax(outputs, dim=1).cpu().numpy()


def _class_predictions(outputs, multilabel, classes):
    """Labels from ``classes``, or the indicator matrix of labels of probability > 0.5."""
    if multilabel:
        return (_class_probabilities(outputs, True) > 0.5).astype(int)
    return classes[outputs.argmax(dim=1).cpu().numpy()]


def _regression_predictions(outputs, log_link, y_1d):
    """A regressor's predictions from its outputs, float64: ``exp`` of them with a log link."""
    predictions = outputs.cpu().numpy().astype(np.float64)
    if log_link:
        predictions = np.exp(predictions)
    return predictions[:, 0] if y_1d else predictions


class _ClassifierOutputs(ClassifierMixin, BaseEstimator):
    """A fitted classifier as a scorer sees it, whose inputs ``X`` are its network's outputs.

    Its ``classes_`` are the class indices ``0 .. n_classes - 1`` (the column
    indices for multi-label targets), the labels of the encoded validation
    targets; ``predict`` and ``predict_proba`` compute what
    :class:`MLPClassifier`'s do.
    """

    def __init__(self, n_classes=2, multilabel=False):
        self.n_classes = n_classes
        self.multilabel = multilabel

    @property
    def classes_(self):
        return np.arange(self.n_classes)

    def predict_proba(self, X):
        return _class_probabilities(torch.as_tensor(X), self.multilabel)

    def predict_log_proba(self, X):
        return _class_log_probabilities(torch.as_tensor(X), self.multilabel)

    def predict(self, X):
        return _class_predictions(torch.as_tensor(X), self.multilabel, self.classes_)

    def scored_targets(self, y_valid):
        """The encoded validation targets as a scorer's ``y``."""
        y = y_valid.cpu().numpy()
        return y.astype(int) if self.multilabel else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = self.multilabel
        return tags


class _RegressorOutputs(RegressorMixin, BaseEstimator):
    """A fitted regressor as a scorer sees it, whose inputs ``X`` are its network's outputs."""

    def __init__(self, log_link=False, y_1d=False):
        self.log_link = log_link
        self.y_1d = y_1d

    def predict(self, X):
        return _regression_predictions(torch.as_tensor(X), self.log_link, self.y_1d)

    def scored_targets(self, y_valid):
        y = y_valid.cpu().numpy().astype(np.float64)
        return y[:, 0] if self.y_1d else y


class _EpochScorer:
    """A scikit-learn scorer of the validation set, computed from the network's outputs.

    The engine calls it after every epoch as ``scorer(outputs, y_valid)``
    with the module's outputs for the validation inputs and the encoded
    validation targets (tensors). It hands the scorer a stand-in for the
    estimator (``_ClassifierOutputs`` or ``_RegressorOutputs``) with the
    outputs as ``X``, so that any scorer works: those of predictions, of
    probabilities, and callables ``scorer(estimator, X, y)``.

    Parameters
    ----------
    name : str
        Recorded as ``valid_<name>``.
    scorer : callable
        ``scorer(estimator, X, y) -> float``; higher is better.
    stand_in : _ClassifierOutputs or _RegressorOutputs
    """

    def __init__(self, name, scorer, stand_in):
        self.name, self.scorer, self.stand_in = name, scorer, stand_in

    def __call__(self, outputs, y_valid):
        X = outputs.detach().cpu().numpy()
        try:
            return float(self.scorer(self.stand_in, X, self.stand_in.scored_targets(y_valid)))
        except ValueError as exc:  # a metric undefined on this validation set, say
            raise ValueError(
                f"scoring={self.name!r} could not score the validation set ({len(X)} "
                "samples) after an epoch: choose a validation set (validation_data, or "
                "validation_fraction with early_stopping) or a scorer that is defined on it. "
                f"scikit-learn says: {exc}") from exc

    def __repr__(self):
        return f"_EpochScorer({self.name!r})"


def _scoring_repr(scoring):
    return repr(scoring) if isinstance(scoring, str) else getattr(scoring, "__name__",
                                                                  "<callable>")


_REGRESSION_SCORERS = " such as 'r2', 'neg_mean_squared_error' or 'neg_mean_absolute_error'"


class _R2Sum:
    """Per-batch shares of R² (uniform average over outputs).

    With ``N`` validation samples, ``K`` outputs and total sum of squares
    ``S_k``, a batch contributes ``n_b / K * sum_k (1 - N * sse_bk / S_k)``;
    the net divides the sum over batches by ``N``, which gives
    ``1 - mean_k(SSE_k / S_k)``, scikit-learn's ``r2_score``. An output whose
    validation targets are constant (``S_k = 0``) scores 1 where it is
    predicted exactly and 0 elsewhere, as scikit-learn's ``force_finite``
    does, instead of minus infinity.
    """

    def __init__(self, y_valid):
        y = y_valid.reshape(len(y_valid), -1)
        self.n = len(y)
        total = ((y - y.mean(0)) ** 2).sum(0)
        self.constant = total == 0
        self.total = torch.where(self.constant, torch.ones_like(total), total)

    def __call__(self, y_pred, y_true):
        residual = (y_pred.reshape(len(y_pred), -1) - y_true.reshape(len(y_true), -1)) ** 2
        sse = residual.sum(0)
        per_output = torch.where(self.constant, len(y_pred) * (sse == 0).to(sse.dtype),
                                 len(y_pred) - self.n * sse / self.total)
        return {"r2": per_output.sum() / residual.shape[1]}


class _R2OfExp:
    """:class:`_R2Sum` of ``exp(outputs)``: the R² of a log-link network's predictions."""

    def __init__(self, r2):
        self.r2 = r2

    def __call__(self, y_pred, y_true):
        return self.r2(torch.exp(y_pred), y_true)


class MLPRegressor(RegressorMixin, _SupervisedNetwork):
    __doc__ = f"""Multi-layer perceptron regressor trained with PyTorch through skorch.

    Fully connected hidden layers and a linear output layer trained on the
    ``loss`` (by default the mean squared error); ``y`` may have several
    columns (multi-output).

    Parameters
    ----------
    {NETWORK_PARAMETERS_DOC}
    {TABLE_PARAMETERS_DOC}
    loss : {{"squared_error", "absolute_error", "huber", "poisson"}}, default="squared_error"
        Training loss, as scikit-learn names them, averaged over samples and
        outputs: the squared error ``r**2`` (``r`` = prediction - target;
        fits the conditional mean), the absolute error ``|r|`` (fits the
        conditional median, robust to outliers), the Huber loss
        (``r**2 / 2`` where ``|r| < huber_delta``, ``huber_delta * (|r| -
        huber_delta / 2)`` beyond: squared near the fit, linear in the
        tails), or the Poisson loss with a log link for counts and rates:
        the network outputs ``log(mean)``, the loss is ``exp(output) - y *
        output`` (torch's ``PoissonNLLLoss``; the Poisson deviance up to a
        factor 2 and terms free of the network), and ``predict`` returns
        ``exp(output)``. "poisson" needs non-negative targets (a
        ``ValueError`` otherwise). A fitted network's ``loss`` cannot change
        with ``warm_start``.
    huber_delta : float, default=1.0
        Where the Huber loss turns from squared to linear (in units of the
        target); used only with ``loss="huber"``.
    warm_start : bool, default=False
        If True, ``fit`` continues training the network of the previous
        ``fit`` (its weights, and its optimizer's state when ``optimizer``
        is unchanged) instead of starting anew. Training parameters changed
        in between (``lr``, the schedule, ``optimizer``, ``l1``, ``l2``,
        ``huber_delta``, ``batch_size``, ``max_epochs``, stopping...) apply
        to the new fit; changing a parameter that shapes the network
        (``hidden_layers``, ``activation``, ``dropout``, ``batch_norm``) or
        the ``loss``, which decides what its output means, raises a
        ``ValueError``: set ``warm_start=False`` to train a new network.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    n_outputs_ : int
        Number of target columns.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss`` and ``valid_loss`` (the
        ``loss``, as torch computes it: half the squared error below
        ``huber_delta`` for "huber", ``exp(output) - y * output`` for
        "poisson"), ``valid_r2`` (of the predictions), ``valid_<scoring>``
        with ``scoring``, ``lr``, ``seconds``.
    best_epoch_, n_epochs_, fit_seconds_, module_, net_
        As in :class:`MLPClassifier`.

    See Also
    --------
    MLPClassifier : The same network for classification.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets import MLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(500, 2))
    >>> y = X[:, 0] ** 2 + X[:, 1]
    >>> reg = MLPRegressor(hidden_layers=(32,), lr=1e-2, max_epochs=100, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        **_SupervisedNetwork._parameter_constraints,
        "loss": [Options(*REGRESSION_LOSSES)],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }
    _validate_kwargs = {"multi_output": True, "y_numeric": True}
    _target_attributes = ("n_outputs_", "_y_1d")
    _score_name = "r2"
    # The loss decides what the output means (the mean, or its log with
    # "poisson"): a continued fit cannot change it.
    _network_params = (*_SupervisedNetwork._network_params, "loss")

    def __init__(self, hidden_layers=(100,), *, activation="relu", dropout=0.0,
                 batch_norm=False, l1=0.0, l2=0.0, optimizer="adam", lr=1e-3,
                 momentum=0.9, batch_size=200, shuffle=True, max_epochs=200, lr_schedule="constant",
                 lr_decay=0.0, lr_min=0.0, lr_step_size=10, lr_gamma=0.1, lr_patience=5,
                 lr_warmup_epochs=0, clip_grad_norm=None, early_stopping=False, patience=10,
                 tol=1e-4, validation_fraction=0.1, scoring=None,
                 categorical_features="from_dtype", one_hot_max_categories=10,
                 standardize=True, missing_values="impute", loss="squared_error",
                 huber_delta=1.0, warm_start=False, random_state=None, device="cpu",
                 n_threads=None, verbose=0, callbacks=None):
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l1 = l1
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
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.lr_patience = lr_patience
        self.lr_warmup_epochs = lr_warmup_epochs
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.categorical_features = categorical_features
        self.one_hot_max_categories = one_hot_max_categories
        self.standardize = standardize
        self.missing_values = missing_values
        self.loss = loss
        self.huber_delta = huber_delta
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.callbacks = callbacks

    def _fit_targets(self, y, classes=None):
        return fit_outputs(y)

    def _encode_targets(self, y, targets):
        y = output_matrix(y, targets["n_outputs_"], type(self).__name__)
        if log_link(self.loss) and len(y) and y.min() < 0:
            raise ValueError(
                f"loss={self.loss!r} models counts and rates, which are non-negative; y has "
                f"values down to {float(y.min()):.4g}. Use loss='squared_error', "
                "'absolute_error' or 'huber' for targets that can be negative.")
        return y

    def _n_outputs(self, n_features, targets):
        return targets["n_outputs_"]

    def _criterion(self):
        return regression_loss(self.loss, self.huber_delta)

    def _valid_metrics(self, y_valid):
        r2 = _R2Sum(y_valid)
        return _R2OfExp(r2) if log_link(self.loss) else r2

    def _scored_outputs(self, targets):
        return _RegressorOutputs(log_link(self.loss), targets["_y_1d"])

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when ``y`` was 1-D at fit. With ``loss="poisson"``, the
            ``exp`` of the network's outputs (positive means).
        """
        check_is_fitted(self)
        loss = self._fitted.params.get("loss", "squared_error")
        return _regression_predictions(self._forward(X), log_link(loss), self._y_1d)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["MLPClassifier", "MLPRegressor"]
