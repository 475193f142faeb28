"""Learning-rate schedules: the learning rate of each epoch, and of each batch.

Every schedule gives the rate used during epoch ``t`` (``t = 0`` for the
first epoch), as a multiple of the initial rate ``lr`` (η0). sknets steps
the schedule once per epoch through skorch's ``LRScheduler`` callback with
torch's ``LambdaLR`` (``ReduceLROnPlateau`` for "plateau").

Two settings change the rate within an epoch, batch by batch: a warmup
(``lr_warmup_epochs``) and the "one_cycle" schedule. :class:`BatchRates`
computes the rates of an epoch's batches when the epoch begins and only
assigns them per batch; without either setting it is not installed and
training runs exactly as with per-epoch schedules alone.
"""

import math

from skorch.callbacks import Callback
from skorch.callbacks import LRScheduler as _SkorchLRScheduler

SCHEDULES = ("constant", "linear", "exponential", "step", "cosine", "plateau", "one_cycle")

# torch's OneCycleLR defaults: the share of the cycle spent rising, the
# ratio of the peak to the starting rate, and of the starting to the final rate.
ONE_CYCLE_PCT_START = 0.3
ONE_CYCLE_DIV_FACTOR = 25.0
ONE_CYCLE_FINAL_DIV_FACTOR = 1e4


def one_cycle_rate(step, total_steps, max_lr, pct_start=ONE_CYCLE_PCT_START,
                   div_factor=ONE_CYCLE_DIV_FACTOR, final_div_factor=ONE_CYCLE_FINAL_DIV_FACTOR):
    """The learning rate of step ``step`` (0-based) of a one-cycle schedule of ``total_steps``.

    torch's ``OneCycleLR`` with cosine annealing and two phases: the rate
    rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then falls to
    ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``,
    each phase along half a cosine, ``end + (start - end) * (1 + cos(pi * p)) / 2``
    with ``p`` the share of the phase done.

    Examples
    --------
    >>> from sknets._engine.schedules import one_cycle_rate
    >>> [round(one_cycle_rate(k, 10, 1.0), 4) for k in (0, 2, 9)]
    [0.04, 1.0, 0.0]
    """
    initial = max_lr / div_factor
    rise_end = float(pct_start * total_steps) - 1
    if step <= rise_end and rise_end > 0:
        start, end, done = initial, max_lr, step / rise_end
    else:
        start, end = max_lr, initial / final_div_factor
        done = (step - rise_end) / (total_steps - 1 - rise_end)
    return end + (start - end) / 2.0 * (math.cos(math.pi * done) + 1)


