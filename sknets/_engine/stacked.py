"""Several MLPs of one shape trained in lockstep on the same mini-batches.

A grid search over learning rates and penalties trains many small networks
that differ only in how they are updated: same shape, same initial weights
(the same ``random_state``), same mini-batches. :func:`train_stacked` trains
``K`` of them in one loop: each batch is drawn once (with the batch order's
generator, as ``BatchIterator`` draws it) and every member takes its step on
it; the epoch's bookkeeping (losses, stopping, best epoch) is shared.

Each member keeps its own torch optimizer, the very one a separate fit
builds (its learning rate, momentum, weight decay and state), and by default
its own fused step (:class:`~sknets._engine.fused.FusedStep`) under the
thread budget of one fit: a member is then bit for bit the network its
separate fit trains. Where the budget of the group's total work is larger
(small networks), several members take their steps at once, in threads.
``batched=True`` instead stacks the layers of all members into
``(K, out, in)`` tensors, computes the first layer of all members as one
wide matrix product and the others as batched ones (``torch.baddbmm``),
with gradients derived by hand as in ``FusedStep`` (and its losses);
the members' parameters are views of the stacked tensors, so their own
optimizers update them in place. It agrees with separate fits to float32
rounding only, and on a CPU measured slower than the lockstep loop (see
``docs/stacked-search.md``); it is there for wide grids of narrow networks
and accelerators.

A member's training loss, stopping (``StopWhenStalled``) and best epoch
(``BestWeights`` on the training loss) follow the separate fit's rules; a
stopped member is no longer trained.
"""

import concurrent.futures
import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .callbacks import stall_step
from .fused import _ACTIVATIONS, FusedStep, _cross_entropy, _squared_error
from .losses import ClassificationLoss
from .net import AdamKernel, BatchIterator, TensorData
from .resources import ThreadLimit, flush_denormals, thread_budget, training_flops

_CROSS_ENTROPY = _cross_entropy(label_smoothing=0.0)


@dataclass
class MemberRecord:
    """How one member's training went: one entry per complete epoch.

    Attributes
    ----------
    train_loss : list of float
    seconds : list of float
        The epoch's wall time divided among the members trained in it.
    best_epoch : int
        Epoch of the lowest training loss (the first such), 0 before any.
    failed : bool
        The training loss or the weights became non-finite: a separate fit
        would raise, so the caller fits this member on its own.
    generator_state : torch.Tensor or None
        State of the batch-order generator after the member's last epoch.
    """

    train_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_epoch: int = 0
    failed: bool = False
    generator_state: torch.Tensor | None = None


def stackable(module, criterion):
    """Whether :func:`train_stacked` can train ``module`` with ``criterion``.

    A plain ``nn.Sequential`` of ``Linear`` layers, each hidden one followed
    by one element-wise activation the fused step knows, and a bare linear
    output; the softmax cross-entropy on class indices (no label smoothing)
    or the squared error.
    """
    if not (type(criterion) is ClassificationLoss and not criterion.label_smoothing) \
            and type(criterion) is not nn.MSELoss:
        return False
    if type(module) is not nn.Sequential and not (
            isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward):
        return False
    children = list(module)
    if not children or type(children[-1]) is not nn.Linear:
        return False
    kinds = [type(child) for child in children[:-1]]
    return (len(kinds) % 2 == 0 and all(kind is nn.Linear for kind in kinds[0::2])
            and all(kind in _ACTIVATIONS for kind in kinds[1::2]))


