"""Splitting data, and hyper-parameter searches that train many small networks as one.

:func:`train_val_test_split` and :func:`holdout_indices` split data.
:class:`GridSearchCV` and :class:`RandomizedSearchCV` are scikit-learn's
searches, with the same parameters and results; candidates of one depth that
differ only in learning rate, penalty, momentum, dropout, widths and
learning-rate schedule are trained together, in lockstep on the same
mini-batches, once per cross-validation split (see
``docs/stacked-search.md``).
"""

import copy
import math
import numbers
import os
import pickle
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from numbers import Integral

import joblib
import numpy as np
import sklearn
from sklearn import model_selection as _sk
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.model_selection import check_cv, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state

from ._engine.resources import split_invariant
from ._engine.stacked import stackable, train_stacked
from ._input.splits import holdout_indices
from ._params import as_widths
from .mlp import MLPClassifier, MLPRegressor


def _check_sizes(sizes):
    if (
        len(sizes) != 3
        or not all(isinstance(s, numbers.Real) for s in sizes)
        or min(sizes) <= 0
        or not np.isclose(sum(sizes), 1.0)
    ):
        raise ValueError(
            "sizes must be three positive fractions (train, validation, test) "
            f"that sum to 1, e.g. (0.7, 0.15, 0.15); got {tuple(sizes)!r}."
        )


def train_val_test_split(
    X, y=None, *, sizes=(5 / 7, 1 / 7, 1 / 7), stratify=None, random_state=None, shuffle=True
):
    """Split arrays into training, validation and test sets.

    Two calls of :func:`sklearn.model_selection.train_test_split`: the first
    sets the test set aside, the second splits the rest into training and
    validation sets. The default sizes split as MNIST's 70,000 images are
    often used: 50,000 for training, 10,000 for validation, 10,000 for
    testing.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        The samples.
    y : array-like or Series of shape (n_samples,), default=None
        The targets; None for unsupervised data (e.g. an autoencoder's).
    sizes : tuple of 3 floats, default=(5/7, 1/7, 1/7)
        The fractions of the samples in the training, validation and test
        sets; each must be positive and they must sum to 1.
    stratify : array-like of shape (n_samples,), default=None
        If given (usually ``y``), all three sets keep the class proportions
        of this array.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling; pass an int for reproducible splits.
    shuffle : bool, default=True
        Whether to shuffle before splitting. If False, the sets are
        consecutive blocks in order, and ``stratify`` must be None.

    Returns
    -------
    X_train, X_val, X_test, y_train, y_val, y_test : arrays or DataFrames
        The splits, of the same type as the inputs (only the ``X`` parts
        if ``y`` is None).

    See Also
    --------
    sklearn.model_selection.train_test_split : The two-way split.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.model_selection import train_val_test_split
    >>> X, y = np.arange(140).reshape(70, 2), np.repeat([0, 1], 35)
    >>> X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
    ...     X, y, stratify=y, random_state=0)
    >>> len(X_train), len(X_val), len(X_test)
    (50, 10, 10)
    >>> np.bincount(y_val)
    array([5, 5])
    """
    _check_sizes(sizes)
    train_size, val_size, test_size = sizes
    rng = check_random_state(random_state)
    arrays = [X] + ([] if y is None else [y]) + ([] if stratify is None else [stratify])
    split = train_test_split(
        *arrays, test_size=test_size, random_state=rng, shuffle=shuffle, stratify=stratify
    )
    rest, test = split[0::2], split[1::2]
    split = train_test_split(
        *rest,
        test_size=val_size / (train_size + val_size),
        random_state=rng,
        shuffle=shuffle,
        stratify=None if stratify is None else rest[-1],
    )
    train, val = split[0::2], split[1::2]
    n_outputs = 1 if y is None else 2
    return [part for i in range(n_outputs) for part in (train[i], val[i], test[i])]


# --- searches ------------------------------------------------------------------

