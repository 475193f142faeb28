"""The scikit-learn template every sknets network follows, and the fitted state it owns.

``BaseNetwork`` validates the parameters and the data, hands the training to
the engine (``sknets._engine``), and keeps what a successful fit produced in
one :class:`FittedState`, written at the very end of the fit. Nothing else
writes fitted attributes, so a fit that raises leaves the estimator exactly
as it was, and ``save``, pickling and warm starts all read the same state,
including the parameters the network was built and trained with.

Subclasses say only what differs per task: how targets are encoded, which
module and loss to build, and which validation score to keep.
"""

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (_assert_all_finite, check_array, check_is_fitted, check_X_y,
                                      validate_data)

from . import _archive, _params
from ._engine.build import OPTIMIZERS, build_net
from ._engine.fused import onednn_step
from ._engine.modules import ACTIVATIONS, TabularNetwork
from ._engine.net import TensorData, TensorNet, to_tensor
from ._engine.resources import (
    ThreadLimit,
    move_net,
    prediction_threads,
    resolve_device,
    step_products,
    training_flops,
)
from ._engine.schedules import SCHEDULES
from ._engine.sparse import SparseData, dense_chunks
from ._input import TableEncoder, as_float, check_finite_outputs
from ._input.tables import (column_names, missing_values_error, nan_columns, needs_encoder,
                            sparse_missing_error)
from ._params import InstanceOf, Interval, LayerWidths, Options
from .exceptions import DivergenceWarning, TrainingInterruptedWarning
from ._input.splits import holdout_indices

# Constraints shared by every network estimator; subclasses extend the dict.
NETWORK_CONSTRAINTS = {
    "hidden_layers": [LayerWidths()],
    "activation": [Options(*ACTIVATIONS)],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "batch_norm": [Options(True, False)],
    "l1": [Interval(Real, 0, None)],
    "l2": [Interval(Real, 0, None)],
    "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), Options(None)],
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
    "lr_warmup_epochs": [Interval(Integral, 0, None)],
    "early_stopping": [Options(True, False)],
    "patience": [Interval(Integral, 1, None), Options(None)],
    "tol": [Interval(Real, 0, None)],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "random_state": [Interval(Integral, 0, 2**32 - 1), Options(None),
                     InstanceOf(np.random.RandomState)],
    "device": [Options("cpu", "cuda", "auto"), InstanceOf(str, name="a torch device string")],
    "n_threads": [Interval(Integral, 1, None), Options(None)],
    "verbose": [Interval(Integral, 0, None), Options(True, False)],
    "callbacks": [Options(None), InstanceOf(list, tuple, name="a list of skorch callbacks")],
}

_CHOICES = dict(activation=tuple(ACTIVATIONS), optimizer=tuple(OPTIMIZERS), schedule=SCHEDULES)
NETWORK_LAYERS_DOC = _params.fill_choices(_params.NETWORK_LAYERS_DOC, **_CHOICES)
NETWORK_TRAINING_DOC = _params.fill_choices(_params.NETWORK_TRAINING_DOC, **_CHOICES)
NETWORK_PARAMETERS_DOC = NETWORK_LAYERS_DOC + "\n    " + NETWORK_TRAINING_DOC


