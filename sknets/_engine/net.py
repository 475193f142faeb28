"""The training engine: a skorch ``NeuralNet`` with an in-memory batch path.

Stock skorch indexes a ``Dataset`` sample by sample and collates, records
two history entries per batch (each a host sync through ``loss.item()``) and
runs every step through an optimizer closure. On MNIST-sized data that costs
about 2x against a hand-written loop. ``TensorNet`` keeps skorch's loop,
callbacks and history, and changes only what happens per batch:

* the data is one tensor on the device; a batch is one ``index_select``
  (or a view when not shuffling);
* the epoch's loss is summed on the device and read once per epoch;
* callbacks are notified per batch only if one of them listens per batch;
* plain MLPs train through ``FusedStep`` (forward and hand-derived backward,
  no autograd graph); everything else through autograd.

The once-per-epoch read of the loss is also where divergence is caught: a
non-finite training loss ends training (see ``TensorNet.fit_loop``).
"""

import collections
import contextlib
import copy
import itertools
import operator
import warnings
from typing import NamedTuple

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning
from skorch.history import History

from ..exceptions import DivergenceError
from .callbacks import BestWeights, StopWhenStalled
from .fused import FusedStep
from .graphs import CapturedStep
from .resources import (
    EVAL_CHUNK,
    even_chunk,
    flush_denormals,
    follow_load,
    keep_memory_for,
    on_one_thread,
)

EVAL_BATCH_SIZE = EVAL_CHUNK
_TINY = torch.finfo(torch.float32).tiny


class TensorData(torch.utils.data.Dataset):
    """Inputs, targets and optional sample weights held as device tensors.

    ``eval_batch_size`` is the batch size of evaluation passes over it
    (validation); ``device`` is where its batches are.
    """

    eval_batch_size = EVAL_BATCH_SIZE

    def __init__(self, X, y=None, sample_weight=None):
        self.X, self.y, self.sample_weight = X, y, sample_weight

    @property
    def device(self):
        return self.X.device

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):  # for skorch utilities; the hot path never calls it
        return self.X[i], (None if self.y is None else self.y[i])

    def batch(self, index):
        """The batch at ``index`` (a slice or an index tensor).

        Targets that are the inputs themselves (an autoencoder's) are the
        batch's inputs, taken once.
        """
        if isinstance(index, slice):
            return self._take(lambda t: t[index])
        return self._take(lambda t: t.index_select(0, index))

    def _take(self, take):
        X, y, weight = self.X, self.y, self.sample_weight
        rows = take(X)
        return rows, (rows if y is X else None if y is None else take(y),
                      None if weight is None else take(weight))


class BatchIterator:
    """Mini-batches of a ``TensorData``: one indexing operation per batch.

    Parameters
    ----------
    data : TensorData
    batch_size : int
    shuffle : bool
        Draw a new permutation each epoch from ``generator``.
    generator : torch.Generator or None
    no_single : bool, default=False
        Fold a last batch of one sample into the batch before it (batch
        normalisation cannot train on a single sample).
    """

    def __init__(self, data, batch_size, shuffle=False, generator=None, no_single=False):
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.generator = shuffle, generator
        self.no_single = no_single

    def _starts(self):
        n, size = len(self.data), self.batch_size
        starts = list(range(0, n, size))
        if self.no_single and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return starts + [n]

    def __len__(self):
        return len(self._starts()) - 1

    def __iter__(self):
        bounds = itertools.pairwise(self._starts())
        if not self.shuffle:
            for start, stop in bounds:
                yield self.data.batch(slice(start, stop))
            return
        order = torch.randperm(len(self.data), generator=self.generator)
        order = order.to(self.data.device)
        # The batches' indices as views of the order, made in one call.
        for index in order.split([stop - start for start, stop in bounds]):
            yield self.data.batch(index)


