"""sknets' skorch callbacks: tracking the best epoch, stopping, and progress output.

:class:`BestWeights` knows which epochs are complete and which one was best,
and restores that epoch's weights; :class:`StopWhenStalled` ends training
when the monitored value stops improving. Both watch a loss (lower is
better) or, with a validation scorer, a score (higher is better). Both replace skorch's
``EarlyStopping``, whose internals sknets would otherwise have to read.

``verbose=1`` on any sknets estimator prints one line per epoch through
:class:`EpochLog`; ``verbose=2`` also draws a progress bar over the batches
of each epoch through :class:`BatchProgressBar`. With ``verbose=0`` neither
callback is installed, so training reads no value back from the device
between epochs.
"""

import math
import time
from typing import NamedTuple

from skorch.callbacks import Callback
from tqdm.auto import tqdm


class Monitor(NamedTuple):
    """What a fit watches: for the best epoch, for stopping and for "plateau".

    Examples
    --------
    >>> from sknets._engine.callbacks import Monitor
    >>> Monitor.of(has_valid=False, scorer=None)
    Monitor(key='train_loss', lower_is_better=True, has_valid=False)
    """

    key: str
    """History key: "train_loss", "valid_loss" or "valid_<scorer name>"."""
    lower_is_better: bool
    """True for a loss, False for a score."""
    has_valid: bool
    """Whether the fit has a validation set."""

    @classmethod
    def of(cls, has_valid, scorer=None):
        """The validation score (with a scorer and a validation set), else the validation loss.

        Without a validation set, the training loss.
        """
        if has_valid and scorer is not None:
            return cls(f"valid_{scorer.name}", False, True)
        return cls("valid_loss" if has_valid else "train_loss", True, has_valid)

    @property
    def is_score(self):
        return not self.lower_is_better

class BestWeights(Callback):
    """Track the complete epochs and the best one; restore its weights at the end.

    The best epoch is the one with the lowest ``monitor`` value (the
    highest with ``lower_is_better=False``) among the epochs of this
    training call (NaN never counts). An epoch is complete
    once this callback has seen its end; what it knows is kept in one tuple
    assigned at once, so an interrupt (Ctrl-C) at any moment leaves the
    complete epochs, the best epoch and its weights consistent.

    Parameters
    ----------
    monitor : str
        History key of the value to watch ("valid_loss", "train_loss", or a
        validation score such as "valid_roc_auc").
    restore : bool
        Keep a copy of the best epoch's weights and load it into the module
        when training ends (normally, by early stopping or by an interrupt).
    lower_is_better : bool, default=True
        Minimise ``monitor`` (a loss); False maximises it (a score).

    Attributes
    ----------
    completed_epochs_ : int
        Number of complete epochs in the net's history.
    best_epoch_ : int or None
        Epoch number of the best epoch of this call, None before one.

    Examples
    --------
    >>> from sknets._engine.callbacks import BestWeights
    >>> BestWeights("valid_loss", restore=True).monitor
    'valid_loss'
    """

    def __init__(self, monitor, restore, lower_is_better=True):
        self.monitor = monitor
        self.restore = restore
        self.lower_is_better = lower_is_better

    def on_train_begin(self, net, **kwargs):
        # (complete epochs, best epoch, its value, its weights); values are
        # kept as losses: a score is negated.
        self.progress_ = (len(net.history), None, math.inf, None)

    def on_epoch_end(self, net, **kwargs):
        _, best_epoch, best_loss, weights = self.progress_
        row = net.history[-1]
        loss = _as_loss(row.get(self.monitor, math.nan), self.lower_is_better)
        if loss < best_loss:  # False for NaN
            best_epoch, best_loss = row["epoch"], loss
            if self.restore:
                weights = {key: value.detach().clone()
                           for key, value in net.module_.state_dict().items()}
        self.progress_ = (len(net.history), best_epoch, best_loss, weights)

    def on_train_end(self, net, **kwargs):
        weights = self.best_weights
        if weights is not None:
            net.module_.load_state_dict(weights)

    @property
    def completed_epochs_(self):
        return self.progress_[0]

    @property
    def best_epoch_(self):
        return self.progress_[1]

    @property
    def best_weights(self):
        """The best epoch's weights when ``restore``, else None."""
        return self.progress_[3] if self.restore else None

    def __getstate__(self):
        state = self.__dict__.copy()
        if "progress_" in state:  # the module holds the restored weights already
            state["progress_"] = (*state["progress_"][:3], None)
        return state


class StopWhenStalled(Callback):
    """End training when ``monitor`` has not improved by more than ``tol`` for ``patience`` epochs.

    An epoch improves when its loss is below the best so far minus ``tol``
    (with ``lower_is_better=False``: when its score is above the best so
    far plus ``tol``).
    Training ends as skorch's callbacks end it, by raising
    ``KeyboardInterrupt`` at the end of the epoch; ``stopped_`` tells that
    apart from a user's interrupt.

    Examples
    --------
    >>> from sknets._engine.callbacks import StopWhenStalled
    >>> StopWhenStalled("train_loss", patience=10, tol=1e-4).patience
    10
    """

    def __init__(self, monitor, patience, tol, lower_is_better=True):
        self.monitor, self.patience, self.tol = monitor, patience, tol
        self.lower_is_better = lower_is_better

    def on_train_begin(self, net, **kwargs):
        # best_ is kept as a loss: a score is negated.
        self.best_, self.misses_, self.stopped_ = math.inf, 0, False

    def on_epoch_end(self, net, **kwargs):
        loss = _as_loss(net.history[-1].get(self.monitor, math.nan), self.lower_is_better)
        self.best_, self.misses_ = stall_step(self.best_, self.misses_, loss, self.tol)
        if self.misses_ >= self.patience:
            self.stopped_ = True
            raise KeyboardInterrupt