# The parameters stacked candidates may differ in: each member keeps its own
# optimizer (learning rate, momentum, weight decay), penalty, learning-rate
# scheduler, dropout masks and widths; the number of hidden layers is shared.
_FREE = ("lr", "l1", "l2", "momentum", "dropout", "hidden_layers", "lr_schedule", "lr_decay",
         "lr_min", "lr_step_size", "lr_gamma", "lr_patience", "lr_warmup_epochs",
         "clip_grad_norm")
# What a stacked candidate may be: the rest trains one fit per candidate.
_STACKED_ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
_REQUIRED = {"batch_norm": (False,), "warm_start": (False,), "activation": _STACKED_ACTIVATIONS,
             "device": ("cpu",), "verbose": (0, False)}
_SEEDING = threading.Lock()
# The fit parameter that tells a stand-in which rows it trains on.
_ROWS = "sknets_stacked_rows"


def _network(estimator):
    """The sknets network ``estimator`` trains (itself, or a Pipeline's last step), or None."""
    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator if type(estimator) in (MLPClassifier, MLPRegressor) else None


def _stack_key(estimator, seeds=False):
    """What candidates must share to train together, or None if this one cannot.

    ``seeds``: candidates may differ in ``random_state`` too (lockstep
    training, where each member draws its own batches), unless they hold out
    a validation set, which the seed draws.
    """
    network = _network(estimator)
    if network is None:
        return None
    params = network.get_params(deep=False)
    random_state = params["random_state"]
    if not isinstance(random_state, Integral) or isinstance(random_state, bool):
        return None
    for name, allowed in _REQUIRED.items():
        if name in params and params[name] not in allowed:
            return None
    if type(network) is MLPClassifier and params["class_weight"] is not None:
        return None
    free = _FREE + ("random_state",) if seeds and not params["early_stopping"] else _FREE
    shared = {name: value for name, value in params.items() if name not in free}
    shared["depth"] = len(as_widths(params["hidden_layers"]))
    steps = None
    if isinstance(estimator, Pipeline):
        steps = [estimator.steps[:-1], estimator.memory, estimator.verbose]
    try:
        return joblib.hash((type(network).__name__, shared, steps))
    except (pickle.PicklingError, TypeError, AttributeError):
        return None  # parameters that cannot be compared (pickled) are not grouped


def _plain_array(X):
    """Whether ``X`` is a dense, finite, numeric 2-D ndarray (what stacking trains on)."""
    return (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiub"
            and bool(np.isfinite(X).all()))


def _fit_stacked(networks, X, y, batched=False):
    """Train ``networks`` (unfitted, of one group: see ``_stack_key``) as one, on finite ``X``.

    ``batched``: as in :func:`~sknets._engine.stacked.train_stacked`.

    Returns one fitted network per member, or None for a member a separate
    fit must train (its loss diverged); None instead of the list when the
    networks or data turn out not to stack.
    """
    start = time.perf_counter()
    # The separate fit's seed, weights and optimizer. The weights are drawn
    # from torch's process-wide generator: threads of a search take turns.
    # X is a finite array (_plain_array): one check, not one per network.
    with _SEEDING, sklearn.config_context(assume_finite=True):
        for network in networks:
            network.initialize(X, y)
        states = [network._get_fitted_state() for network in networks]
        first, state = networks[0], states[0]
        if any(s.tables is not None or not stackable(s.net.module_, s.net.criterion_,
                                                     s.net.penalty) for s in states):
            return None
        X_checked, y_checked, _ = first._check_input(copy.copy(first), X, y, state.params,
                                                     reset=True, tables=None)
    encoded = first._encode_targets(y_checked, state.targets)
    params = state.params
    # The fit's hold-out (early_stopping) and training rows, as _fit takes them.
    valid, (X_train, y_train, _) = first._validation_set(
        None, X_checked, encoded, None, None, state.targets, np.random.RandomState(state.seed),
        "cpu", params, None)
    outcomes = train_stacked(
        [s.net for s in states], first._dataset(X_train, y_train, None, "cpu"), valid,
        None if valid is None else first._valid_metrics(valid.y),
        epochs=params["max_epochs"], n_threads=params["n_threads"], batched=batched,
        rng_states=[s.net.__dict__.pop("training_rng_state") for s in states])
    seconds = (time.perf_counter() - start) / len(networks)
    fitted = []
    for network, s, outcome in zip(networks, states, outcomes):
        if outcome is None:
            fitted.append(None)
            continue
        network._set_fitted_state(replace(
            s, history=network._history_frame(
                s.net.history_records(network._history_columns(s.params)), s.params),
            best_epoch=outcome.best_epoch, fit_seconds=seconds))
        network._warn_if_cut_short(outcome)
        fitted.append(network)
    return fitted