class FixedValidation:
    """A ``train_split`` that returns a given validation set (or none)."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


class Outcome(NamedTuple):
    """How a training call ended (see :meth:`TensorNet.train_epochs`)."""

    best_epoch: int
    """Epoch of the best monitored value in this call (the lowest loss, or
    the highest score with a scorer); the last complete epoch if none had a
    finite value (0 before any)."""
    restored: bool
    """Whether the weights are those of ``best_epoch``, restored at the end."""
    interrupted_epoch: int | None
    """The epoch a ``KeyboardInterrupt`` cut short, or None."""
    divergence: DivergenceError | None
    """The divergence that ended training after the best weights were
    restored, or None."""


class EpochHistory(History):
    """skorch's ``History`` with O(1) access to one epoch.

    skorch's indexing copies the whole list first, and it records every
    value through ``self[-1]``: a fit of ``n`` epochs then costs O(n²) in
    bookkeeping alone. ``history[i]`` and ``history[i, key]`` are answered
    here directly; every other form of index goes to skorch.
    """

    def __getitem__(self, index):
        if isinstance(index, int):
            return list.__getitem__(self, index)
        if (isinstance(index, tuple) and len(index) == 2 and isinstance(index[0], int)
                and isinstance(index[1], str)):
            row = list.__getitem__(self, index[0])
            if index[1] not in row:
                raise KeyError(f"Key {index[1]!r} was not found in history.")
            return row[index[1]]
        return super().__getitem__(index)


def _listens(callback, method):
    return getattr(type(callback), method) is not getattr(Callback, method)


class TensorNet(NeuralNet):
    """skorch ``NeuralNet`` specialised for in-memory tensors.

    Extra constructor arguments (set by the sknets estimators):

    penalty : callable or None
        ``penalty(module) -> tensor`` added to the training loss.
    metrics : callable or None
        ``metrics(y_pred, y_true) -> dict`` of per-batch sums of scores on the
        validation set; each is divided by the number of samples and recorded
        as ``valid_<name>``.
    scorer : object or None
        A score of the whole validation set, higher is better: ``name`` and
        ``scorer(outputs, y_valid) -> float``, called once per epoch with the
        outputs the validation pass computed (no second forward pass) and
        recorded as ``valid_<name>``, with ``valid_<name>_best`` saying
        whether it is the highest so far. Outputs that are not all finite
        score NaN without a call. Not pickled: every fit builds its own net.
    clip_grad_norm : float or None
        Scale the gradients of all parameters down to this Euclidean norm
        before each optimizer step where it is larger
        (``torch.nn.utils.clip_grad_norm_``, on the device, with no host
        sync); None does not clip.
    generator : torch.Generator
        Source of the batch order.
    shuffle : bool
        Whether to reshuffle the training data every epoch.

    Pickling: the module's parameters are stored once, in skorch's
    device-mapped storage (so a net trained on CUDA loads on a CPU-only
    machine); the optimizer's state (Adam's moments, momentum buffers) is
    stored only while ``keep_optimizer_state`` is True, which the owning
    estimator sets when training can continue from it.
    """

    keep_optimizer_state = True

    def __init__(self, *args, penalty=None, metrics=None, scorer=None, clip_grad_norm=None,
                 generator=None, shuffle=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.penalty = penalty
        self.metrics = metrics
        self.scorer = scorer
        self.clip_grad_norm = clip_grad_norm
        self.generator = generator
        self.shuffle = shuffle

    def train_epochs(self, train, valid=None, metrics=None, epochs=1):
        """Train for ``epochs`` epochs (fewer if stopped) and say how it ended.

        Parameters
        ----------
        train, valid : TensorData
            Training data, and the validation set monitored every epoch (or None).
        metrics : callable or None
            As the constructor's ``metrics``, for this call only.
        epochs : int

        Returns
        -------
        Outcome

        Raises
        ------
        DivergenceError
            If the training loss or the weights became non-finite and no
            finite best epoch could be restored.
        """
        with self._fitting(valid, metrics, min(self.batch_size, len(train))), flush_denormals():
            self.partial_fit(train, None, epochs=epochs)
        return self._outcome()

    def _outcome(self):
        tracker = self._callback(BestWeights)
        # A cut-short epoch (interrupt, divergence) can only be the last.
        del self.history[tracker.completed_epochs_:]
        best = tracker.best_epoch_
        return Outcome(best_epoch=len(self.history) if best is None else best,
                       restored=tracker.best_weights is not None,
                       interrupted_epoch=self.interrupted_epoch_, divergence=self.divergence_)

    @contextlib.contextmanager
    def _fitting(self, valid, metrics, batch_size):
        """Settings of one training call, unset afterwards so pickles hold no data."""
        batch_size_before = self.batch_size
        self.train_split = FixedValidation(valid)
        self.metrics, self.batch_size = metrics, batch_size
        try:
            yield
        finally:
            self.train_split, self.metrics, self.batch_size = None, None, batch_size_before

    def history_records(self, keys):
        """The history's epochs as dicts ``{column: value}`` for ``keys = {history key: column}``.

        A key an epoch lacks (``valid_loss`` without validation) gives NaN.
        """
        return [{column: row.get(key, np.nan) for key, column in keys.items()}
                for row in self.history]

    def restore_history(self, records, keys):
        """Refill the history from records written by :meth:`history_records`.

        NaN and None are left out, as a fit without that score leaves them out.
        """
        columns = {column: key for key, column in keys.items()}
        for record in records:
            self.history.new_epoch()
            for column, value in record.items():
                if value is not None and not (isinstance(value, float) and np.isnan(value)):
                    self.history.record(columns[column],
                                        int(value) if column == "epoch" else float(value))

    def _callback(self, kind):
        return next((cb for _, cb in self.callbacks_ if isinstance(cb, kind)), None)

    def initialize_history(self):
        self.history_ = EpochHistory()
        return self

    def get_default_callbacks(self):
        # Epoch-level losses are recorded by run_single_epoch, not averaged
        # from per-batch records by skorch's PassthroughScoring.
        return []

    def get_iterator(self, dataset, training=False):
        if training:
            batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                             for m in self.module_.modules())
            return BatchIterator(dataset, self.batch_size, shuffle=self.shuffle,
                                 generator=self.generator, no_single=batch_norm)
        return BatchIterator(dataset, even_chunk(len(dataset), dataset.eval_batch_size))

    def initialize_callbacks(self):
        super().initialize_callbacks()
        batch_methods = ("on_batch_begin", "on_batch_end")
        # (An epoch-level schedule's on_batch_end does nothing.)
        self.batch_callbacks_ = [
            cb for _, cb in self.callbacks_ if any(_listens(cb, m) for m in batch_methods)
            and getattr(cb, "step_every", None) != "epoch"
        ]
        return self

    def notify_batch(self, method, **kwargs):
        for callback in self.batch_callbacks_:
            getattr(callback, method)(self, **kwargs)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        target, weight = y_true
        criterion = self.criterion_
        if weight is None:
            return criterion(y_pred, target)  # built with reduction="mean"
        criterion.reduction = "none"
        try:
            per_sample = criterion(y_pred, target).reshape(len(weight), -1).mean(1)
        finally:
            criterion.reduction = "mean"
        # A batch whose weights are all zero contributes nothing (0, not 0 / 0).
        return (per_sample * weight).sum() / weight.sum().clamp_min(_TINY)

    def train_step(self, batch, **fit_params):
        Xi, yi = batch
        captured = getattr(self, "_captured", None)
        if captured is not None:
            return {"loss": captured(Xi, *yi), "y_pred": None}
        if getattr(self, "_fused_step", None) is not None:
            return {"loss": self._fused_train_step(Xi, *yi), "y_pred": None}
        update = getattr(self, "_update", None) or self.optimizer_.step
        y_pred = self.module_(Xi)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        total = loss if self.penalty is None else loss + self.penalty(self.module_)
        self.optimizer_.zero_grad(set_to_none=True)
        total.backward()
        self._clip_gradients()
        update()
        return {"loss": loss, "y_pred": y_pred}

    def _fused_train_step(self, X, target, weight=None):
        """One step through the fused step: gradients, clipping, update; returns the loss."""
        loss = self._fused_step(X, target, weight)
        self._clip_gradients()
        (self._update or self.optimizer_.step)()
        return loss

    def _clip_gradients(self):
        if self.clip_grad_norm is not None:
            # foreach (one kernel per device and dtype) wherever torch supports
            # it; the scaling factor stays on the device, so nothing syncs.
            torch.nn.utils.clip_grad_norm_(self._clipped, self.clip_grad_norm, foreach=None)

    def validation_step(self, batch, **fit_params):
        Xi, yi = batch
        with torch.no_grad():
            y_pred = self.module_(Xi)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self.module_.train(training)
        losses, sizes, masses, scores = [], [], [], []
        listening = bool(self.batch_callbacks_)
        metrics = None if training else self.metrics
        # The outputs and targets of the validation pass, kept for the scorer.
        outputs = None if training or self.scorer is None else ([], [])
        for batch in iterator:
            follow_load(training)
            if listening:
                self.notify_batch("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            # Keep the loss on the device: reading it here would sync per batch.
            losses.append(step["loss"].detach())
            sizes.append(batch[0].shape[0])
            weight = batch[1][1]
            if weight is not None:
                masses.append(weight.sum())
            if metrics is not None:
                scores.append(metrics(step["y_pred"], batch[1][0]))
            if outputs is not None:
                outputs[0].append(step["y_pred"])
                outputs[1].append(batch[1][0])
            if listening:
                self.notify_batch("on_batch_end", batch=batch, training=training, **step)
        self.record_pass(prefix, training, losses, sizes, masses, scores, outputs)

    def record_pass(self, prefix, training, losses, sizes, masses=(), scores=(), outputs=None):
        """Record a pass over the data in the epoch's history, as ``run_single_epoch`` does.

        ``losses``: the batches' loss tensors; ``sizes``: their sample
        counts; ``masses``: their sample weights' sums, if weighted;
        ``scores``: the batches' metric sums; ``outputs``: the pass's
        outputs and targets for the scorer, or None.

        Raises
        ------
        DivergenceError
            If ``training`` and the pass's loss is not finite.
        """
        n_samples = sum(sizes)
        # The epoch's loss is the mean of the batch losses weighted by what
        # each batch holds: its samples, or with sample weights their sum.
        if masses:
            mass = torch.stack(masses).double()
        else:
            mass = torch.tensor(sizes, dtype=torch.float64, device=losses[0].device)
        totals = {"loss": (torch.stack(losses).double() * mass).sum() / mass.sum()}
        for name in scores[0] if scores else ():
            totals[name] = torch.stack([s[name] for s in scores]).double().sum() / n_samples
        values = torch.stack(list(totals.values())).cpu().numpy()  # one sync per epoch
        for name, value in zip(totals, values):
            self.history.record(f"{prefix}_{name}", float(value))
        self.history.record(f"{prefix}_batch_count", len(sizes))
        if outputs is not None:
            self._record_score(prefix, *outputs)
        loss = float(values[0])
        best, last = self._loss_records.get(prefix, (np.inf, None))
        self.history.record(f"{prefix}_loss_best", bool(loss < best))
        if training and not np.isfinite(loss):
            raise self._divergence(f"the training loss is {loss}", last)
        if np.isfinite(loss):
            self._loss_records[prefix] = (min(best, loss), loss)

    def _record_score(self, prefix, outputs, targets):
        """Record the scorer's value of the epoch's validation outputs, and whether it is best."""
        outputs = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        targets = torch.cat(targets) if len(targets) > 1 else targets[0]
        # A diverging network's outputs would make many scorers raise.
        finite = bool(torch.isfinite(outputs).all())
        score = float(self.scorer(outputs, targets)) if finite else np.nan
        key = f"{prefix}_{self.scorer.name}"
        best = self._score_best.get(key, -np.inf)
        self.history.record(key, score)
        self.history.record(f"{key}_best", bool(score > best))
        if score > best:
            self._score_best[key] = score

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, noting why it ended early.

        ``interrupted_epoch_`` is the epoch a ``KeyboardInterrupt`` cut short
        (Ctrl-C or a callback; None if none did, or if it was an
        stopping callback ending training); skorch's
        ``partial_fit`` then ends training as it does for early stopping.

        A non-finite training loss (or non-finite weights at the end) raises
        :class:`~sknets.exceptions.DivergenceError`, unless the
        :class:`BestWeights` callback holds the weights of a finite epoch:
        then ``divergence_`` keeps the error, training ends, and that
        callback's ``on_train_end`` restores those weights.
        """
        keep_memory_for(X, self.batch_size)
        self._start_loop()
        self._fused_step = FusedStep.build(self.module_, self.criterion_, self.penalty)
        self._update = AdamKernel.build(self.optimizer_)
        self._captured = CapturedStep.build(
            next(self.module_.parameters()).device, self._fused_train_step, self._fused_step,
            self._update, self.batch_callbacks_, self.batch_size)
        try:
            try:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt:
                if not self._stopped_early():
                    self.interrupted_epoch_ = len(self.history)
                self._check_finite_weights()  # however training ends
                raise
            self._check_finite_weights()
        except DivergenceError as error:
            if not self._holds_best_weights():
                raise
            self.divergence_ = error.with_traceback(None)  # no frames kept alive
            # The optimizer's state (Adam's moments, momentum) is NaN now as
            # well; a warm-started fit must not inherit it.
            self.optimizer_.state.clear()
        finally:
            self._fused_step = self._clipped = self._update = self._captured = None
        return self

    def _start_loop(self):
        """Reset what a training call records: how it ended, the best losses and scores so far.

        Also lists the parameters gradient clipping sees (unset after the call).
        """
        self._clipped = [p for p in self.module_.parameters() if p.requires_grad]
        self.interrupted_epoch_ = None
        self.divergence_ = None
        self._loss_records = _loss_records(self.history)
        self._score_best = {} if self.scorer is None else _score_best(
            self.history, f"valid_{self.scorer.name}")

    def _divergence(self, what, last_finite_loss):
        epoch = len(self.history)
        last = ("" if last_finite_loss is None else
                f" (it was {last_finite_loss:.4g} in epoch {epoch - 1})")
        lr = self.optimizer_.param_groups[0]["lr"]
        return DivergenceError(
            f"Training diverged in epoch {epoch}: {what}{last}. Lower the learning rate "
            f"(lr={lr:g} in this epoch) or scale the inputs, and a regressor's targets "
            "(e.g. with sklearn.preprocessing.StandardScaler)."
        )

    def _check_finite_weights(self):
        # The loss of a batch is computed before its step, so the epoch loss
        # cannot see weights broken by the very last step; nor does it see
        # batch-norm statistics that overflowed.
        if not _all_finite(self.module_.state_dict()):
            raise self._divergence("the weights or batch-norm statistics are not finite at "
                                   "its end", self._loss_records.get("train", (None, None))[1])

    def _stopped_early(self):
        """Whether a stopping callback ended training (its patience ran out)."""
        stopper = self._callback(StopWhenStalled)
        return stopper is not None and stopper.stopped_

    def _holds_best_weights(self):
        tracker = self._callback(BestWeights)
        weights = None if tracker is None else tracker.best_weights
        return weights is not None and _all_finite(weights)

    def __getstate__(self):
        optimizer = getattr(self, "optimizer_", None)
        if optimizer is not None and optimizer.state and not self.keep_optimizer_state:
            # skorch serialises self.optimizer_; swap in a stateless copy for that.
            self.optimizer_ = _without_state(optimizer)
        try:
            state = super().__getstate__()
        finally:
            if optimizer is not None:
                self.optimizer_ = optimizer
        for name in ("module", "criterion"):
            # sknets passes instances, which skorch uses as module_/criterion_:
            # pickle them once, with the initialised attributes.
            if state.get(name) is not None and state[name] is getattr(self, f"{name}_", None):
                state[name] = _SameAsInitialized()
        # A scorer may hold the user's callable, and serves the fit that ran.
        state["scorer"] = None
        return state

    def __setstate__(self, state):
        with warnings.catch_warnings():
            # A net trained on CUDA is mapped to the CPU when no CUDA device
            # is present; the owning estimator reports that, knowing whether
            # the user asked for device="auto".
            warnings.simplefilter("ignore", DeviceWarning)
            super().__setstate__(state)
        for name in ("module", "criterion"):
            if isinstance(getattr(self, name, None), _SameAsInitialized):
                setattr(self, name, getattr(self, f"{name}_"))

    def forward_all(self, X, module=None, batch_size=EVAL_BATCH_SIZE):
        """Outputs of ``module`` (default ``module_``) in eval mode for a whole tensor, no grad."""
        module = self.module_ if module is None else module
        module.eval()
        with torch.inference_mode():
            if len(X) <= batch_size:
                out = module(X)
            else:
                batch_size = even_chunk(len(X), batch_size)
                out = torch.cat([module(X[i:i + batch_size])
                                 for i in range(0, len(X), batch_size)])
        return out


