"""The estimator base shared by every sknets network.

``BaseNetwork`` turns flat constructor parameters into a skorch
``TensorNet`` (see ``_net.py``), runs it, and exposes the fitted state in
scikit-learn style. Subclasses say only what differs: how targets are
encoded, which module and loss to build, and which validation score to keep.
"""

import time
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import EarlyStopping, EpochTimer
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _params
from ._engine.callbacks import progress_callbacks
from ._engine.net import FixedValidation, TensorData, TensorNet, to_tensor
from ._params import Interval, LayerWidths, Options
from .model_selection import holdout_indices
from .exceptions import DivergenceError, DivergenceWarning, TrainingInterruptedWarning
from ._engine.resources import ThreadLimit as _ThreadLimit
from ._engine.resources import move_net
from ._engine.resources import resolve_device as _resolve_device
from ._engine.modules import ACTIVATIONS, l1_penalty, linear_layers
from ._engine.schedules import SCHEDULES, EpochSchedule, LRScheduler

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
# torch implementations with a fused single-kernel step on CPU and CUDA.
_FUSED = {"sgd", "momentum", "nesterov", "adagrad", "adam", "adamw"}

# Constraints shared by every network estimator; subclasses extend the dict.
NETWORK_CONSTRAINTS = {
    "hidden_layers": [LayerWidths()],
    "activation": [Options(*ACTIVATIONS)],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "batch_norm": [Options(True, False)],
    "l1": [Interval(Real, 0, None)],
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
    "lr_step_size": [Interval(Integral, 1, None)],
    "lr_gamma": [Interval(Real, 0, 1, closed="right")],
    "lr_patience": [Interval(Integral, 0, None)],
    "early_stopping": [Options(True, False)],
    "patience": [Interval(Integral, 1, None), Options(None)],
    "tol": [Interval(Real, 0, None)],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "random_state": [Interval(Integral, 0, 2**32 - 1), Options(None),
                     _params.InstanceOf(np.random.RandomState)],
    "device": [Options("cpu", "cuda", "auto"), _params.InstanceOf(str, name="a torch device string")],
    "n_threads": [Interval(Integral, 1, None), Options(None)],
    "verbose": [Interval(Integral, 0, None), Options(True, False)],
}

# The parameters' documentation, shared by every estimator's docstring:
# the layers of a supervised network, then the training parameters that
# every network (the autoencoder included) has in common.
NETWORK_LAYERS_DOC = """hidden_layers : tuple of int, default=(100,)
        Width of each hidden layer; ``()`` trains a network with no hidden
        layer (a linear model).
    activation : {"relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", \
"identity"}, default="relu"
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
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", \
"adam", "adamw"}, default="adam"
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
    lr_schedule : {"constant", "linear", "exponential", "step", "cosine", \
"plateau"}, default="constant"
        Learning rate η_t of epoch ``t`` (``t = 0`` first), set once per
        epoch: "constant" η0; "linear" ``max(η0 - lr_decay * t, lr_min)``;
        "exponential" ``max(η0 * exp(-lr_decay * t), lr_min)``; "step"
        ``max(η0 * lr_gamma ** (t // lr_step_size), lr_min)``; "cosine"
        ``lr_min + (η0 - lr_min) * (1 + cos(pi * t / max_epochs)) / 2``;
        "plateau" multiplies the rate by ``lr_gamma`` when the validation
        loss (training loss without a validation set) has not improved for
        ``lr_patience`` epochs, down to ``lr_min``.
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
        Smallest loss decrease that counts as an improvement.
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
        runs it there); "auto" falls back to the CPU with a warning.
    n_threads : int or None, default=None
        CPU threads of torch and of the BLAS/OpenMP thread pools during
        ``fit`` and ``predict``. ``None`` uses what the current process is
        allowed: torch's setting, capped by the OpenMP limit in force (which
        joblib's worker processes and Dask's workers set so that parallel
        fits share the cores, and ``threadpoolctl.threadpool_limits``
        sets) and by the CPUs available; 1 in a worker thread of joblib's
        "threading" backend.
    verbose : int, default=0
        0 is silent, 1 prints one line per epoch, 2 adds a progress bar
        within each epoch."""

NETWORK_PARAMETERS_DOC = NETWORK_LAYERS_DOC + "\n    " + NETWORK_TRAINING_DOC