def train_stacked(nets, X, y, *, epochs, batch_size, shuffle, seed, patience, tol,
                  n_threads=None, batched=False):
    """Train the initialised ``nets`` together, as separate fits would train each.

    Parameters
    ----------
    nets : list of TensorNet
        Initialised nets whose modules have the same shape (checked by
        :func:`stackable`) and start from the weights a separate fit starts
        from; each net's ``optimizer_`` is used for its own updates.
    X : torch.Tensor of shape (n_samples, n_features)
    y : torch.Tensor
        Class indices (int64) or float32 targets.
    epochs : int
    batch_size : int
    shuffle : bool
    seed : int
        Seed of the batch order (the same for every member).
    patience : int or None
        Stop a member after ``patience`` epochs without its training loss
        improving by more than ``tol``.
    tol : float
    n_threads : int or None
        Thread budget (see :class:`~sknets._engine.resources.ThreadLimit`),
        the one a separate fit of one member gets.
    batched : bool, default=False
        False: each member's batch goes through its own fused step
        (:class:`~sknets._engine.fused.FusedStep`, the separate fit's
        step), so every member is bit for bit its separate fit; the members
        share the batches, the loop and its bookkeeping. True: the members'
        layers are stacked and computed in wide and batched matrix products,
        which agrees with separate fits to float32 rounding only (a
        different summation order, which training can amplify).

    Returns
    -------
    list of MemberRecord
        One per net.
    """
    modules = [net.module_ for net in nets]
    updates = [AdamKernel.build(net.optimizer_) or net.optimizer_.step for net in nets]
    records = [MemberRecord() for _ in nets]
    size = min(batch_size, len(X))
    work = training_flops(modules[0], size)
    loop = {"epochs": epochs, "size": size, "shuffle": shuffle, "seed": seed,
            "patience": patience, "tol": tol}
    if not batched:
        # Each member computes under the thread budget of its own fit, whose
        # matrix-product kernels (and rounding) depend on it; the budget of
        # the group's work, where larger, runs several members at once.
        member_threads = thread_budget(n_threads, work)
        lanes = 1 if n_threads is not None else max(
            1, min(len(nets), thread_budget(None, work * len(nets)) // member_threads))
        steps = [FusedStep.build(net.module_, net.criterion_, net.penalty) for net in nets]
        losses = torch.zeros(len(nets))

        def train(members, X_batch, y_batch, worker=False):
            with contextlib.ExitStack() as stack:
                if worker:
                    stack.enter_context(ThreadLimit(member_threads))
                    stack.enter_context(flush_denormals())
                for k in members:
                    losses[k] = steps[k](X_batch, y_batch)
                    updates[k]()

        with ThreadLimit(member_threads), flush_denormals(), \
                concurrent.futures.ThreadPoolExecutor(max(lanes - 1, 1)) as pool:
            def step(X_batch, y_batch, active):
                shares = [active[lane::lanes] for lane in range(lanes)]
                running = [pool.submit(train, share, X_batch, y_batch, True)
                           for share in shares[1:] if share]
                train(shares[0], X_batch, y_batch)
                for future in running:
                    future.result()
                return losses.clone()

            _epochs(step, records, X, y, **loop)
    else:
        budget = ThreadLimit(n_threads, work=work * len(nets))  # the work of all members
        with budget, flush_denormals(), torch.no_grad(), _Stacked(modules) as stacked:
            def step(X_batch, y_batch, active):
                losses = stacked.step(X_batch, y_batch, type(nets[0].criterion_)
                                      is ClassificationLoss)
                for k in active:
                    updates[k]()
                return losses

            _epochs(step, records, X, y, **loop)
    for record, module in zip(records, modules):
        if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
            record.failed = True
    return records


class _Stacked:
    """The members' linear layers as stacked tensors, their parameters views of them.

    Inside the ``with`` block each member's weights, biases and gradients
    are slices of ``(K, out, in)`` and ``(K, out)`` tensors, so the members'
    own optimizers update the stacked tensors in place; on exit every
    parameter holds a tensor of its own again.
    """

    def __init__(self, modules):
        self.layers = [[child for child in module if type(child) is nn.Linear]
                       for module in modules]
        self.activations = [_ACTIVATIONS[type(child)] for child in list(modules[0])[1:-1:2]]

    def __enter__(self):
        self.weights, self.biases, self.weight_grads, self.bias_grads = [], [], [], []
        for i in range(len(self.layers[0])):
            self.weights.append(torch.stack([member[i].weight.detach()
                                             for member in self.layers]))
            self.biases.append(torch.stack([member[i].bias.detach() for member in self.layers]))
            self.weight_grads.append(torch.zeros_like(self.weights[-1]))
            self.bias_grads.append(torch.zeros_like(self.biases[-1]))
            for k, member in enumerate(self.layers):
                member[i].weight.data = self.weights[i][k]
                member[i].weight.grad = self.weight_grads[i][k]
                member[i].bias.data = self.biases[i][k]
                member[i].bias.grad = self.bias_grads[i][k]
        return self

    def __exit__(self, *exc):
        for member in self.layers:
            for layer in member:
                for parameter in (layer.weight, layer.bias):
                    parameter.data, parameter.grad = parameter.data.clone(), None

    def step(self, X, y, classify):
        return _step(self.weights, self.biases, self.weight_grads, self.bias_grads,
                     self.activations, classify, X, y)


def _epochs(step, records, X, y, *, epochs, size, shuffle, seed, patience, tol):
    """The epochs: ``step(X_batch, y_batch, active)`` trains the active members on a batch."""
    k_all = len(records)
    generator = torch.Generator().manual_seed(seed)
    # The batches of a separate fit: its iterator, with its generator's seed.
    batches = BatchIterator(TensorData(X, y), size, shuffle=shuffle, generator=generator)
    active = list(range(k_all))
    best = [math.inf] * k_all
    stall = [(math.inf, 0)] * k_all
    for epoch in range(1, epochs + 1):
        begin = time.perf_counter()
        losses, sizes = [], []
        for X_batch, (y_batch, _) in batches:
            losses.append(step(X_batch, y_batch, active))
            sizes.append(len(X_batch))
        # As TensorNet.run_single_epoch: batch losses weighted by batch size, in float64.
        sizes = torch.tensor(sizes, dtype=torch.float64)
        members = torch.stack(losses).double().t().contiguous()
        values = [float((members[k] * sizes).sum() / sizes.sum()) for k in range(k_all)]
        seconds = (time.perf_counter() - begin) / len(active)
        state = generator.get_state()
        still = []
        for k in active:
            record, loss = records[k], values[k]
            if not math.isfinite(loss):
                record.failed = True  # a separate fit raises DivergenceError
                continue
            record.train_loss.append(loss)
            record.seconds.append(seconds)
            record.generator_state = state
            if loss < best[k]:
                best[k], record.best_epoch = loss, epoch
            if patience is not None:
                stall[k] = stall_step(*stall[k], loss, tol)
                if stall[k][1] >= patience:
                    continue
            still.append(k)
        active = still
        if not active:
            break


def _step(weights, biases, weight_grads, bias_grads, activations, classify, X, y):
    """Losses ``(K,)`` of one batch; fills the stacked gradients."""
    n_members, batch = weights[0].shape[0], len(X)
    last = len(weights) - 1
    outs = []
    h = None
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        if i == 0:
            # All members read the same batch: one wide product.
            z = torch.addmm(bias.reshape(-1), X, weight.reshape(-1, weight.shape[2]).t())
            z = z.view(batch, n_members, -1).transpose(0, 1)
        else:
            z = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        if i < last:
            h = activations[i][0](z)
            outs.append(h)
    loss, grad = _member_losses(_CROSS_ENTROPY if classify else _squared_error, z, y)
    for i in range(last, -1, -1):
        if i == 0:
            wide = grad.transpose(0, 1).reshape(batch, -1)
            torch.mm(wide.t(), X, out=weight_grads[0].view(-1, X.shape[1]))
            torch.sum(wide, 0, out=bias_grads[0].view(-1))
            break
        torch.bmm(grad.transpose(1, 2), outs[i - 1], out=weight_grads[i])
        torch.sum(grad, 1, out=bias_grads[i])
        grad = activations[i - 1][1](torch.bmm(grad, weights[i]), outs[i - 1])
    return loss


def _member_losses(loss, out, target):
    """Mean loss per member and its gradient, ``out`` of shape (K, B, C).

    ``loss`` is the fused step's loss (``values, grad`` of the sum), applied
    to the members' outputs side by side.
    """
    n_members, batch, width = out.shape
    targets = target.expand(n_members, *target.shape).reshape(n_members * batch, *target.shape[1:])
    values, grad = loss(out.reshape(-1, width), targets)
    per_member = values.reshape(n_members, -1).mean(1)
    return per_member, grad.view(n_members, batch, width).div_(values.numel() // n_members)