class SteppedElsewhere:
    """A net's fit whose training steps another loop computes: all but the steps is the fit's.

    :func:`~sknets._engine.stacked.train_stacked` trains several nets on the
    same mini-batches with steps of its own; everything else of each net's
    fit goes through this: the net's callbacks (epoch timer, learning-rate
    schedule, best weights, stopping) and history, the recording of the
    training loss as ``run_single_epoch`` records it, and the validation
    pass, as :meth:`TensorNet.train_epochs` runs them.

    Parameters
    ----------
    net : TensorNet
        Initialised, with its optimizer.
    train : TensorData
        The training data (passed to the callbacks).
    valid : TensorData or None
        The validation set monitored every epoch.
    metrics : callable or None
        As :meth:`TensorNet.train_epochs`'.
    batch_size : int
        The training batches' size (callbacks read it).
    """

    def __init__(self, net, train, valid=None, metrics=None, batch_size=None):
        self.net, self.train, self.valid = net, train, valid
        self.stack = contextlib.ExitStack()
        self.stack.enter_context(net._fitting(valid, metrics, batch_size or net.batch_size))
        try:
            net._start_loop()
            net.notify("on_train_begin", X=train, y=None)
        except BaseException:
            self.close()
            raise
        self.valid_batches = None if valid is None else net.get_iterator(valid)
        self.kwargs = {"dataset_train": train, "dataset_valid": valid}

    def begin_epoch(self):
        """Start an epoch: the callbacks' ``on_epoch_begin``, the module in training mode."""
        self.net.notify("on_epoch_begin", **self.kwargs)
        self.net.module_.train(True)

    def end_epoch(self, losses, sizes):
        """Record the epoch's training pass, run the validation pass and the callbacks.

        ``losses``: the batches' losses (tensors) this net took its steps
        on, ``sizes`` their sample counts.

        Returns
        -------
        bool
            Whether training goes on: False when a callback ended it.

        Raises
        ------
        DivergenceError
            If the training loss is not finite.
        """
        net = self.net
        net.record_pass("train", True, losses, sizes)
        net.run_single_epoch(self.valid_batches, training=False, prefix="valid",
                             step_fn=net.validation_step)
        try:
            net.notify("on_epoch_end", **self.kwargs)
        except KeyboardInterrupt:  # how a stopping callback (or another) ends training
            if not net._stopped_early():
                net.interrupted_epoch_ = len(net.history)
            return False
        return True

    def finish(self):
        """End the fit as ``partial_fit`` ends it; returns its :class:`Outcome`."""
        try:
            self.net.notify("on_train_end", X=self.train, y=None)
            return self.net._outcome()
        finally:
            self.close()

    def close(self):
        """Unset the fit's settings (done by :meth:`finish`; again is harmless)."""
        self.net._clipped = None
        self.stack.close()

    def step_done(self):
        """After this net's training step has filled its gradients: clip them, as its fit does."""
        self.net._clip_gradients()

    def notify_batch(self, method, **kwargs):
        """Its callbacks' ``on_batch_begin`` or ``on_batch_end`` (those that listen)."""
        self.net.notify_batch(method, **kwargs)


