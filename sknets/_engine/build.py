"""From flat parameters to a ready ``TensorNet``: the one place that does it.

The estimators hold scikit-learn style parameters (``lr``, ``l2``,
``lr_schedule``, ``patience``...). This module turns a dict of them into the
torch optimizer, the penalty, the learning-rate schedule and the skorch
callbacks, and assembles the net. It is the only place where a parameter's
meaning for training is decided; add an optimizer here (``OPTIMIZERS`` and
:func:`optimizer`), and the constraint table and the docs follow from
``OPTIMIZERS``.

``params`` below is always the dict of an estimator's ``get_params()`` for
the fit at hand.
"""

import torch
from skorch.callbacks import Callback, EpochTimer

from .callbacks import BestWeights, Monitor, StopWhenStalled, progress_callbacks
from .modules import Penalty, linear_layers
from .net import EpochHistory, TensorNet
from .schedules import BatchRates, EpochSchedule, LRScheduler

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
# torch implementations with a fused single-kernel step on CPU and CUDA.
_FUSED_KERNELS = {"sgd", "momentum", "nesterov", "adagrad", "adam", "adamw"}
# torch's default decoupled weight decay of AdamW, applied to weight matrices only.
_ADAMW_DECAY = 0.01


def build_net(params, module, criterion, *, device, seed, has_valid, previous=None,
              previous_optimizer=None, scorer=None):
    """A skorch ``TensorNet`` ready to train ``module``, initialised.

    Parameters
    ----------
    params : dict
        The estimator's parameters.
    module : torch.nn.Module
        The network to train (a fresh one, or a copy of a trained one).
    criterion : torch.nn.Module
        The data loss, with ``reduction="mean"``.
    device : str
        Torch device, already resolved.
    seed : int
        Seed of the batch order.
    has_valid : bool
        Whether the fit monitors a validation set (which decides the
        callbacks: best-weights restore, what "plateau" and stopping watch).
    previous : TensorNet, default=None
        A trained net to continue from: its history, the state of its batch
        order and, if ``previous_optimizer`` is ``params["optimizer"]``, its
        optimizer's state (Adam's moments, momentum buffers) are carried
        over. The new parameters (learning rate, momentum, penalties) apply
        from the first step on.
    previous_optimizer : str, default=None
        The ``optimizer`` parameter ``previous`` was trained with.
    scorer : object or None, default=None
        The estimator's per-epoch validation score (see
        ``BaseNetwork._epoch_scorer``): with a validation set it is recorded
        as ``valid_<name>`` every epoch and the best epoch, early stopping
        and "plateau" follow it (higher is better). None, or no validation
        set, monitors the validation loss (training loss without one).

    Returns
    -------
    TensorNet
    """
    penalty, groups = _penalty(params, module)
    optimizer_cls, optimizer_kwargs = optimizer(params)
    monitor = Monitor.of(has_valid, scorer)
    generator = torch.Generator().manual_seed(seed)
    net = TensorNet(
        module=module,
        criterion=criterion,
        optimizer=optimizer_cls,
        lr=params["lr"],
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        callbacks=callbacks(params, monitor),
        device=device,
        train_split=None,
        penalty=penalty,
        scorer=scorer if monitor.is_score else None,
        clip_grad_norm=params.get("clip_grad_norm"),
        generator=generator,
        shuffle=params["shuffle"],
        verbose=params["verbose"],
        **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
        **({"optimizer__param_groups": groups} if groups else {}),
    ).initialize()
    if previous is not None:
        _continue_from(net, previous, same_optimizer=previous_optimizer == params["optimizer"])
    return net


def _continue_from(net, previous, same_optimizer):
    """Carry history, batch order and (same optimizer only) optimizer state over."""
    # Training never changes the epochs it has recorded: share them.
    net.history = EpochHistory(previous.history)
    net.generator.set_state(previous.generator.get_state())
    # What a learning-rate scheduler sets on its first use: a continued fit
    # resumes its schedule at epoch len(history), from the new learning rate.
    for group in net.optimizer_.param_groups:
        group.setdefault("initial_lr", group["lr"])
    if not same_optimizer:
        return
    old = dict(previous.module_.named_parameters())
    for name, parameter in net.module_.named_parameters():
        state = previous.optimizer_.state.get(old[name])
        if state:
            net.optimizer_.state[parameter] = {
                key: value.detach().to(parameter.device, copy=True) if torch.is_tensor(value)
                else value
                for key, value in state.items()}


def optimizer(params):
    """``(torch optimizer class, keyword arguments)`` for ``params["optimizer"]``."""
    name = params["optimizer"]
    kwargs = {}
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = params["momentum"]
        kwargs["nesterov"] = name == "nesterov"
    if name == "adamw":
        kwargs["weight_decay"] = 0.0  # set on the weight group only
    if name in _FUSED_KERNELS:
        kwargs["fused"] = True
    return OPTIMIZERS[name], kwargs


