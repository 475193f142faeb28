"""Learning-rate schedules: the learning rate of each epoch as a formula.

Every schedule gives the rate used during epoch ``t`` (``t = 0`` for the
first epoch), as a multiple of the initial rate ``lr`` (η0). sknets steps
the schedule once per epoch through skorch's ``LRScheduler`` callback with
torch's ``LambdaLR`` (``ReduceLROnPlateau`` for "plateau").
"""

import math

from skorch.callbacks import LRScheduler as _SkorchLRScheduler

SCHEDULES = ("constant", "linear", "exponential", "step", "cosine", "plateau")


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
    ===============  ==========================================================

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