class EpochSchedule:
    """The factor η_t / η0 of a schedule, picklable for ``LambdaLR``.

    ===============  ==========================================================
    ``kind``         learning rate of epoch ``t``
    ===============  ==========================================================
    "constant"       η0
    "linear"         max(η0 − lr_decay·t, lr_min)
    "exponential"    max(η0·exp(−lr_decay·t), lr_min)
    "step"           max(η0·lr_gamma^floor(t / lr_step_size), lr_min)
    "cosine"         lr_min + (η0 − lr_min)·(1 + cos(π·t / max_epochs)) / 2
    "one_cycle"      η0 at the epoch level; per batch, :class:`BatchRates` sets
                     step ``k`` of ``K = max_epochs · n_batches``
                     (``k = (t mod max_epochs) · n_batches + b`` for batch
                     ``b`` of epoch ``t``) to :func:`one_cycle_rate`: up from
                     η0 / 25 to η0 along half a cosine over the first
                     ``0.3·K − 1`` steps, then down to η0 / 25 / 10⁴ at step
                     ``K − 1``
    ===============  ==========================================================

    A warmup (``warmup_epochs = W > 0``) multiplies the rate of batch ``b``
    of epoch ``t < W`` by ``(t · n_batches + b + 1) / (W · n_batches)``, which
    is ``(k + 1) / K`` for step ``k`` of the ``K`` warmup steps; see
    :class:`BatchRates`.

    Examples
    --------
    >>> from sknets._engine.schedules import EpochSchedule
    >>> s = EpochSchedule("linear", lr=0.1, lr_decay=0.03, lr_min=0.02)
    >>> [round(0.1 * s(t), 3) for t in range(5)]
    [0.1, 0.07, 0.04, 0.02, 0.02]
    """

    def __init__(self, kind, lr, lr_decay=0.0, lr_min=0.0, lr_step_size=10,
                 lr_gamma=0.1, max_epochs=1):
        self.kind = kind
        self.lr = lr
        self.lr_decay = lr_decay
        self.lr_min = lr_min
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.max_epochs = max_epochs

    def rate(self, t):
        """Learning rate of epoch ``t`` (0-based)."""
        lr0, lr_min = self.lr, self.lr_min
        if self.kind == "constant":
            return lr0
        if self.kind == "linear":
            return max(lr0 - self.lr_decay * t, lr_min)
        if self.kind == "exponential":
            return max(lr0 * math.exp(-self.lr_decay * t), lr_min)
        if self.kind == "step":
            return max(lr0 * self.lr_gamma ** (t // self.lr_step_size), lr_min)
        if self.kind == "cosine":
            return lr_min + (lr0 - lr_min) * (1 + math.cos(math.pi * t / self.max_epochs)) / 2
        if self.kind == "one_cycle":
            return lr0  # the cycle runs per batch, in BatchRates
        raise ValueError(f"unknown schedule {self.kind!r}; use one of {SCHEDULES}")

    def __call__(self, t):
        return self.rate(t) / self.lr if self.lr > 0 else 1.0


class LRScheduler(_SkorchLRScheduler):
    """skorch's ``LRScheduler`` callback, pickled without its torch scheduler.

    skorch builds the torch scheduler anew at the start of every training
    call, so a pickled one is never used again; it would also hold a second
    reference to the optimizer and its state, outside the storage where
    skorch maps tensors to an available device when a net is unpickled.

    Examples
    --------
    >>> import pickle
    >>> from sknets._engine.schedules import EpochSchedule, LRScheduler
    >>> callback = LRScheduler(policy="LambdaLR", lr_lambda=EpochSchedule("constant", 0.1))
    >>> pickle.loads(pickle.dumps(callback)).policy
    'LambdaLR'
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        if "lr_scheduler_" in state:
            state["lr_scheduler_"] = None
        return state


class BatchRates(Callback):
    """Per-batch learning rates: a linear warmup, the one-cycle schedule, or both.

    When an epoch begins, the rates of all its training batches are computed
    for every parameter group from the rate the epoch's schedule set (the
    group's ``lr`` at that moment); a training batch then only assigns its
    rate, with no other work and no read from the device. For batch ``b`` of
    epoch ``t`` (0-based, counted over the network's whole history, so that
    a continued fit resumes where the previous one ended), with ``n`` batches
    in the epoch and the schedule's rate ``η``:

    * ``cycle_epochs = E``: the rate is ``one_cycle_rate(k, E · n, η)`` with
      ``k = (t mod E) · n + b``; a cycle lasts ``E`` epochs and the next
      one begins after it.
    * ``warmup_epochs = W``: while ``t < W`` the rate is multiplied by
      ``(t · n + b + 1) / (W · n)``, so it reaches the schedule's rate at
      the last batch of epoch ``W - 1``.

    When the epoch ends, the history's ``lr`` records the rate of its last
    batch and each group's rate is set back to the schedule's, so that the
    epoch schedule ("plateau" in particular) goes on from its own rate, not
    from a warmup's fraction of it. It must therefore run before the epoch
    schedule's callback.

    Parameters
    ----------
    warmup_epochs : int, default=0
        Epochs of linear warmup; 0 for none.
    cycle_epochs : int or None, default=None
        Length of a one-cycle schedule in epochs; None for none.

    Examples
    --------
    >>> from sknets._engine.schedules import BatchRates
    >>> warmup = BatchRates(warmup_epochs=2)
    >>> warmup.epoch_rates(1.0, t=0, n_batches=4), warmup.epoch_rates(1.0, t=1, n_batches=4)
    ([0.125, 0.25, 0.375, 0.5], [0.625, 0.75, 0.875, 1.0])
    """

    def __init__(self, warmup_epochs=0, cycle_epochs=None):
        self.warmup_epochs = warmup_epochs
        self.cycle_epochs = cycle_epochs

    def epoch_rates(self, rate, t, n_batches):
        """The rates of the ``n_batches`` training batches of epoch ``t`` at the rate ``rate``."""
        n = n_batches
        if self.cycle_epochs:
            first = (t % self.cycle_epochs) * n
            rates = [one_cycle_rate(first + b, self.cycle_epochs * n, rate) for b in range(n)]
        else:
            rates = [rate] * n
        if t < self.warmup_epochs:
            steps = self.warmup_epochs * n
            rates = [r * (t * n + b + 1) / steps for b, r in enumerate(rates)]
        return rates

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        groups = net.optimizer_.param_groups
        n_batches = len(net.get_iterator(dataset_train, training=True))
        t = len(net.history) - 1  # the net opened this epoch's row already
        self.schedule_rates_ = [group["lr"] for group in groups]
        self.rates_ = [self.epoch_rates(rate, t, n_batches) for rate in self.schedule_rates_]
        self.batch_ = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        batch = self.batch_
        for group, rates in zip(net.optimizer_.param_groups, self.rates_):
            group["lr"] = rates[batch]
        self.batch_ = batch + 1

    def on_epoch_end(self, net, **kwargs):
        groups = net.optimizer_.param_groups
        net.history.record("lr", groups[0]["lr"])
        for group, rate in zip(groups, self.schedule_rates_):
            group["lr"] = rate


class RangeTest(Callback):
    """The learning-rate range test: one rate per training step, the loss of each step read back.

    Sets every parameter group's rate of training step ``k`` to
    ``rates[k]`` and records the step's training loss (one read from the
    device per step) and its smoothed value: the debiased exponential moving
    average ``a_k / (1 - smoothing ** (k + 1))`` with
    ``a_k = smoothing * a_(k-1) + (1 - smoothing) * loss_k``. Training ends,
    by raising ``KeyboardInterrupt`` as skorch's callbacks end it, after the
    last rate, or as soon as the smoothed loss is not finite or exceeds its
    lowest value ``best`` by more than ``(diverge_factor - 1) * |best|``
    (``diverge_factor`` times ``best`` for a positive loss); ``stopped_``
    tells that apart from a user's interrupt and ``diverged_`` says which.

    Parameters
    ----------
    rates : sequence of float
    smoothing : float in [0, 1)
    diverge_factor : float > 1

    Examples
    --------
    >>> from sknets._engine.schedules import RangeTest
    >>> RangeTest([1e-3, 1e-2, 1e-1], smoothing=0.9, diverge_factor=4.0).rates
    [0.001, 0.01, 0.1]
    """

    def __init__(self, rates, smoothing, diverge_factor):
        self.rates = rates
        self.smoothing = smoothing
        self.diverge_factor = diverge_factor

    def on_train_begin(self, net, **kwargs):
        self.losses_, self.smoothed_ = [], []
        self.stopped_ = self.diverged_ = False
        self._average, self._best = 0.0, math.inf

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            rate = self.rates[len(self.losses_)]
            for group in net.optimizer_.param_groups:
                group["lr"] = rate

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if not training:
            return
        value = float(loss.detach())
        beta = self.smoothing
        self._average = beta * self._average + (1 - beta) * value
        smoothed = self._average / (1 - beta ** (len(self.losses_) + 1))
        self.losses_.append(value)
        self.smoothed_.append(smoothed)
        best = self._best
        if not math.isfinite(smoothed) or smoothed > best + (self.diverge_factor - 1) * abs(best):
            self.diverged_ = True
        self._best = min(best, smoothed)
        if self.diverged_ or len(self.losses_) == len(self.rates):
            self.stopped_ = True
            raise KeyboardInterrupt