@dataclass
class FittedState:
    """Everything a fitted network is: what ``predict``, ``save``, pickling and warm starts read.

    Written once, at the end of a successful fit (or by ``load``), by
    :meth:`BaseNetwork._set_fitted_state`.

    Attributes
    ----------
    params : dict
        ``get_params()`` of the fit that built and trained the network.
        ``save`` writes these, not the estimator's current parameters.
    n_features_in : int
    feature_names_in : ndarray of str or None
    targets : dict
        The task's target state, as fitted attributes: ``{"classes_": ...}``
        for a classifier (with ``"_multilabel": True`` for one trained on
        a multi-label indicator matrix), ``{"n_outputs_": ..., "_y_1d": ...}`` for a
        regressor, ``{}`` for an autoencoder.
    history : pandas.DataFrame
        One row per complete epoch (``history_``).
    best_epoch : int
    fit_seconds : float
    net : TensorNet
        The trained module, its optimizer (with its state), the epoch
        history and the state of the batch order.
    seed : int
        Seed of the weights, batch order and dropout; a continued fit
        seeds with ``seed + n_epochs``.
    partial : bool
        Trained by ``partial_fit``: pickles keep the optimizer's state, as
        they do with ``warm_start``.
    tables : sknets._input.TableEncoder or None
        How the user's columns become the network's input (imputation,
        standardisation, categories), learned by the first fit; None when
        the input goes to the network as it is (numeric arrays without
        missing values, sparse matrices).
    """

    params: dict
    n_features_in: int
    feature_names_in: np.ndarray | None
    targets: dict
    history: pd.DataFrame
    best_epoch: int
    fit_seconds: float
    net: TensorNet
    seed: int
    partial: bool = False
    tables: TableEncoder | None = None

    @property
    def n_epochs(self):
        return len(self.history)

    def weights(self):
        """The module's ``state_dict`` as CPU tensors."""
        return {key: tensor.detach().cpu().contiguous()
                for key, tensor in self.net.module_.state_dict().items()}


