"""Declarative parameter constraints, checked once at the start of ``fit``.

The idea is scikit-learn's ``_parameter_constraints``; the helpers behind it
are private to scikit-learn, so sknets keeps its own small table and check.
NumPy scalars (``np.int64(3)``, ``np.float32(0.1)``, ``np.bool_(True)``)
count as the Python numbers and bools they hold; NaN and infinity are never
valid numbers of a parameter.
"""

import math
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np


def plain(value):
    """``value`` as a Python scalar if it is a NumPy scalar, else unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._params import plain
    >>> type(plain(np.int64(3))).__name__, type(plain(np.bool_(True))).__name__
    ('int', 'bool')
    """
    return value.item() if isinstance(value, np.generic) else value


class Interval:
    """A finite number in a range; ``closed`` is one of "both", "left", "right", "neither"."""

    def __init__(self, kind, low, high, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def __call__(self, value):
        value = plain(value)
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and not math.isfinite(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self):
        kind = "an int" if self.kind is Integral else "a finite float"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in the range {left}{low}, {high}{right}"


class Options:
    """One of a fixed set of strings (or other hashable values)."""

    def __init__(self, *options):
        self.options = options

    def __call__(self, value):
        value = plain(value)
        return isinstance(value, (str, bool, type(None))) and value in self.options

    def __str__(self):
        return "one of " + ", ".join(repr(o) for o in self.options)


class InstanceOf:
    def __init__(self, *types, name=None):
        self.types, self.name = types, name

    def __call__(self, value):
        return isinstance(value, self.types)

    def __str__(self):
        return self.name or "an instance of " + " or ".join(t.__name__ for t in self.types)


def _is_layer_tuple(value):
    if isinstance(value, (Integral, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, Iterator) or not isinstance(value, (tuple, list, np.ndarray)):
        return False  # reading an iterator would consume it
    widths = list(np.ravel(value)) if isinstance(value, np.ndarray) else list(value)
    return all(
        isinstance(w, (Integral, np.integer)) and not isinstance(w, bool) and w > 0
        for w in widths
    )


class LayerWidths:
    """A tuple (or list) of positive ints; a single int means one layer."""

    def __call__(self, value):
        return not isinstance(value, str) and _is_layer_tuple(value)

    def __str__(self):
        return ("a tuple of positive ints such as (100,) or (256, 128), or () for none (a list "
                "or a 1-D array works too, not an iterator or generator, which reading "
                "consumes: pass tuple(...) of it)")


def as_widths(value):
    """``hidden_layers`` as a tuple of Python ints."""
    if isinstance(value, (Integral, np.integer)):
        return (int(value),)
    return tuple(int(w) for w in value)


def validate_params(estimator):
    """Check every parameter of ``estimator`` against its constraints table.

    Raises
    ------
    ValueError
        Naming the parameter, the allowed values and the value received.
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params[name]
        if any(check(value) for check in constraints):
            continue
        allowed = " or ".join(str(c) for c in constraints)
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {allowed}; "
            f"got {value!r}."
        )


def fill_choices(doc, **choices):
    """``doc`` with each ``NAME_CHOICES`` token replaced by ``{"a", "b", ...}``.

    Examples
    --------
    >>> from sknets._params import fill_choices
    >>> fill_choices("activation : {ACTIVATION_CHOICES}", activation=("relu", "tanh"))
    'activation : {"relu", "tanh"}'
    """
    for name, options in choices.items():
        doc = doc.replace("{" + f"{name.upper()}_CHOICES" + "}",
                          "{" + ", ".join(f'"{option}"' for option in options) + "}")
    return doc


# The parameters' documentation, shared by every estimator's docstring: the
# layers of a supervised network, then the training parameters that every
# network (the autoencoder included) has in common. The *_CHOICES tokens are
# filled in from the engine's vocabularies by fill_choices, so that a new
# activation, optimizer or schedule is documented where it is added.
NETWORK_LAYERS_DOC = """hidden_layers : tuple of int, default=(100,)
        Width of each hidden layer; ``()`` trains a network with no hidden
        layer (a linear model).
    activation : {ACTIVATION_CHOICES}, default="relu"
        Non-linearity after each hidden layer.
    dropout : float in [0, 1), default=0.0
        Dropout rate after each hidden layer (training only).
    batch_norm : bool, default=False
        Batch normalisation of each hidden layer's pre-activations
        (layer order ``Linear -> BatchNorm1d -> activation -> Dropout``)."""

NETWORK_TRAINING_DOC = """l1 : float, default=0.0
        L1 penalty strength. The training objective of a mini-batch is
        ``data_loss + l1 * sum(|W|) + l2 / 2 * sum(W ** 2)``, where the sums
        run over the weight matrices of all linear layers; biases and
        batch-norm parameters are not penalised. ``history_["train_loss"]``
        reports ``data_loss`` alone.
    l2 : float, default=0.0
        L2 penalty strength, as above: its gradient is ``l2 * W``, which is
        torch's ``weight_decay=l2`` applied to the weight matrices only.
    clip_grad_norm : float or None, default=None
        Largest Euclidean norm of the gradient of all parameters together
        (of the data loss plus the ``l1`` penalty, and ``l2`` with "adamw"):
        a larger gradient is scaled down to this norm before each step
        (``torch.nn.utils.clip_grad_norm_``). The ``l2`` of the other
        optimizers is torch's ``weight_decay``, added by the optimizer after
        clipping. ``None`` does not clip.
    optimizer : {OPTIMIZER_CHOICES}, default="adam"
        "sgd" is vanilla mini-batch gradient descent, "momentum" and
        "nesterov" are ``torch.optim.SGD`` with ``momentum`` (Nesterov's
        variant for the latter), the others are the torch optimizers of the
        same name with torch's defaults ("adamw" also applies torch's default
        decoupled weight decay, 0.01, to the weight matrices). Fused
        implementations are used where torch has them.
    lr : float, default=1e-3
        Initial learning rate η0.
    momentum : float in [0, 1), default=0.9
        Momentum of "momentum" and "nesterov"; ignored by other optimizers.
    batch_size : int, default=200
        Mini-batch size (capped at the number of training samples).
    shuffle : bool, default=True
        Reshuffle the training set every epoch; False keeps the data order
        (reproducible batch composition, for comparisons).
    max_epochs : int, default=200
        Number of passes over the training data (the most, when stopping
        early).
    lr_schedule : {SCHEDULE_CHOICES}, default="constant"
        Learning rate η_t of epoch ``t`` (``t = 0`` first, counted over all
        the network's epochs, so that a continued fit resumes the schedule):
        "constant" η0; "linear" ``max(η0 - lr_decay * t, lr_min)``;
        "exponential" ``max(η0 * exp(-lr_decay * t), lr_min)``; "step"
        ``max(η0 * lr_gamma ** (t // lr_step_size), lr_min)``; "cosine"
        ``lr_min + (η0 - lr_min) * (1 + cos(pi * t / max_epochs)) / 2``;
        "plateau" multiplies the rate by ``lr_gamma`` when the monitored
        value (the ``scoring`` score, else the validation loss, else the
        training loss) has not improved for ``lr_patience`` epochs, down to
        ``lr_min``; "one_cycle" sets the rate of every batch as torch's
        ``OneCycleLR`` over ``K = max_epochs * n_batches`` steps: up from
        η0 / 25 to η0 along half a cosine over the first ``0.3 * K - 1``
        steps, then down to η0 / 25 / 1e4 at step ``K - 1``; it schedules
        the rate only (``momentum`` and Adam's betas stay as set). Early
        stopping cuts the cycle short; a continued fit resumes it at epoch
        ``n_epochs_ % max_epochs``, so a fit after a complete cycle runs a
        new one. ``history_["lr"]`` is the rate of each epoch's last batch.
    lr_decay : float, default=0.0
        Slope ``k`` of "linear", rate ``λ`` of "exponential".
    lr_min : float, default=0.0
        Floor of every decaying schedule.
    lr_step_size : int, default=10
        Epochs between the steps of "step".
    lr_gamma : float in (0, 1], default=0.1
        Factor of "step" and "plateau".
    lr_patience : int, default=5
        Epochs without improvement before "plateau" lowers the rate.
    lr_warmup_epochs : int, default=0
        Epochs over which the learning rate rises linearly, batch by batch,
        to the rate the schedule gives: batch ``k`` of the ``K =
        lr_warmup_epochs * n_batches`` warmup batches uses ``(k + 1) / K``
        times the schedule's rate (``lr / K`` first), then the schedule runs
        alone. Works with every schedule (with "one_cycle" the two factors
        multiply). The warmup counts the network's epochs, as the schedule
        does: a continued fit past them does not warm up again, and
        ``partial_fit`` warms up over its first ``lr_warmup_epochs`` calls.
        0 starts at full rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        classifiers) unless ``validation_data`` is given to ``fit``, and stop
        when the validation loss has not improved by more than ``tol`` for
        ``patience`` epochs. Whenever there is a validation set, the weights
        of the epoch with the lowest validation loss (``best_epoch_``) are
        restored at the end of training.
    patience : int or None, default=10
        Epochs without improvement before stopping. Without a validation
        set, training stops when the training loss has not improved by more
        than ``tol`` for ``patience`` epochs (as scikit-learn's
        ``n_iter_no_change``); ``None`` always trains ``max_epochs`` epochs.
    tol : float, default=1e-4
        Smallest improvement of the monitored value (a loss decrease; a
        score increase with ``scoring``) that counts.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out when ``early_stopping=True``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, dropout (and any input
        noise) and the validation split. The same int gives identical
        ``history_`` and predictions on the same machine.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Torch device; "auto" takes CUDA when available. The data is moved to
        the device once per fit; predictions come back as NumPy arrays. A
        CUDA device that torch cannot find is an error, also for a model
        unpickled on a machine without one (``set_params(device="cpu")``
        runs it there); "auto" falls back to the CPU with a warning. On
        CUDA, a plain MLP trained with Adam or AdamW replays its training
        step as a CUDA graph (one launch per batch; see docs/scaling.md).
    n_threads : int or None, default=None
        CPU threads of torch and of the BLAS/OpenMP thread pools during ``fit``
        and ``predict``. ``None`` uses what the current process is allowed:
        torch's setting, capped by the OpenMP limit in force (which joblib's
        worker processes and Dask's workers set so that parallel fits share the
        cores, and ``threadpoolctl.threadpool_limits`` sets) and by the CPUs
        available; 1 in a worker thread of joblib's "threading" backend. A fit
        whose training step needs under 4·10^7 floating-point operations, or
        takes fewer than 32 samples, runs on 1 thread (where oneDNN computes
        the step's large products, on AMD CPUs, under 2·10^7, and up to
        4·10^7 on at most 2 threads). Where the thread count
        cannot change the results (MKL's strict reproducibility mode, which
        ``import sknets`` sets, and every product and batch normalisation of the
        step checked on one and two threads), a larger one leaves out the cores
        other programs keep busy, changes its thread count as they start and
        stop while it trains, and trains on 1 thread while its steps, timed now
        and then on both counts, are faster there; elsewhere a step under 10^8
        operations runs on 1 thread and a larger one on the whole budget. A
        prediction needing under 4·10^7 operations runs on 1 thread where that
        cannot change its results.
    verbose : int, default=0
        0 is silent, 1 prints one line per epoch, 2 adds a progress bar
        within each epoch.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
        Called during training after sknets' own (``on_epoch_end`` sees the
        epoch's row of the history, ``net.history[-1]``, with
        ``train_loss``, ``valid_loss``, the validation score and ``lr``). A
        callback that raises ``KeyboardInterrupt`` ends training as Ctrl-C
        does. Every fit uses these objects (a callback that keeps state resets it
        in ``on_train_begin``, as skorch's do); ``clone`` and searches copy
        them. Not saved by ``save``."""


# The parameters only the supervised networks (MLPClassifier, MLPRegressor) have:
# what they do with a table as it comes, and which score chooses the best epoch.
TABLE_PARAMETERS_DOC = """scoring : str, callable or None, default=None
        Validation score computed after every epoch on the validation set
        (``early_stopping=True`` or ``validation_data``): a scikit-learn
        scorer name (``"roc_auc"``, ``"f1"``, ``"neg_log_loss"``...) or a
        callable ``scorer(estimator, X, y)``. It is recorded in
        ``history_`` as ``valid_<name>`` (``valid_score`` for a callable),
        and chooses ``best_epoch_`` (highest score, whose weights are
        restored), when early stopping stops (no increase by more than
        ``tol`` for ``patience`` epochs) and when "plateau" lowers the rate.
        ``None`` uses the validation loss. Without a validation set ``fit``
        raises a ``ValueError``; ``sklearn.metrics.get_scorer_names()``
        lists the names. The scorer gets a stand-in for the estimator whose
        ``predict``/``predict_proba`` answer as the fitted estimator's
        would, with ``X`` the network's outputs for the validation inputs
        and ``y`` the validation targets as encoded: class indices
        ``0..n_classes-1`` (the stand-in's ``classes_``; a binary score's
        positive class is the second of ``classes_``), the 0/1 matrix of
        multi-label targets, or a regressor's targets.
    categorical_features : "from_dtype", None, or array-like, default="from_dtype"
        Which columns of ``X`` are categorical. "from_dtype": the columns of
        a pandas DataFrame whose dtype is ``category``, ``object`` or
        ``string`` (none for an array); or a list of column names or
        indices, or a boolean mask; ``None``: no categorical column.
        Categorical columns are encoded inside the estimator (see
        ``one_hot_max_categories``). A category not seen in ``fit`` is
        "unknown" at predict (all zeros one-hot, or an embedding row of its
        own); a missing value is a category of its own when ``fit`` saw
        one. See ``docs/tabular.md``.
    one_hot_max_categories : int, default=10
        A categorical column with at most this many categories is one-hot
        encoded; a column with more is fed through a learned embedding of
        ``min(50, (n_categories + 1) // 2)`` dimensions, trained with the
        network. A missing value counts as a category when ``fit`` saw one.
    standardize : bool, default=True
        Standardise the numeric columns of a DataFrame (zero mean, unit
        variance on the training data) inside the estimator. Missing values
        are imputed first. Boolean columns are numeric (0/1). Arrays are
        passed to the network as they are.
    missing_values : {"impute", "error"}, default="impute"
        "impute": a missing value (NaN) in a numeric column is replaced by
        the column's median in the training data and a 0/1 column
        "<name> is missing" is added for each column that had missing
        values in ``fit``; in a categorical column it is a category of its
        own. This is ``SimpleImputer(strategy="median", add_indicator=True)``,
        for arrays as for DataFrames. "error": refuse
        missing values with a ``ValueError`` naming the columns. Missing
        values in sparse matrices are always refused, and infinity is
        never a missing value."""