def store_params(estimator, arguments):
    """Store ``__init__``'s arguments (its ``locals()``) as attributes, unchanged.

    scikit-learn's convention: ``__init__`` only records the parameters;
    validation happens in ``fit``.
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class BaseNetwork(BaseEstimator):
    """Shared fit/predict machinery; not for direct use."""

    _parameter_constraints = NETWORK_CONSTRAINTS

    # --- hooks for subclasses -------------------------------------------------

    def _check_data(self, X, y, reset):
        """``(X, y)`` validated by scikit-learn, ``X`` as float32.

        An autoencoder returns ``(X, X)``: its targets are its inputs, and
        passing the very same array lets the engine hold one tensor for both.
        """
        return validate_data(self, X, y, reset=reset, dtype=np.float32,
                             **self._validate_kwargs())

    def _encode_targets(self, y, reset):
        """Targets as the array the loss expects; set label state if reset."""
        raise NotImplementedError

    def _n_outputs(self):
        raise NotImplementedError

    def _build_module(self, n_features):
        raise NotImplementedError

    def _criterion(self):
        raise NotImplementedError

    def _target_dtype(self):
        raise NotImplementedError

    def _valid_metrics(self, y_valid):
        """``metrics(y_pred, y_true) -> {name: batch sum}`` for the net."""
        return None

    def _split_stratify(self, y):
        return None

    def _sample_weight(self, y, sample_weight):
        return sample_weight

    # --- fitting ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the network from scratch (or further, with ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss: a mini-batch's data loss is
            ``sum(w_i * loss_i) / sum(w_i)``.
        validation_data : tuple (X_val, y_val), default=None
            Validation set monitored every epoch, used instead of carving
            ``validation_fraction`` out of ``X``.

        Returns
        -------
        self
        """
        incremental = getattr(self, "warm_start", False) and hasattr(self, "net_")
        return self._fit(X, y, sample_weight, validation_data, incremental,
                         epochs=self.max_epochs)

    def _fit(self, X, y, sample_weight, validation_data, incremental, epochs,
             partial=False):
        _params.validate_params(self)
        X, y = self._check_data(X, y, reset=not incremental)
        if len(X) == 0:
            raise ValueError("X is empty: fitting needs at least one sample.")
        targets = self._encode_targets(y, reset=not incremental)
        weights = self._sample_weight(y, sample_weight)
        device = _resolve_device(self.device)
        with _ThreadLimit(self.n_threads), torch.random.fork_rng(devices=[]):
            if not incremental:
                self._seed = check_random_state(self.random_state).randint(2**31 - 1)
            torch.manual_seed(self._seed + (len(self.net_.history) if incremental else 0))
            rng = np.random.RandomState(self._seed)
            valid = self._validation_set(X, targets, weights, validation_data, rng, device)
            if valid is not None and valid[1] is not None:
                X, targets, weights = valid[1]
            if self.batch_norm and min(self.batch_size, len(X)) < 2:
                raise ValueError(
                    "batch_norm=True needs mini-batches of at least 2 samples; got "
                    f"batch_size={self.batch_size} and {len(X)} training samples.")
            train = TensorData(*self._tensors(X, targets, device),
                               None if weights is None else to_tensor(weights, device))
            valid = None if valid is None else valid[0]
            if not incremental:
                self.net_ = self._build_net(X.shape[1], device, valid)
            net = move_net(self.net_, device)
            if incremental:
                # A warm fit may add or drop the validation set (and change
                # verbose): its callbacks are those of this fit.
                net.callbacks = self._callbacks(valid is not None)
                net.initialize_callbacks()
            net.train_split = FixedValidation(valid)
            net.metrics = None if valid is None else self._valid_metrics(valid.y)
            net.batch_size = min(self.batch_size, len(X))
            net.verbose = self.verbose
            start = time.perf_counter()
            first_epoch = len(net.history)
            try:
                if epochs:
                    net.partial_fit(train, None, epochs=epochs)
            except DivergenceError:
                self._forget_fit()
                raise
            finally:
                net.train_split = None
                net.metrics = None
            self.fit_seconds_ = time.perf_counter() - start
        self._partial_fitted = partial
        self._after_fit(first_epoch)
        if epochs:
            self._warn_if_cut_short()
        return self

    def _forget_fit(self):
        """Drop every fitted attribute: a diverged network must not predict."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            delattr(self, name)

    def _warn_if_cut_short(self):
        net = self.net_
        best = self._best_weights_callback()
        restored = (f"the weights of epoch {self.best_epoch_} (lowest validation loss) were "
                    "restored" if best is not None and best.best_epoch_ else
                    "the weights are those at the interruption")
        if net.divergence_ is not None:
            warnings.warn(f"{net.divergence_} Training stopped; {restored}.",
                          DivergenceWarning, stacklevel=4)
        elif net.interrupted_epoch_ is not None:
            warnings.warn(
                f"Training was interrupted in epoch {net.interrupted_epoch_}; {restored}, and "
                f"history_ holds the {self.n_epochs_} complete epochs.",
                TrainingInterruptedWarning, stacklevel=4)

    def _best_weights_callback(self):
        """The callback restoring the best epoch's weights (with validation), or None."""
        for _, callback in self.net_.callbacks_:
            if isinstance(callback, EarlyStopping) and callback.load_best:
                return callback
        return None

    def _rebuild(self, n_features):
        """Build an untrained network for ``n_features`` inputs, as ``fit`` builds it.

        The label state (``classes_``, ``n_outputs_``) must be set already.
        :func:`sknets.load` loads saved weights into the returned module.

        Returns
        -------
        module : torch.nn.Module
        """
        self._seed = check_random_state(self.random_state).randint(2**31 - 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            self.net_ = self._build_net(n_features, _resolve_device(self.device), None)
        return self.net_.module_

    def save(self, path):
        """Write the fitted estimator to one file that :func:`sknets.load` reads.

        The file is a zip holding ``model.json`` (parameters, fitted state,
        history, library versions) and ``weights.safetensors``: loading it
        never executes code, unlike a pickle. See ``docs/persistence.md``.

        Parameters
        ----------
        path : str, path-like or binary file object

        Examples
        --------
        >>> from pathlib import Path
        >>> from tempfile import mkdtemp
        >>> from sklearn.datasets import load_iris
        >>> from sknets import MLPClassifier, load
        >>> X, y = load_iris(return_X_y=True)
        >>> path = Path(mkdtemp()) / "iris.sknets"
        >>> MLPClassifier((8,), max_epochs=5, random_state=0).fit(X, y).save(path)
        >>> load(path).classes_
        array([0, 1, 2])
        """
        from .persistence import save

        save(self, path)

    def initialize(self, X, y=None):
        """Build the network for data shaped like ``(X, y)`` without training.

        The weights are those ``fit`` would start from with the same
        ``random_state``. With ``warm_start=True`` a following ``fit``
        trains on from them (with a fresh optimizer state), which lets
        another implementation start from identical weights.

        Returns
        -------
        self
        """
        return self._fit(X, y, None, None, incremental=False, epochs=0)

    def _validate_kwargs(self):
        return {}

    def _validation_set(self, X, targets, weights, validation_data, rng, device):
        """(valid TensorData or None, (X, targets, weights) to train on or None)."""
        if validation_data is not None:
            X_val, y_val = self._check_data(*validation_data, reset=False)
            y_val = self._encode_targets(y_val, reset=False)
            return TensorData(*self._tensors(X_val, y_val, device)), None
        if not self.early_stopping:
            return None
        train_idx, valid_idx = holdout_indices(len(X), self.validation_fraction, rng,
                                               self._split_stratify(targets))
        data = TensorData(*self._tensors(*_rows(X, targets, valid_idx), device))
        sub = None if weights is None else weights[train_idx]
        return data, (*_rows(X, targets, train_idx), sub)

    def _tensors(self, X, targets, device):
        """``X`` and the targets as device tensors; one tensor when they are one array."""
        X_tensor = to_tensor(X, device)
        if targets is X:
            return X_tensor, X_tensor
        return X_tensor, to_tensor(targets, device, self._target_dtype())

    def _callbacks(self, has_valid):
        """The skorch callbacks of a fit, which depend on having a validation set."""
        callbacks = [("epoch_timer", EpochTimer()), ("lr", self._lr_callback(has_valid))]
        # Progress before stopping: early stopping ends the epoch by raising,
        # and the last epoch's line must still be printed.
        callbacks += progress_callbacks(self.verbose)
        callbacks += self._stopping_callbacks(has_valid)
        return callbacks

    def _build_net(self, n_features, device, valid):
        module = self._build_module(n_features)
        has_valid = valid is not None
        penalty, groups = self._penalty(module)
        opt_cls, opt_kwargs = self._optimizer()
        callbacks = self._callbacks(has_valid)
        generator = torch.Generator().manual_seed(self._seed)
        net = TensorNet(
            module=module,
            criterion=self._criterion(),
            optimizer=opt_cls,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            device=device,
            train_split=None,
            penalty=penalty,
            generator=generator,
            shuffle=self.shuffle,
            verbose=self.verbose,
            **{f"optimizer__{k}": v for k, v in opt_kwargs.items()},
            **({"optimizer__param_groups": groups} if groups else {}),
        )
        return net.initialize()

    def _optimizer(self):
        name = self.optimizer
        kwargs = {}
        cls = {
            "sgd": torch.optim.SGD, "momentum": torch.optim.SGD,
            "nesterov": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
            "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
        }[name]
        if name in ("momentum", "nesterov"):
            kwargs["momentum"] = self.momentum
            kwargs["nesterov"] = name == "nesterov"
        if name == "adamw":
            kwargs["weight_decay"] = 0.0  # set on the weight group only
        if name in _FUSED:
            kwargs["fused"] = True
        return cls, kwargs

    def _penalty(self, module):
        """(penalty added to the loss or None, optimizer param groups)."""
        names = {id(layer.weight) for layer in linear_layers(module)}
        weight_names = [n for n, p in module.named_parameters() if id(p) in names]
        groups = []
        in_loss_l2 = self.l2 if self.optimizer == "adamw" else 0.0
        if self.optimizer == "adamw":
            groups = [(n, {"weight_decay": 0.01}) for n in weight_names]
        elif self.l2 > 0:
            # d/dW (l2 / 2 * ||W||^2) = l2 * W: exactly torch's coupled weight decay.
            groups = [(n, {"weight_decay": self.l2}) for n in weight_names]
        if self.l1 == 0 and in_loss_l2 == 0:
            return None, groups
        return _Penalty(self.l1, in_loss_l2), groups

    def _lr_callback(self, has_valid):
        if self.lr_schedule == "plateau":
            return LRScheduler(
                policy="ReduceLROnPlateau", monitor="valid_loss" if has_valid else "train_loss",
                factor=self.lr_gamma, patience=self.lr_patience, min_lr=self.lr_min,
                event_name="lr")
        schedule = EpochSchedule(self.lr_schedule, self.lr, self.lr_decay, self.lr_min,
                                 self.lr_step_size, self.lr_gamma, self.max_epochs)
        return LRScheduler(policy="LambdaLR", lr_lambda=schedule, event_name="lr")

    def _stopping_callbacks(self, has_valid):
        silent = {"sink": _silent}
        if has_valid:
            # Two trackers: the weights kept are those of the lowest validation
            # loss (threshold 0), while stopping counts only improvements by
            # more than tol. One EarlyStopping with threshold=tol would restore
            # an earlier epoch than best_epoch_ after an improvement below tol.
            callbacks = [("best_weights", EarlyStopping(
                monitor="valid_loss", patience=2**31 - 1, threshold=0.0,
                threshold_mode="abs", load_best=True, **silent))]
            if self.early_stopping and self.patience:
                # After best_weights, so the epoch that stops is recorded first.
                callbacks.append(("early_stopping", EarlyStopping(
                    monitor="valid_loss", patience=self.patience, threshold=self.tol,
                    threshold_mode="abs", **silent)))
            return callbacks
        if self.patience is None:
            return []
        return [("early_stopping", EarlyStopping(
            monitor="train_loss", patience=self.patience, threshold=self.tol,
            threshold_mode="abs", **silent))]

    def _after_fit(self, first_epoch=0):
        """Fitted attributes from the net's history; ``first_epoch`` starts this fit."""
        net = self.net_
        # An epoch is complete once EpochTimer, the first callback, has
        # closed it; a cut-short epoch (interrupt, divergence) can only be the last.
        rows = [row for row in net.history if "dur" in row]
        del net.history[len(rows):]
        columns = self._history_columns()
        frame = pd.DataFrame([{new: row.get(old, np.nan) for old, new in columns.items()}
                              for row in rows], columns=list(columns.values()))
        frame["epoch"] = frame["epoch"].astype(int)
        self.history_ = frame
        # Best over this fit's epochs: with warm_start, skorch tracks (and
        # restores) the best weights per fit, so earlier fits do not count.
        this_fit = frame.iloc[first_epoch:] if len(frame) > first_epoch else frame
        monitored = "valid_loss" if this_fit["valid_loss"].notna().any() else "train_loss"
        losses = this_fit[monitored].to_numpy(dtype=float)
        if not len(losses):
            self.best_epoch_ = 0
        elif np.isnan(losses).all():
            self.best_epoch_ = int(this_fit["epoch"].iloc[-1])
        else:
            self.best_epoch_ = int(this_fit["epoch"].iloc[int(np.nanargmin(losses))])
        self.n_epochs_ = len(frame)
        self.module_ = net.module_
        for _, callback in net.callbacks_:
            if isinstance(callback, EarlyStopping):
                callback.best_model_weights_ = None  # keep pickles small

    def _score_names(self):
        return ()

    def _history_columns(self):
        """{key in the skorch net's history: column of ``history_``}."""
        return {"epoch": "epoch", "train_loss": "train_loss", "valid_loss": "valid_loss",
                **{f"valid_{m}": f"valid_{m}" for m in self._score_names()},
                "lr": "lr", "dur": "seconds"}

    # --- prediction --------------------------------------------------------------

    def _forward(self, X):
        """Module outputs for ``X`` as a float32 tensor (eval mode, no grad)."""
        check_is_fitted(self)
        return self._run(validate_data(self, X, reset=False, dtype=np.float32))

    def _run(self, X, module=None):
        """Outputs of ``module`` (default ``module_``) for the validated array ``X``."""
        device = _resolve_device(self.device)
        with _ThreadLimit(self.n_threads):
            net = move_net(self.net_, device)
            return net.forward_all(to_tensor(X, net.device), module)

    # --- pickling ----------------------------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.get("net_")
        if net is None:
            return state
        # Training continues from the optimizer's state only with warm_start
        # or partial_fit; otherwise the pickle leaves it out (Adam's is twice
        # the weights).
        net.keep_optimizer_state = bool(getattr(self, "warm_start", False)
                                        or getattr(self, "_partial_fitted", False))
        # Modules exposed as attributes (module_, ...) are parts of net_.module_:
        # pickle their paths, so the weights are stored once, device-mapped.
        paths = {id(module): path for path, module in net.module_.named_modules()}
        for key, value in state.items():
            if isinstance(value, torch.nn.Module) and id(value) in paths:
                state[key] = _Submodule(paths[id(value)])
        state["_saved_device"] = str(net.device)
        return state

    def __setstate__(self, state):
        saved_device = state.pop("_saved_device", None)
        super().__setstate__(state)
        for key, value in vars(self).items():
            if isinstance(value, _Submodule):
                setattr(self, key, self.net_.module_.get_submodule(value.path))
        if saved_device is not None and torch.device(saved_device) != torch.device(self.net_.device):
            fallback = ("with device='auto' it runs on the CPU." if self.device == "auto" else
                        "its weights were loaded on the CPU, and predict and fit raise until "
                        "you call set_params(device='cpu') or set_params(device='auto').")
            warnings.warn(f"{type(self).__name__} was trained on {saved_device!r}, which this "
                          f"machine lacks; {fallback}", UserWarning, stacklevel=2)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_") and hasattr(self, "history_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def _rows(X, targets, index):
    """Rows ``index`` of ``X`` and of the targets, taken once when they are one array."""
    X_rows = X[index]
    return X_rows, (X_rows if targets is X else targets[index])


class _Submodule:
    """Pickled in place of an estimator attribute that is part of ``net_.module_``."""

    def __init__(self, path):
        self.path = path


class _Penalty:
    """``l1 * sum|W| + l2 / 2 * sum W^2`` over linear weights (picklable)."""

    def __init__(self, l1, l2):
        self.l1, self.l2 = l1, l2

    def __call__(self, module):
        total = 0.0
        if self.l1:
            total = total + self.l1 * l1_penalty(module)
        if self.l2:
            total = total + self.l2 / 2 * sum((layer.weight ** 2).sum()
                                              for layer in linear_layers(module))
        return total


def _silent(*args, **kwargs):
    """Sink for skorch messages that sknets reports itself."""


def _warn_once(message):
    warnings.warn(message, UserWarning, stacklevel=3)