def stall_step(best, misses, loss, tol):
    """``(best, misses)`` after an epoch whose monitored loss is ``loss``.

    The stopping rule: an epoch improves when ``loss < best - tol`` (NaN
    never does); training stops once ``misses`` reaches the patience.

    Examples
    --------
    >>> from sknets._engine.callbacks import stall_step
    >>> stall_step(1.0, 2, 0.5, tol=1e-4), stall_step(1.0, 2, 0.99995, tol=1e-4)
    ((0.5, 0), (1.0, 3))
    """
    return (loss, 0) if loss < best - tol else (best, misses + 1)


def _as_loss(value, lower_is_better):
    """``value`` as a quantity to minimise."""
    return value if lower_is_better else -value


# History keys that are bookkeeping, not scores to print.
_NOT_SCORES = ("_best", "_batch_count")


class EpochLog(Callback):
    """Print one line per epoch: losses, validation scores, learning rate, time.

    The columns are ``epoch``, ``train_loss``, ``valid_loss`` and every other
    validation score the net records (``valid_accuracy``, ``valid_r2``), the
    learning rate ``lr`` and the epoch's ``seconds``. A ``*`` marks an epoch
    whose monitored value (the validation score with a scorer, else the
    validation loss, else the training loss) is the best so far; the last
    marked epoch is the estimator's ``best_epoch_``.

    Parameters
    ----------
    sink : callable, default=print
        Receives each line of text.
    monitor : str or None, default=None
        History key of the monitored value; None: "valid_loss" when the row
        has it, else "train_loss". The net records whether an epoch is the
        best so far as ``<monitor>_best``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(max_epochs=2, random_state=0, verbose=1)
    >>> clf.fit(X / 16, y)  # doctest: +ELLIPSIS
      epoch  train_loss          lr  seconds
          1      ...
    MLPClassifier(max_epochs=2, random_state=0, verbose=1)
    """

    def __init__(self, sink=print, monitor=None):
        self.sink = sink
        self.monitor = monitor

    def on_train_begin(self, net, **kwargs):
        self.columns_ = None

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if self.columns_ is None:
            self.columns_ = _log_columns(row)
            self.sink("  ".join(f"{header:>{width}}" for _, header, width, _ in self.columns_))
        cells = [format(row[key], spec) if key in row else ""
                 for key, _, _, spec in self.columns_]
        monitored = self.monitor or ("valid_loss" if "valid_loss" in row else "train_loss")
        mark = "  *" if row.get(f"{monitored}_best") else ""
        self.sink("  ".join(f"{cell:>{width}}" for cell, (_, _, width, _)
                            in zip(cells, self.columns_)) + mark)


def _log_columns(row):
    """(history key, header, width, format spec) of each column of the log."""
    scores = [key for key in row
              if key.startswith("valid_") and key != "valid_loss"
              and not key.endswith(_NOT_SCORES)]
    columns = [("epoch", "epoch", 7, "d"), ("train_loss", "train_loss", 10, ".4f")]
    if "valid_loss" in row:
        columns.append(("valid_loss", "valid_loss", 10, ".4f"))
    columns += [(key, key, max(len(key), 10), ".4f") for key in scores]
    # skorch's history calls the epoch's duration "dur".
    columns += [("lr", "lr", 10, ".3g"), ("dur", "seconds", 7, ".2f")]
    return columns


class BatchProgressBar(Callback):
    """A tqdm bar over the batches of each epoch, with the running loss.

    The loss shown is the last batch's, read from the device at most every
    ``refresh_seconds`` so the bar does not slow training down.

    Parameters
    ----------
    refresh_seconds : float, default=0.5
        Least time between two updates of the loss shown.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> MLPClassifier(max_epochs=1, verbose=2).fit(X / 16, y)  # doctest: +SKIP
    """

    def __init__(self, refresh_seconds=0.5):
        self.refresh_seconds = refresh_seconds

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        total = len(net.get_iterator(dataset_train, training=True))
        if dataset_valid is not None:
            total += len(net.get_iterator(dataset_valid, training=False))
        self.bar_ = tqdm(total=total, leave=False, unit="batch",
                         desc=f"epoch {len(net.history)}")
        self.shown_at_ = time.monotonic()

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        self.bar_.update(1)
        now = time.monotonic()
        if training and loss is not None and now - self.shown_at_ >= self.refresh_seconds:
            self.bar_.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
            self.shown_at_ = now

    def on_epoch_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)  # tqdm bars do not pickle
        return state


def progress_callbacks(verbose, monitor=None):
    """The ``(name, callback)`` pairs that ``verbose`` asks for.

    Parameters
    ----------
    verbose : int or bool
        0/False: none; 1/True: :class:`EpochLog`; 2 or more: also
        :class:`BatchProgressBar`.
    monitor : str or None, default=None
        The value whose best epochs the log marks (see :class:`EpochLog`).

    Returns
    -------
    list of (str, skorch.callbacks.Callback)

    Examples
    --------
    >>> from sknets._engine.callbacks import progress_callbacks
    >>> [name for name, _ in progress_callbacks(2)]
    ['batch_progress', 'epoch_log']
    """
    callbacks = []
    if verbose and verbose >= 2:
        callbacks.append(("batch_progress", BatchProgressBar()))
    if verbose:
        callbacks.append(("epoch_log", EpochLog(monitor=monitor)))
    return callbacks


__all__ = ["BatchProgressBar", "BestWeights", "EpochLog", "Monitor", "StopWhenStalled",
           "progress_callbacks"]