def _train_group(estimator, candidates, X, y, train, store, stacking="exact"):
    """Train one group of candidates on the rows ``train`` and store the fitted ones.

    ``stacking``: the search's parameter. "batched" stacks the members'
    layers into batched products (see
    :func:`~sknets._engine.stacked.train_stacked`) instead of lockstep
    steps; "auto" does where it is bit for bit in the process that trains
    the group (a worker may run elsewhere than the search).

    Returns ``{file name: fit seconds}`` of the candidates stored.
    """
    X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
    members = [clone(estimator).set_params(**clone(c, safe=False)) for c in candidates]
    if isinstance(estimator, Pipeline):
        start = time.perf_counter()
        head = members[0][:-1]
        X_train = head.fit_transform(X_train, y_train)
        head_seconds = time.perf_counter() - start
        if not _plain_array(X_train):
            return {}
        networks = [member.steps[-1][1] for member in members]
    else:
        head_seconds, networks = 0.0, members
    fitted = _fit_stacked(networks, X_train, y_train, batched=_batched(stacking))
    if fitted is None:
        return {}
    stored = {}
    for candidate, member, network in zip(candidates, members, fitted):
        if network is None:
            continue
        if isinstance(estimator, Pipeline):
            member.steps = [*head.steps, member.steps[-1]]
        name = _entry(candidate, train)
        with open(os.path.join(store, name), "wb") as file:
            pickle.dump(member, file, protocol=pickle.HIGHEST_PROTOCOL)
        stored[name] = network.fit_seconds_ + head_seconds / len(members)
    return stored