def _penalty(params, module):
    """(penalty added to the loss or None, optimizer param groups)."""
    names = {id(layer.weight) for layer in linear_layers(module)}
    weight_names = [n for n, p in module.named_parameters() if id(p) in names]
    l1, l2 = params["l1"], params["l2"]
    adamw = params["optimizer"] == "adamw"
    groups = []
    if adamw:
        groups = [(n, {"weight_decay": _ADAMW_DECAY}) for n in weight_names]
    elif l2 > 0:
        # d/dW (l2 / 2 * ||W||^2) = l2 * W: exactly torch's coupled weight decay.
        groups = [(n, {"weight_decay": l2}) for n in weight_names]
    in_loss_l2 = l2 if adamw else 0.0
    if l1 == 0 and in_loss_l2 == 0:
        return None, groups
    return Penalty(l1, in_loss_l2), groups


def callbacks(params, monitor):
    """The skorch callbacks of a fit, in the order they run at the end of an epoch.

    ``monitor`` (a :class:`~sknets._engine.callbacks.Monitor`) is what the
    best epoch, stopping and "plateau" watch; a validation score is recorded
    by the net with the validation loss, before any callback runs. Per-batch
    rates (warmup, "one_cycle") run before the epoch schedule, which goes on
    from the rate they hand back. ``best_weights`` runs before the progress
    log, so that an epoch printed is an epoch whose weights are tracked;
    stopping runs last, since it ends the epoch by raising and the last
    epoch's line must still be printed.
    """
    return [("epoch_timer", EpochTimer()),
            *batch_rate_callbacks(params),
            ("lr", lr_callback(params, monitor)),
            ("best_weights", BestWeights(monitor.key, restore=monitor.has_valid,
                                         lower_is_better=monitor.lower_is_better)),
            *progress_callbacks(params["verbose"], monitor=monitor.key),
            *stopping_callbacks(params, monitor),
            *user_callbacks(params.get("callbacks"))]


def batch_rate_callbacks(params):
    """``[("batch_lr", BatchRates)]`` when the rate changes within epochs, else ``[]``."""
    warmup = params.get("lr_warmup_epochs") or 0
    one_cycle = params["lr_schedule"] == "one_cycle"
    if not (warmup or one_cycle):
        return []
    return [("batch_lr", BatchRates(warmup_epochs=warmup,
                                    cycle_epochs=params["max_epochs"] if one_cycle else None))]


def user_callbacks(callbacks):
    """The ``callbacks`` parameter as ``(name, callback)`` pairs.

    The objects themselves, as skorch uses them: a callback that keeps state
    resets it in ``on_train_begin``.
    """
    pairs = []
    for index, item in enumerate(callbacks or ()):
        name, callback = item if isinstance(item, tuple) else (f"user_{index}", item)
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{index}] must be a skorch callback (a subclass of "
                            f"skorch.callbacks.Callback) or a (name, callback) pair; got "
                            f"{callback!r}.")
        pairs.append((str(name), callback))
    return pairs


def lr_callback(params, monitor):
    """skorch ``LRScheduler`` setting the learning rate of each epoch.

    It records the epoch's rate as ``lr`` in the history, unless per-batch
    rates are on: then :class:`BatchRates` records the rate of the epoch's
    last batch.
    """
    event_name = None if batch_rate_callbacks(params) else "lr"
    if params["lr_schedule"] == "plateau":
        return LRScheduler(
            policy="ReduceLROnPlateau", monitor=monitor.key,
            mode="min" if monitor.lower_is_better else "max",
            factor=params["lr_gamma"], patience=params["lr_patience"],
            min_lr=params["lr_min"], event_name=event_name)
    schedule = EpochSchedule(params["lr_schedule"], params["lr"], params["lr_decay"],
                             params["lr_min"], params["lr_step_size"], params["lr_gamma"],
                             params["max_epochs"])
    return LRScheduler(policy="LambdaLR", lr_lambda=schedule, event_name=event_name)


def stopping_callbacks(params, monitor):
    """Stopping when the monitored value stalls (see :class:`Monitor`).

    With a validation set only when ``early_stopping`` asks for it; without
    one whenever ``patience`` is set, on the training loss.
    """
    if monitor.has_valid:
        if not (params["early_stopping"] and params["patience"]):
            return []
    elif params["patience"] is None:
        return []
    return [("early_stopping", StopWhenStalled(monitor.key, params["patience"], params["tol"],
                                               lower_is_better=monitor.lower_is_better))]