def _loss_records(history):
    """{prefix: (lowest finite loss, last finite loss)} of the epochs in ``history``.

    Read once per training call; each epoch then updates it in O(1).
    """
    records = {}
    for prefix in ("train", "valid"):
        finite = [row[f"{prefix}_loss"] for row in history
                  if np.isfinite(row.get(f"{prefix}_loss", np.nan))]
        if finite:
            records[prefix] = (min(finite), finite[-1])
    return records


def _score_best(history, key):
    """{key: highest finite score} of the epochs in ``history`` (empty if none)."""
    finite = [row[key] for row in history if np.isfinite(row.get(key, np.nan))]
    return {key: max(finite)} if finite else {}


# torch's grain for element-wise work (at::internal::GRAIN_SIZE): smaller
# tensors run on one thread.
_GRAIN = 32768


class KernelCalls(dict):
    """``{key: lists}`` of :meth:`AdamKernel.pending`, with its split by tensor size.

    ``split`` is set by the first :meth:`AdamKernel.launch` of these calls
    (which are reused step after step) and lives as long as they do.
    """

    __slots__ = ("split",)


class AdamKernel:
    """``optimizer.step()`` of a fused Adam or AdamW as one call of torch's kernel.

    ``torch.optim.Adam(fused=True).step()`` spends more time in Python
    (grouping the tensors, checking them, profiling hooks) than the fused
    kernel spends updating a small MLP. This calls the same kernel with the
    same arguments on the optimizer's own state, so the optimizer (its
    state, its param groups and their learning rates, as schedules set them)
    stays what torch's code reads and writes. The first step of a parameter,
    which creates its state, and anything unusual go through
    ``optimizer.step()``.

    The parameters' step counts (``state[p]["step"]``, one scalar tensor
    each) are views of one tensor, :attr:`counter`, so a step advances them
    all with one addition instead of one per parameter; each is still its
    own tensor to torch's code, which advances them one by one.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.kernel = (torch._fused_adamw_ if optimizer.param_groups[0]["decoupled_weight_decay"]
                       else torch._fused_adam_)
        self.counter, self._one, self._views = None, None, ()
        self._calls, self._keys, self._seen = {}, None, None

    @classmethod
    def build(cls, optimizer):
        """An ``AdamKernel`` for ``optimizer``, or None where it would not do what step() does."""
        from torch.optim import optimizer as torch_optimizer

        if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
            return None
        hooks = (optimizer._optimizer_step_pre_hooks, optimizer._optimizer_step_post_hooks,
                 torch_optimizer._global_optimizer_pre_hooks,
                 torch_optimizer._global_optimizer_post_hooks)
        if any(hooks):
            return None
        groups = optimizer.param_groups
        if any(not group["fused"] or group["amsgrad"] or group["maximize"] or
               group["capturable"] or group["differentiable"] or torch.is_tensor(group["lr"])
               or group["decoupled_weight_decay"] != groups[0]["decoupled_weight_decay"]
               for group in groups):
            return None
        devices = {(p.device, p.dtype) for group in groups for p in group["params"]}
        return cls(optimizer) if len(devices) == 1 else None

    def __call__(self):
        calls = self.pending()
        if calls:
            self.counter.add_(self._one)  # a tensor: adding a Python number converts it
            self.launch(calls, [])

    def pending(self):
        """The kernel calls of this step, as ``{key: lists}`` for :meth:`launch`.

        Empty when the step went through ``optimizer.step()`` (a first step);
        otherwise :attr:`counter` holds the step counts :meth:`launch` must
        advance. The calls of several kernels may be joined by :meth:`merge`,
        as :func:`~sknets._engine.stacked.train_stacked` does for many networks.
        """
        keys = self._group_keys()
        if not self._unchanged(keys):
            self._calls = self._build(keys)
        if self._calls:
            self.optimizer._opt_called = True  # what a learning-rate scheduler's wrapper notes
        return self._calls

    def current(self):
        """The calls of the last step if the next step's are the same, else None.

        Builds nothing and steps nothing: a step captured as a CUDA graph
        (:class:`~sknets._engine.graphs.CapturedStep`) replays these calls,
        and runs eagerly (through :meth:`pending`) when they changed.
        """
        return self._calls if self._unchanged(self._group_keys()) else None

    def _group_keys(self):
        return [(self.kernel, group["lr"], group["betas"], group["weight_decay"], group["eps"])
                for group in self.optimizer.param_groups]

    def _unchanged(self, keys):
        """Whether the calls of the last step still hold: same groups, state, gradients, keys.

        A new step of the same training reuses the lists of the last one; a
        learning rate set by a schedule, a new gradient tensor, a loaded or
        cleared state rebuild them.
        """
        if not self._calls:
            return False
        optimizer, (state, size, groups, params, grads, states) = self.optimizer, self._seen
        return (keys == self._keys and optimizer.state is state and len(state) == size
                and optimizer.param_groups is groups
                and all(map(operator.is_, (group["params"] for group in groups), params))
                and all(map(operator.is_, (p.grad for p in itertools.chain(*params)), grads))
                and all(map(operator.is_, (s["step"] for s in states), self._views)))

    def _build(self, keys):
        """The calls of :meth:`pending`, from the optimizer's groups and state."""
        optimizer = self.optimizer
        state, groups = optimizer.state, optimizer.param_groups
        params = [group["params"] for group in groups]
        states = [[state.get(p) for p in group] for group in params]
        flat = list(itertools.chain(*states))
        if not all(flat) or any(p.grad is None for p in itertools.chain(*params)):
            optimizer.step()  # creates the state; skips parameters without gradients
            return {}
        self._tie(flat)
        self._keys = keys
        self._seen = (state, len(state), groups, params,
                      [p.grad for p in itertools.chain(*params)], flat)
        return self.merge({key: (group, [p.grad for p in group],
                                 [s["exp_avg"] for s in group_states],
                                 [s["exp_avg_sq"] for s in group_states],
                                 [s["step"] for s in group_states])}
                          for key, group, group_states in zip(keys, params, states))

    @staticmethod
    def merge(calls):
        """One ``{key: lists}`` of several: the lists of equal keys joined.

        The update is element-wise, so one kernel call over the joined lists
        does what the separate calls do.
        """
        merged = KernelCalls()
        for each in calls:
            for key, lists in each.items():
                for into, more in zip(merged.setdefault(key, ([], [], [], [], [])), lists):
                    into.extend(more)
        return merged

    def _tie(self, states):
        """Make the parameters' step counts views of :attr:`counter` (again, if replaced)."""
        steps = [s["step"] for s in states]
        if len(steps) == len(self._views) and all(map(operator.is_, steps, self._views)):
            return
        self.counter = torch.stack([step.detach() for step in steps])
        self._one = torch.ones_like(self.counter)
        self._views = self.counter.unbind()
        for s, view in zip(states, self._views):
            s["step"] = view

    @staticmethod
    def launch(calls, counters):
        """Run the kernel calls :meth:`pending` returned (merged or not).

        ``counters``: the :attr:`counter` of every kernel whose calls these are.
        """
        if len(counters) == 1:
            counters[0].add_(1)
        elif counters:  # many kernels' counts (a stacked group's) in one call
            torch._foreach_add_(counters, 1)
        threads = torch.get_num_threads()
        if threads == 1 or not calls or next(iter(calls.values()))[0][0].device.type != "cpu":
            AdamKernel._run(calls)
            return
        # The kernel splits every tensor, however small, among the threads,
        # and waking them costs more than a small tensor's update: the small
        # ones (below torch's own grain for element-wise work) on this
        # thread alone. Each element's update is the same either way.
        split = getattr(calls, "split", None)
        if split is None:
            split = AdamKernel._by_size(calls)
            if isinstance(calls, KernelCalls):  # the same calls, step after step
                calls.split = split
        large, small = split
        AdamKernel._run(large)
        if small:
            on_one_thread(threads, AdamKernel._run, small)

    @staticmethod
    def _by_size(calls):
        """``calls`` split into the calls of large tensors and those of small ones."""
        large, small = {}, {}
        for key, lists in calls.items():
            for tensors in zip(*lists):
                into = large if tensors[0].numel() >= _GRAIN else small
                for column, tensor in zip(into.setdefault(key, ([], [], [], [], [])), tensors):
                    column.append(tensor)
        return large, small

    @staticmethod
    def _run(calls):
        for (kernel, lr, (beta1, beta2), weight_decay, eps), lists in calls.items():
            params, grads, exp_avgs, exp_avg_sqs, steps = lists
            kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=lr,
                   beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps,
                   maximize=False, grad_scale=None, found_inf=None)


def _all_finite(state_dict):
    """Whether every floating tensor of ``state_dict`` is finite (one host sync)."""
    tensors = [t for t in state_dict.values() if t.is_floating_point()]
    return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


class _SameAsInitialized:
    """Pickled in place of a constructor argument that is its initialised attribute."""


def _without_state(optimizer):
    """A shallow copy of ``optimizer`` with the same parameters and no state."""
    blank = copy.copy(optimizer)
    blank.state = collections.defaultdict(dict)
    return blank


def to_tensor(array, device, dtype=torch.float32):
    """``array`` as a tensor on ``device`` without a copy where possible.

    The caller has checked the values (``sknets._input.as_float`` for
    float32): the conversion here is a plain cast. ``dtype=None`` keeps the
    array's own dtype (a classifier's targets: int64 class indices, or a
    float32 0/1 matrix for multi-label targets).
    """
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=dtype)