def _parts(group, n_tasks, n_workers):
    """``group`` cut into parts that ``n_workers`` train in even rounds.

    ``n_tasks`` groups and splits to train, one task each, would leave
    workers idle in the last round where ``n_workers`` does not divide it
    (3 splits on 2 workers: a second round of one); cutting every group
    into ``n_workers / gcd(n_tasks, n_workers)`` parts fills every round.
    A part keeps at least ``_MIN_PART`` members, so that it still trains
    many networks at once. Each member trains the same in any part.
    """
    n_parts = n_workers // math.gcd(n_tasks, n_workers)
    n_parts = max(1, min(n_parts, len(group) // _MIN_PART))
    size = -(-len(group) // n_parts)
    return [group[start:start + size] for start in range(0, len(group), size)]


# The fewest members a group is cut to (see _parts).
_MIN_PART = 4


def _batched(stacking):
    """Whether the ``stacking`` parameter trains groups batched in this process."""
    return stacking == "batched" or (stacking == "auto" and split_invariant())


def _entry(candidate, rows):
    """File name of a candidate's network fitted on ``rows``."""
    return f"{joblib.hash(candidate)}-{joblib.hash(np.asarray(rows, dtype=np.int64))}.pkl"


class _Served(BaseEstimator):
    """Stand-in for the search's estimator: serves a fit the stacked training stored.

    Its ``fit`` loads the estimator stored for its parameters and rows (the
    fit parameter ``sknets_stacked_rows``) from ``store``, or fits
    ``estimator`` when none is stored (the candidates that do not stack,
    and the refit). Everything else is the fitted estimator's.
    """

    def __init__(self, estimator, store=None):
        self.estimator = estimator
        self.store = store

    def set_params(self, **params):
        own = {name: params.pop(name) for name in list(params)
               if name in ("estimator", "store") or name.startswith("estimator__")}
        super().set_params(**own)
        if params:
            self.estimator.set_params(**params)
            self.__dict__.setdefault("candidate_", {}).update(params)
        return self

    def fit(self, X, y=None, **fit_params):
        rows = fit_params.pop(_ROWS, None)
        path = None
        if rows is not None and self.store is not None:
            path = os.path.join(self.store, _entry(self.__dict__.get("candidate_", {}), rows))
        if path is not None and os.path.exists(path):
            with open(path, "rb") as file:
                self.fitted_ = pickle.load(file)  # written by this search
        else:
            self.fitted_ = self.estimator.fit(X, y, **fit_params)
        return self

    def __sklearn_tags__(self):
        return self.estimator.__sklearn_tags__()

    def __getattr__(self, name):
        if name.startswith("__") or name in ("estimator", "store", "fitted_", "candidate_"):
            raise AttributeError(name)
        fitted = self.__dict__.get("fitted_")
        target = fitted if fitted is not None else self.__dict__.get("estimator")
        if target is None:
            raise AttributeError(name)
        return getattr(target, name)


class _StackedSearch:
    """What :class:`GridSearchCV` and :class:`RandomizedSearchCV` add to scikit-learn's."""

    def fit(self, X, y=None, **params):
        """Run the search, training candidates that can share a run as one network.

        As scikit-learn's ``fit``; see the class docstring for what is
        trained together.
        """
        if self.stacking not in STACKING:
            raise ValueError(f"stacking must be one of {STACKING}; got {self.stacking!r}.")
        groups = params.pop("groups", None)
        stacking = (not params and not sklearn.get_config()["enable_metadata_routing"]
                    and _network(self.estimator) is not None and _plain_array(X)
                    and y is not None)
        self.n_stacked_groups_, self.n_stacked_fits_ = 0, 0
        if not stacking:
            return super().fit(X, y, **params, **({} if groups is None else {"groups": groups}))
        estimator, store = self.estimator, tempfile.mkdtemp(prefix="sknets-search-")
        # Batched groups share one seed (one batch order); a worker that
        # finds "auto" not bit for bit trains such a group in lockstep.
        self._stacking = {"estimator": estimator, "X": X, "y": y, "groups": groups,
                          "store": store, "seconds": {}, "batched": _batched(self.stacking)}
        self.estimator = _Served(estimator, store)
        try:
            super().fit(X, y, groups=groups, **{_ROWS: np.arange(len(X))})
        finally:
            self.estimator = estimator
            stacked, self._stacking = self._stacking, None
            shutil.rmtree(store, ignore_errors=True)
        if hasattr(self, "best_estimator_"):
            self.best_estimator_ = self.best_estimator_.fitted_
        self._report_fit_times(stacked)
        return self

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        # scikit-learn passes callback_ctx to searches that name it (1.9 on).
        kwargs = {} if callback_ctx is None else {"callback_ctx": callback_ctx}
        stacking = getattr(self, "_stacking", None)
        if stacking is None:
            return super()._run_search(evaluate_candidates, **kwargs)

        def evaluate(candidate_params, cv=None, *args, **more):
            candidate_params = list(candidate_params)
            self._train_stacked(candidate_params, cv, stacking)
            return evaluate_candidates(candidate_params, cv, *args, **more)

        return super()._run_search(evaluate, **kwargs)

    def _train_stacked(self, candidates, cv, stacking):
        """Train the groups of ``candidates`` on every split and store the fits."""
        estimator, X, y = stacking["estimator"], stacking["X"], stacking["y"]
        groups = {}
        for candidate in candidates:
            key = _stack_key(clone(estimator).set_params(**clone(candidate, safe=False)),
                             seeds=not stacking["batched"])
            if key is not None:
                groups.setdefault(key, {})[joblib.hash(candidate)] = candidate
        groups = [list(group.values()) for group in groups.values() if len(group) > 1]
        if not groups:
            return
        if cv is None:  # the splitter scikit-learn's fit checked (an iterable is used up)
            cv = getattr(self, "_checked_cv_orig", None) or self.cv
        cv = check_cv(cv, y, classifier=is_classifier(estimator))
        splits = [train for train, _ in cv.split(X, y, stacking["groups"])]
        n_workers = joblib.effective_n_jobs(self.n_jobs)
        stored = joblib.Parallel(n_jobs=self.n_jobs)(
            joblib.delayed(_train_group)(estimator, part, X, y, train, stacking["store"],
                                         stacking=self.stacking if stacking["batched"]
                                         else "exact")
            for group in groups
            for part in _parts(group, len(groups) * len(splits), n_workers)
            for train in splits)
        for entries in stored:
            stacking["seconds"].update(entries)
        self.n_stacked_groups_ += len(groups)
        self.n_stacked_fits_ += sum(len(entries) for entries in stored)
        stacking["splits"] = splits

    def _report_fit_times(self, stacking):
        """Put each stacked fit's share of its group's training time into ``cv_results_``."""
        splits, seconds = stacking.get("splits"), stacking["seconds"]
        if not splits or not hasattr(self, "cv_results_"):
            return
        results = self.cv_results_
        for i, candidate in enumerate(results["params"]):
            times = [seconds.get(_entry(candidate, train)) for train in splits]
            if all(t is not None for t in times):
                results["mean_fit_time"][i] = np.mean(times)
                results["std_fit_time"][i] = np.std(times)


# How a group of candidates is trained: "exact", each member's own step in
# lockstep; "batched", the members' layers as batched matrix products
# (bit for bit where split_invariant() holds, faster); "auto", batched where
# it is bit for bit, exact elsewhere.
STACKING = ("auto", "exact", "batched")

_STACKING_DOC = """stacking : {"auto", "exact", "batched"}, default="auto"
        How a group of candidates is trained. "exact": each member takes its
        own fit's training step on the shared mini-batches, so it is bit for
        bit its separate fit and ``cv_results_`` equal scikit-learn's.
        "batched": the members' layers are stacked into one wide first-layer
        product and batched products for the others, which is faster; where
        torch's matrix products give the same bits for columns computed
        together or apart (MKL's strict reproducibility mode, which
        ``import sknets`` sets unless torch's MKL has computed before), each member is
        still bit for bit its separate fit; elsewhere it agrees with it to
        float32 rounding, which a few epochs of training can amplify (mean
        test scores up to about 0.005 from scikit-learn's on the benchmark
        grid of ``docs/stacked-search.md``). Members of one group then share one
        ``random_state``. "auto": "batched" where it is bit for bit,
        "exact" elsewhere. Networks whose products would round otherwise
        on another number of threads (on some CPUs, products of a few
        rows: a classifier of a few classes) train "exact" either way. On
        AMD CPUs, where fits compute their large products with oneDNN, a
        batched group computes those products member by member, each as
        its fit does, and the rest stacked."""


class GridSearchCV(_StackedSearch, _sk.GridSearchCV):
    """scikit-learn's ``GridSearchCV``, training candidates that can share a run as one network.

    Same parameters, attributes and results as
    :class:`sklearn.model_selection.GridSearchCV`. When the estimator is an
    sknets :class:`~sknets.MLPClassifier` or :class:`~sknets.MLPRegressor`
    (or a ``Pipeline`` ending in one), candidates that differ only in
    ``lr``, ``l1``, ``l2``, ``momentum``, ``dropout``, the widths of
    ``hidden_layers`` (not their number), ``lr_schedule`` with its
    parameters and warmup, and ``clip_grad_norm`` (and, in "exact" mode
    without a validation set, ``random_state``) are trained together on the
    same mini-batches, once per cross-validation split (see ``stacking``);
    each member is, bit for bit, what its own ``fit`` produces (same initial
    weights, batches, optimizer, dropout masks, steps, schedule, validation
    set, callbacks, stopping and best epoch), and is scored as scikit-learn scores any
    fitted estimator, so the results are scikit-learn's. Every other
    candidate, and the refit, is fitted on its own. What stacks is listed in
    ``docs/stacked-search.md``.

    Parameters
    ----------
    estimator, param_grid, scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, \
return_train_score
        As :class:`sklearn.model_selection.GridSearchCV`'s.
    {STACKING_DOC}

    {ATTRIBUTES_DOC}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier
    >>> from sknets.model_selection import GridSearchCV
    >>> X, y = load_digits(return_X_y=True)
    >>> search = GridSearchCV(MLPClassifier((32,), max_epochs=3, random_state=0),
    ...                       {"lr": [1e-3, 3e-3], "l2": [0.0, 1e-4]}, cv=3)
    >>> search.fit(X / 16, y).n_stacked_groups_
    1
    >>> sorted(search.best_params_)
    ['l2', 'lr']
    """

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True,
                 cv=None, verbose=0, pre_dispatch="2*n_jobs", error_score=np.nan,
                 return_train_score=False, stacking="auto"):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)
        self.stacking = stacking


class RandomizedSearchCV(_StackedSearch, _sk.RandomizedSearchCV):
    """scikit-learn's ``RandomizedSearchCV``, training candidates that can share a run as one.

    Same parameters, attributes and results as
    :class:`sklearn.model_selection.RandomizedSearchCV`; candidates are
    grouped and trained as in :class:`GridSearchCV`.

    Parameters
    ----------
    estimator, param_distributions, n_iter, scoring, n_jobs, refit, cv, verbose, \
pre_dispatch, random_state, error_score, return_train_score
        As :class:`sklearn.model_selection.RandomizedSearchCV`'s.
    {STACKING_DOC}

    {ATTRIBUTES_DOC}

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier
    >>> from sknets.model_selection import RandomizedSearchCV
    >>> X, y = load_digits(return_X_y=True)
    >>> search = RandomizedSearchCV(MLPClassifier((32,), max_epochs=3, random_state=0),
    ...                             {"lr": loguniform(1e-4, 1e-2)}, n_iter=4, cv=3,
    ...                             random_state=0)
    >>> search.fit(X / 16, y).n_stacked_fits_
    12
    """

    def __init__(self, estimator, param_distributions, *, n_iter=10, scoring=None, n_jobs=None,
                 refit=True, cv=None, verbose=0, pre_dispatch="2*n_jobs", random_state=None,
                 error_score=np.nan, return_train_score=False, stacking="auto"):
        super().__init__(estimator, param_distributions, n_iter=n_iter, scoring=scoring,
                         n_jobs=n_jobs, refit=refit, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, random_state=random_state,
                         error_score=error_score, return_train_score=return_train_score)
        self.stacking = stacking


_ATTRIBUTES_DOC = """Attributes
    ----------
    n_stacked_groups_ : int
        Groups of candidates trained together (each on every split).
    n_stacked_fits_ : int
        Candidate-split fits trained together with others; the others
        (``len(cv_results_["params"]) * n_splits_`` in all) were separate fits."""

for _search in (GridSearchCV, RandomizedSearchCV):
    _search.__doc__ = _search.__doc__.replace("{STACKING_DOC}", _STACKING_DOC).replace(
        "{ATTRIBUTES_DOC}", _ATTRIBUTES_DOC)

__all__ = ["GridSearchCV", "RandomizedSearchCV", "holdout_indices", "train_val_test_split"]
