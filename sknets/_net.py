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
"""

import collections
import copy
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning

from ._fused import FusedStep

EVAL_BATCH_SIZE = 65_536


class TensorData(torch.utils.data.Dataset):
    """Inputs, targets and optional sample weights held as device tensors."""

    def __init__(self, X, y=None, sample_weight=None):
        self.X, self.y, self.sample_weight = X, y, sample_weight

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):  # for skorch utilities; the hot path never calls it
        return self.X[i], (None if self.y is None else self.y[i])

    def batch(self, index):
        """The batch at ``index`` (a slice or an index tensor)."""
        if isinstance(index, slice):
            take = lambda t: None if t is None else t[index]  # noqa: E731
        else:
            take = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return take(self.X), (take(self.y), take(self.sample_weight))


class BatchIterator:
    """Mini-batches of a ``TensorData``: one indexing operation per batch.

    Parameters
    ----------
    data : TensorData
    batch_size : int
    shuffle : bool
        Draw a new permutation each epoch from ``generator``.
    generator : torch.Generator or None
    """

    def __init__(self, data, batch_size, shuffle=False, generator=None):
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.generator = shuffle, generator

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        n, size = len(self.data), self.batch_size
        if not self.shuffle:
            for start in range(0, n, size):
                yield self.data.batch(slice(start, start + size))
            return
        order = torch.randperm(n, generator=self.generator)
        order = order.to(self.data.X.device)
        for index in order.split(size):
            yield self.data.batch(index)


class FixedValidation:
    """A ``train_split`` that returns a given validation set (or none)."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


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

    def __init__(self, *args, penalty=None, metrics=None, generator=None, shuffle=True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.penalty = penalty
        self.metrics = metrics
        self.generator = generator
        self.shuffle = shuffle

    def get_default_callbacks(self):
        # Epoch-level losses are recorded by run_single_epoch, not averaged
        # from per-batch records by skorch's PassthroughScoring.
        return []

    def get_iterator(self, dataset, training=False):
        if training:
            return BatchIterator(dataset, self.batch_size, shuffle=self.shuffle,
                                 generator=self.generator)
        return BatchIterator(dataset, EVAL_BATCH_SIZE)

    def initialize_callbacks(self):
        super().initialize_callbacks()
        batch_methods = ("on_batch_begin", "on_batch_end")
        self.batch_callbacks_ = [
            cb for _, cb in self.callbacks_ if any(_listens(cb, m) for m in batch_methods)
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
        return (per_sample * weight).sum() / weight.sum()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self._fused_step = FusedStep.build(self.module_, self.criterion_, self.penalty)
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            self._fused_step = None

    def train_step(self, batch, **fit_params):
        Xi, yi = batch
        fused = getattr(self, "_fused_step", None)
        if fused is not None:
            loss = fused(Xi, *yi)
            self.optimizer_.step()
            return {"loss": loss, "y_pred": None}
        y_pred = self.module_(Xi)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        total = loss if self.penalty is None else loss + self.penalty(self.module_)
        self.optimizer_.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer_.step()
        return {"loss": loss, "y_pred": y_pred}

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
        losses, sizes, scores = [], [], []
        listening = bool(self.batch_callbacks_)
        metrics = None if training else self.metrics
        for batch in iterator:
            if listening:
                self.notify_batch("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            # Keep the loss on the device: reading it here would sync per batch.
            losses.append(step["loss"].detach())
            sizes.append(len(batch[0]))
            if metrics is not None:
                scores.append(metrics(step["y_pred"], batch[1][0]))
            if listening:
                self.notify_batch("on_batch_end", batch=batch, training=training, **step)
        n_samples = sum(sizes)
        weights = torch.tensor(sizes, dtype=torch.float64, device=losses[0].device)
        totals = {"loss": (torch.stack(losses).double() * weights).sum()}
        for name in scores[0] if scores else ():
            totals[name] = torch.stack([s[name] for s in scores]).double().sum()
        values = torch.stack(list(totals.values())).cpu().numpy()  # one sync per epoch
        for name, value in zip(totals, values):
            self.history.record(f"{prefix}_{name}", float(value) / n_samples)
        self.history.record(f"{prefix}_batch_count", len(sizes))
        loss = self.history[-1, f"{prefix}_loss"]
        previous = [row[f"{prefix}_loss"] for row in self.history[:-1] if f"{prefix}_loss" in row]
        self.history.record(f"{prefix}_loss_best", not previous or loss < min(previous))

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

    def forward_all(self, X, batch_size=EVAL_BATCH_SIZE):
        """Outputs of the module in eval mode for a whole tensor, no grad."""
        self.module_.eval()
        with torch.inference_mode():
            if len(X) <= batch_size:
                return self.module_(X)
            return torch.cat([self.module_(X[i:i + batch_size])
                              for i in range(0, len(X), batch_size)])


class _SameAsInitialized:
    """Pickled in place of a constructor argument that is its initialised attribute."""


def _without_state(optimizer):
    """A shallow copy of ``optimizer`` with the same parameters and no state."""
    blank = copy.copy(optimizer)
    blank.state = collections.defaultdict(dict)
    return blank


def to_tensor(array, device, dtype=torch.float32):
    """``array`` as a tensor on ``device`` without a copy where possible."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=dtype)