class BaseNetwork(BaseEstimator):
    """Shared fit/predict machinery; not for direct use."""

    _parameter_constraints = NETWORK_CONSTRAINTS
    # Parameters that shape the network: a continued fit (warm_start,
    # partial_fit) cannot change them, since it trains the existing network.
    _network_params = ("hidden_layers", "activation", "dropout", "batch_norm")
    # What differs per task.
    _target_dtype = torch.float32
    _target_attributes = ()  # the fitted attributes of the target state (classes_, ...)
    # Parameters a model file leaves out: they shape training, not the network,
    # and have no safe JSON form.
    _unsaved_params = ("callbacks",)
    _score_name = None  # validation score recorded as valid_<name> every epoch
    # Whether the estimator takes the table parameters (categorical_features,
    # one_hot_max_categories, standardize, missing_values) and encodes tables itself.
    _table_input = False
    _validate_kwargs = {}
    # The fitted attributes that expose the fitted state (besides the target state's).
    _exposed_attributes = ("n_features_in_", "feature_names_in_", "history_", "best_epoch_",
                           "n_epochs_", "fit_seconds_", "net_", "module_")

    # --- hooks for subclasses -------------------------------------------------

    def _check_data(self, checker, X, y, reset):
        """``(X, y)`` validated by scikit-learn against ``checker``, ``X`` as float32.

        ``checker`` is the estimator whose ``n_features_in_`` a non-reset
        check compares against, and on which a reset check records it. An
        autoencoder returns ``(X, X)``: its targets are its inputs, and
        passing the very same array lets the engine hold one tensor for both.
        """
        return validate_data(checker, X, y, reset=reset, dtype=np.float32,
                             **self._validate_kwargs)

    def _fit_targets(self, y, classes=None):
        """The target state (a dict of fitted attributes) that ``y`` defines."""
        return {}

    def _encode_targets(self, y, targets):
        """Targets as the array the loss expects."""
        raise NotImplementedError

    def _n_outputs(self, n_features, targets):
        raise NotImplementedError

    def _build_module(self, n_features, n_outputs):
        raise NotImplementedError

    def _criterion(self):
        raise NotImplementedError

    def _valid_metrics(self, y_valid):
        """``metrics(y_pred, y_true) -> {name: batch sum}`` for the net."""
        return None

    def _split_stratify(self, encoded):
        return None

    def _epoch_scorer(self, targets, has_valid):
        """The score the engine computes after every epoch, or None (the validation loss).

        Returns ``None`` or an object with ``name`` (history key
        ``valid_<name>``) and ``__call__(outputs, y_valid) -> float``, where
        ``outputs`` are the module's outputs for the validation inputs and
        ``y_valid`` the encoded validation targets (both tensors); higher is
        better.
        """
        return None

    def _sample_weight(self, sample_weight, encoded, targets):
        return sample_weight

    # --- fitting ---------------------------------------------------------------

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
        return self._fit(X, y, epochs=0)

    def _fit(self, X, y, *, sample_weight=None, validation_data=None, epochs,
             warm=False, partial=False, classes=None):
        """Train and, only if training succeeds, replace the fitted state.

        ``warm``: continue from the fitted state, if there is one.
        """
        _params.validate_params(self)
        params = _snapshot(self.get_params(deep=False))
        previous = self._fitted if warm and self.__sklearn_is_fitted__() else None
        if previous is not None:
            self._check_network_unchanged(previous.params, params, partial)
        # A first fit records n_features_in_ on a stand-in (a shallow copy),
        # never on self, so that a failed call leaves self untouched.
        checker = copy.copy(self) if previous is None else self
        X, y, tables = self._check_input(checker, X, y, params, reset=previous is None,
                                         tables=None if previous is None else previous.tables)
        if X.shape[0] == 0:
            raise ValueError("X is empty: fitting needs at least one sample.")
        targets = self._fit_targets(y, classes) if previous is None else previous.targets
        encoded = self._encode_targets(y, targets)
        weights = self._sample_weight(sample_weight, encoded, targets)
        n_features = checker.n_features_in_
        device = resolve_device(self.device)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            seed = _draw_seed(self.random_state) if previous is None else previous.seed
            _seed_torch(seed + (0 if previous is None else previous.n_epochs), device)
            valid, (X, encoded, weights) = self._validation_set(
                checker, X, encoded, weights, validation_data, targets,
                np.random.RandomState(seed), device, params, tables)
            if self.batch_norm and min(self.batch_size, X.shape[0]) < 2:
                raise ValueError(
                    "batch_norm=True needs mini-batches of at least 2 samples; got "
                    f"batch_size={self.batch_size} and {X.shape[0]} training samples.")
            if previous is None:
                module = self._new_module(n_features, targets, tables)
            else:
                module = copy.deepcopy(previous.net.module_)
            batch = min(self.batch_size, X.shape[0])
            # The step's products and the validation passes': threads chosen
            # by the load only where none of them rounds otherwise on two.
            products = step_products(module, batch, X.shape[0],
                                     eval_rows=None if valid is None else len(valid),
                                     eval_limit=getattr(valid, "eval_batch_size", None))
            with ThreadLimit(self.n_threads, work=training_flops(module, batch), batch_size=batch,
                             products=products,
                             onednn=onednn_step(module, self._criterion(), device)):
                train = self._dataset(X, encoded, weights, device)
                net = build_net(params, module, self._criterion(), device=device, seed=seed,
                                has_valid=valid is not None,
                                previous=None if previous is None else previous.net,
                                previous_optimizer=None if previous is None else
                                previous.params["optimizer"],
                                scorer=self._epoch_scorer(targets, valid is not None)
                                if epochs or valid is not None else None)
                outcome = None
                if epochs:
                    metrics = None if valid is None else self._valid_metrics(valid.y)
                    outcome = net.train_epochs(train, valid, metrics, epochs)
                else:
                    # Where training's dropout masks would start drawing from:
                    # a stacked search trains this net as its fit would.
                    net.training_rng_state = torch.get_rng_state()
        self._set_fitted_state(FittedState(
            params=params, n_features_in=n_features,
            feature_names_in=getattr(checker, "feature_names_in_", None), targets=targets,
            history=self._history_frame(net.history_records(self._history_columns(params)),
                                        params),
            best_epoch=0 if outcome is None else
            outcome.best_epoch, fit_seconds=time.perf_counter() - start, net=net, seed=seed,
            partial=partial, tables=tables))
        if outcome is not None:
            self._warn_if_cut_short(outcome)
        return self

    def _check_network_unchanged(self, before, now, partial):
        """Refuse a continued fit whose parameters describe another network."""
        for name in self._network_params:
            old, new = before[name], now[name]
            if name == "hidden_layers":
                old, new = _params.as_widths(old), _params.as_widths(new)
            if old != new:
                how = "partial_fit" if partial else "warm_start=True"
                fix = ("call fit to train a new network" if partial else
                       "set warm_start=False to train a new network")
                raise ValueError(
                    f"{name} is {now[name]!r}, but the fitted network was built with "
                    f"{name}={before[name]!r}; {how} continues training that network, whose "
                    f"{name} cannot change. Set {name}={before[name]!r} back, or {fix}.")

    def _validation_set(self, checker, X, encoded, weights, validation_data, targets, rng,
                        device, params, tables):
        """(validation data or None, (X, targets, weights) to train on)."""
        if validation_data is not None:
            X_val, y_val, _ = self._check_input(checker, *validation_data, params, reset=False,
                                                tables=tables)
            encoded_val = self._encode_targets(y_val, targets)
            return self._dataset(X_val, encoded_val, None, device), (X, encoded, weights)
        if not self.early_stopping:
            return None, (X, encoded, weights)
        train_idx, valid_idx = holdout_indices(X.shape[0], self.validation_fraction, rng,
                                               self._split_stratify(encoded))
        valid = self._dataset(*_rows(X, encoded, valid_idx), None, device)
        kept = None if weights is None else weights[train_idx]
        return valid, (*_rows(X, encoded, train_idx), kept)

    def _dataset(self, X, encoded, weights, device):
        """The engine's data: device tensors; for a sparse ``X``, batches densified when used."""
        weights = None if weights is None else to_tensor(weights, device)
        if sp.issparse(X):
            return SparseData(X, to_tensor(encoded, device, self._target_dtype), weights, device)
        return TensorData(*self._tensors(X, encoded, device), weights)

    def _tensors(self, X, encoded, device):
        """``X`` and the targets as device tensors; one tensor when they are one array."""
        X_tensor = to_tensor(as_float(X), device)
        if encoded is X:
            return X_tensor, X_tensor
        return X_tensor, to_tensor(encoded, device, self._target_dtype)

    # --- input -----------------------------------------------------------------

    def _check_input(self, checker, X, y, params, *, reset, tables):
        """``(X as the network reads it, y, table encoder or None)``, validated.

        ``y`` is ``_NO_Y`` at predict. Estimators without ``_table_input``
        check through :meth:`_check_data`. The others take:

        * numeric arrays without missing values exactly as before: one
          float32 copy, no encoder;
        * sparse matrices (as float32 CSR, NaN refused);
        * DataFrames with categorical or string columns, or to standardise,
          and any input with missing values to impute: through a
          :class:`~sknets._input.TableEncoder`, learned by the first fit
          (``reset``) and reused by every later call, never refitted.

        ``checker`` records or checks ``n_features_in_`` and
        ``feature_names_in_`` of the user's columns, as scikit-learn's
        ``validate_data`` does.
        """
        if not self._table_input:
            X, y = self._check_data(checker, X, None if _is_no_y(y) else y, reset)
            return X, y, None
        missing_values = params["missing_values"]
        if sp.issparse(X):
            return (*self._check_sparse(checker, X, y, params, reset, tables), None)
        selection = params["categorical_features"]
        explicit = not (selection is None or isinstance(selection, str))
        if explicit and not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        if tables is None and reset and needs_encoder(X, selection, params["standardize"]):
            _validated(checker, X, _NO_Y, reset=True, skip_check_array=True)
            tables = TableEncoder.fit(X, selection, params["one_hot_max_categories"],
                                      params["standardize"], missing_values)
            return (*self._encoded(tables, X, y, missing_values), tables)
        if tables is not None:
            _validated(checker, X, _NO_Y, reset=False, skip_check_array=True)
            return (*self._encoded(tables, X, y, missing_values), tables)
        predicting = _is_no_y(y) and not reset
        # X's values are checked below, in one pass where all are finite.
        X, y = _validated(checker, X, y, reset=reset, dtype=np.float32,
                          ensure_all_finite=False, **self._y_kwargs(y))
        if predicting:
            # No pass over X here: _run checks the first layer's outputs, which
            # are not finite wherever X is not, and only then reads X value by value.
            return X, None, None
        missing = self._nan_columns(X, params["n_threads"])
        if not missing:
            return X, y, None  # numeric arrays without NaN: no encoder at all
        if missing_values == "error" or not reset:
            raise self._missing_values_error(checker, X, missing, missing_values)
        tables = TableEncoder.fit(X, None, params["one_hot_max_categories"], False, missing_values)
        return tables.transform(X), y, tables

    @staticmethod
    def _nan_columns(X, n_threads=None):
        """Positions of the columns of the float32 array ``X`` with NaN; raise on infinity.

        One float32 sum answers for the usual case: it is finite only if
        every value is (an overflow of the sum merely sends it to the exact
        check). torch sums on the fit's threads (9 ms for 60,000 images on
        2 threads, against 27 ms for NumPy's sum). scikit-learn's
        ``assume_finite=True`` skips the pass: the caller vouches for no NaN
        nor infinity.
        """
        if get_config()["assume_finite"] or X.size == 0:
            return []
        if min(X.strides) < 0:  # a reversed view, which torch does not take
            finite = np.isfinite(X.sum())
        else:
            with warnings.catch_warnings():
                # A read-only array: the sum only reads it.
                warnings.filterwarnings("ignore", "The given NumPy array is not writable")
                values = torch.from_numpy(X)
            with ThreadLimit(n_threads):
                finite = bool(torch.isfinite(values.sum()))
        if finite:
            return []
        _assert_all_finite(X, allow_nan=True, input_name="X")
        return nan_columns(X)

    def _missing_values_error(self, checker, X, missing, missing_values):
        """The error for the columns ``missing`` (positions) of ``X`` that hold NaN."""
        names = [column_names(X)[j] if getattr(checker, "feature_names_in_", None) is None
                 else str(checker.feature_names_in_[j]) for j in missing]
        return missing_values_error(names, fitted_without=missing_values != "error")

    def _refuse_non_finite(self, X):
        """Raise the error naming what is not finite in the validated float32 array ``X``.

        Returns quietly if every value is finite.
        """
        _assert_all_finite(X, allow_nan=True, input_name="X")
        missing = nan_columns(X)
        if missing:
            raise self._missing_values_error(
                self, X, missing, self._fitted.params.get("missing_values", "error"))

    def _y_kwargs(self, y):
        """The class's ``validate_data`` options about ``y``, when there is a ``y``."""
        return {} if _is_no_y(y) else self._validate_kwargs

    def _encoded(self, tables, X, y, missing_values):
        """``(tables.transform(X), y)``, with ``y`` checked by scikit-learn against it."""
        encoded = tables.transform(X, missing_values)
        if _is_no_y(y):
            return encoded, None
        return check_X_y(encoded, y, dtype=np.float32, **self._validate_kwargs)

    def _check_sparse(self, checker, X, y, params, reset, tables):
        """A sparse ``X`` as float32 CSR, and ``y``; missing values are refused."""
        if tables is not None:
            raise ValueError(
                f"X is a sparse matrix, but {type(self).__name__} was fitted on a table whose "
                "columns it encodes (categories, missing values, standardisation): pass a "
                "table like the one of the first fit.")
        selection = params["categorical_features"]
        if not (selection is None or isinstance(selection, str)):
            raise ValueError(
                "categorical_features selects columns, but X is a sparse matrix, whose columns "
                "are numeric: encode the categories first (e.g. with "
                "sklearn.preprocessing.OneHotEncoder), or pass a DataFrame.")
        X, y = _validated(checker, X, y, reset=reset, accept_sparse="csr", dtype=np.float32,
                          ensure_all_finite="allow-nan", **self._y_kwargs(y))
        if not np.isfinite(X.data).all():
            raise sparse_missing_error(X)
        return X, y

    def _history_columns(self, params=None):
        """{key in the engine's history: column of ``history_``}.

        ``params`` are the parameters of the fit the history belongs to
        (default: the fitted state's, else the current ones): ``scoring``
        adds its column.
        """
        if params is None:
            params = (self._fitted.params if self.__sklearn_is_fitted__() else
                      self.get_params(deep=False))
        names = [] if self._score_name is None else [self._score_name]
        scoring = params.get("scoring")
        if scoring is not None:
            names.append(scoring if isinstance(scoring, str) else "score")
        scores = {f"valid_{name}": f"valid_{name}" for name in dict.fromkeys(names)}
        return {"epoch": "epoch", "train_loss": "train_loss", "valid_loss": "valid_loss",
                **scores, "lr": "lr", "dur": "seconds"}

    def _history_frame(self, records, params=None):
        """``history_`` from records ``{column: value}``, one per epoch."""
        frame = pd.DataFrame(records, columns=list(self._history_columns(params).values()))
        frame["epoch"] = frame["epoch"].astype(int)
        return frame

    def _new_module(self, n_features, targets, tables=None):
        """An untrained network for ``n_features`` inputs and the target state ``targets``.

        With a table encoder, the network reads the encoder's columns; when
        some categorical columns are embedded, it is a
        :class:`~sknets._engine.modules.TabularNetwork` around the MLP.
        """
        if tables is None:
            return self._build_module(n_features, self._n_outputs(n_features, targets))
        width = tables.n_dense + sum(dim for _, dim in tables.embeddings)
        network = self._build_module(width, self._n_outputs(width, targets))
        if not tables.embedded:
            return network
        return TabularNetwork(network, tables.n_dense, tables.embeddings)

    def _warn_if_cut_short(self, outcome):
        scoring = self._fitted.params.get("scoring")
        best = ("lowest validation loss" if scoring is None else
                f"highest valid_{scoring if isinstance(scoring, str) else 'score'}")
        restored = (f"the weights of epoch {outcome.best_epoch} ({best}) were "
                    "restored" if outcome.restored else
                    "the weights are those at the interruption")
        if outcome.divergence is not None:
            warnings.warn(f"{outcome.divergence} Training stopped; {restored}.",
                          DivergenceWarning, stacklevel=4)
        elif outcome.interrupted_epoch is not None:
            warnings.warn(
                f"Training was interrupted in epoch {outcome.interrupted_epoch}; {restored}, "
                f"and history_ holds the {self.n_epochs_} complete epochs.",
                TrainingInterruptedWarning, stacklevel=4)

    # --- the fitted state -------------------------------------------------------

    def _get_fitted_state(self):
        """The :class:`FittedState` of the last successful fit.

        Raises
        ------
        NotFittedError
        """
        check_is_fitted(self)
        return self._fitted

    def _set_fitted_state(self, state, weights=None):
        """Make ``state`` the estimator's fitted state and expose it as fitted attributes.

        The one place fitted attributes are written. A state read from a
        file has no net yet (``state.net is None``): the network that
        ``state.params`` describe is built, and ``weights`` (a
        ``state_dict``) loaded into it.
        """
        if state.net is None:
            state.net = self._restore_net(state, weights)
        for name in self._fitted_attributes():
            self.__dict__.pop(name, None)
        self._fitted = state
        self.n_features_in_ = state.n_features_in
        if state.feature_names_in is not None:
            self.feature_names_in_ = state.feature_names_in
        for name, value in state.targets.items():
            setattr(self, name, value)
        self.history_ = state.history
        self.best_epoch_ = state.best_epoch
        self.n_epochs_ = state.n_epochs
        self.fit_seconds_ = state.fit_seconds
        self.net_ = state.net
        self.module_ = state.net.module_

    def _fitted_attributes(self):
        """Names of the attributes :meth:`_set_fitted_state` writes (``_fitted`` too)."""
        targets = tuple(self._fitted.targets) if self.__sklearn_is_fitted__() else ()
        return ("_fitted", *self._exposed_attributes, *targets)

    def _input_width(self):
        """Columns of the matrix the fitted network reads.

        ``n_features_in_``, unless a table encoder turns the user's columns
        into more (missing indicators, one-hot blocks) or embedded codes.
        """
        state = self._get_fitted_state()
        return state.n_features_in if state.tables is None else state.tables.n_columns

    def _weights_spec(self, state):
        """{name: (shape, dtype)} of the tensors of the network ``state`` describes.

        Built on torch's meta device: no memory is allocated, whatever the
        sizes, so a model file can be checked before anything is built.

        Raises
        ------
        ValueError or RuntimeError
            If the parameters cannot work together, or name a device this
            machine lacks.
        """
        torch.device(resolve_device(self.device))
        n_features = state.n_features_in
        with torch.device("meta"):
            module = self._new_module(n_features, state.targets, state.tables)
        return {key: (tuple(t.shape), t.dtype) for key, t in module.state_dict().items()}

    def _restore_net(self, state, weights):
        """The net of a state read from a file: its module, weights and history."""
        n_features = state.n_features_in
        module = self._new_module(n_features, state.targets, state.tables)
        module.load_state_dict(weights, strict=True)
        net = build_net(state.params, module, self._criterion(),
                        device=resolve_device(self.device), seed=state.seed, has_valid=False)
        net.restore_history(state.history.to_dict("records"),
                            self._history_columns(state.params))
        return net

    # --- saving -------------------------------------------------------------------

    def save(self, path):
        """Write the fitted estimator to one file that :func:`sknets.load` reads.

        The file is a zip holding ``model.json`` (the parameters the network
        was trained with, the fitted state, the history, library versions)
        and ``weights.safetensors``: loading it never executes code, unlike a
        pickle. Parameters changed with ``set_params`` since the last fit are
        not saved: the file describes the network that exists. See
        ``docs/persistence.md``.

        Parameters
        ----------
        path : str, path-like or binary file object
            A path is written atomically: a crash leaves any previous file intact.

        Raises
        ------
        ValueError
            If the estimator is a subclass that :func:`sknets.load` could
            not rebuild, or a parameter has no JSON form (a ``RandomState``
            as ``random_state``, say).

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
        state = self._get_fitted_state()
        if type(self).__module__.partition(".")[0] != "sknets":
            raise ValueError(
                f"Only sknets' own estimators can be saved with save(); got "
                f"{type(self).__module__}.{type(self).__qualname__}. Use pickle for "
                "subclasses (see docs/persistence.md).")
        saved = replace(state, params={
            name: value for name, value in state.params.items()
            if name not in self._unsaved_params})
        _archive.write_model(path, type(self).__name__, saved,
                             list(self._history_columns(state.params).values()))

    # --- prediction --------------------------------------------------------------

    def _forward(self, X):
        """Module outputs for ``X`` as a float32 tensor (eval mode, no grad)."""
        check_is_fitted(self)
        X, _, _ = self._check_input(self, X, _NO_Y, self._fitted.params, reset=False,
                                    tables=self._fitted.tables)
        return self._run(X)

    def _run(self, X, module=None):
        """Outputs of ``module`` (default ``module_``) for the validated array ``X``.

        ``device`` and ``n_threads`` are read from the current parameters:
        ``set_params(device="cpu")`` runs a fitted model elsewhere.
        """
        device = resolve_device(self.device)
        network = self._fitted.net.module_ if module is None else module
        with ThreadLimit(prediction_threads(self.n_threads, network, X.shape[0])):
            net = move_net(self._fitted.net, device)
            if sp.issparse(X):  # densified chunk by chunk, never whole
                parts = []
                for chunk in dense_chunks(X, net.device):
                    parts.append(net.forward_all(chunk, module))
                    check_finite_outputs(parts[-1], chunk)
                return torch.cat(parts)
            X_tensor = to_tensor(as_float(X), net.device)
            with _first_layer_finiteness(net.module_ if module is None else module) as finite:
                outputs = net.forward_all(X_tensor, module)
        if not finite():
            # A NaN or an infinity in a row of X makes that row of the first
            # layer's outputs non-finite, whatever the later layers saturate.
            self._refuse_non_finite(X)
        check_finite_outputs(outputs, X_tensor)
        return outputs

    # --- pickling ----------------------------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        fitted = state.get("_fitted")
        if fitted is None:
            return state
        # The fitted attributes are views of the fitted state: pickle the
        # state once and expose it again on unpickling.
        for name in self._fitted_attributes()[1:]:
            state.pop(name, None)
        # Training continues from the optimizer's state only with warm_start
        # or partial_fit; otherwise the pickle leaves it out (Adam's is twice
        # the weights).
        warm_start = self.get_params().get("warm_start", False)
        fitted.net.keep_optimizer_state = bool(warm_start or fitted.partial)
        state["_saved_device"] = str(fitted.net.device)
        return state

    def __setstate__(self, state):
        saved_device = state.pop("_saved_device", None)
        super().__setstate__(state)
        if "_fitted" not in state:
            return
        self._set_fitted_state(self._fitted)
        if saved_device is not None and torch.device(saved_device) != torch.device(self.net_.device):
            fallback = ("with device='auto' it runs on the CPU." if self.device == "auto" else
                        "its weights were loaded on the CPU, and predict and fit raise until "
                        "you call set_params(device='cpu') or set_params(device='auto').")
            warnings.warn(f"{type(self).__name__} was trained on {saved_device!r}, which this "
                          f"machine lacks; {fallback}", UserWarning, stacklevel=2)

    def __sklearn_is_fitted__(self):
        return "_fitted" in vars(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        if self._table_input:
            tags.input_tags.allow_nan = self.missing_values == "impute"
            tags.input_tags.sparse = True
        return tags


# ``y`` of a call that has none (predict): scikit-learn's own marker.
_NO_Y = "no_validation"


def _is_no_y(y):
    return isinstance(y, str) and y == _NO_Y


@contextlib.contextmanager
def _first_layer_finiteness(module):
    """Yield ``finite()``: whether every output of ``module``'s first linear layer was finite.

    The first layer reads every input of a row: a NaN or an infinity in the
    inputs makes the row's outputs NaN or infinite (``inf * 0`` is NaN), so
    checking them, a tenth of the inputs' size or less, checks the inputs too.
    """
    flags = []
    first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
    if first is None:
        yield lambda: True
        return
    # A sum per batch: one reduction, no mask. A finite sum means finite
    # values; an overflowing one only sends the caller to the detailed checks.
    handle = first.register_forward_hook(
        lambda layer, inputs, output: flags.append(output.sum()))
    try:
        yield lambda: not flags or bool(torch.isfinite(torch.stack(flags)).all())
    finally:
        handle.remove()


def _validated(checker, X, y, **kwargs):
    """``(X, y)`` from scikit-learn's ``validate_data``, also when there is no ``y``."""
    if _is_no_y(y):
        return validate_data(checker, X, **kwargs), None
    return validate_data(checker, X, y, **kwargs)


def _snapshot(params):
    """The parameters a fit trains with, copied, NumPy scalars as Python ones.

    The callbacks are the caller's objects (they may hold a progress bar, a
    file...): they are kept, not copied.
    """
    params = {name: value if name == "callbacks" else _params.plain(copy.deepcopy(value))
              for name, value in params.items()}
    params["hidden_layers"] = _params.as_widths(params["hidden_layers"])
    return params


def _seed_torch(seed, device):
    """Seed torch's generator of ``device`` (its CPU generator too), as ``torch.manual_seed``.

    A CPU fit seeds the CPU generator alone: ``torch.manual_seed`` also
    queues seeding every accelerator's generator, and records a traceback
    for each (about a millisecond per fit).
    """
    if torch.device(device).type == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def _draw_seed(random_state):
    return int(check_random_state(random_state).randint(2**31 - 1))


def _rows(X, targets, index):
    """Rows ``index`` of ``X`` and of the targets, taken once when they are one array."""
    X_rows = X[index]
    return X_rows, (X_rows if targets is X else targets[index])


__all__ = ["BaseNetwork", "FittedState"]
