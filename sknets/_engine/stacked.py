"""Several MLPs trained in lockstep on the same mini-batches.

A grid search over learning rates, penalties, dropout rates, schedules and
widths trains many small networks of one depth on the same data: same
initial weights for the same ``random_state``, same mini-batches.
:func:`train_stacked` trains ``K`` of them in one loop: each batch is drawn
once (with the batch order's generator, as ``BatchIterator`` draws it) and
every member takes its step on it; the epoch's bookkeeping (losses,
learning-rate schedules, stopping, best epoch) is shared.

Each member keeps its own torch optimizer, the very one a separate fit
builds (its learning rate, momentum, weight decay and state), its own
learning-rate scheduler (the one its fit's ``LRScheduler`` callback builds,
stepped as the callback steps it) and its own generator of dropout masks
(started where its fit's draws would start). By default each member also
takes its own fused step (:class:`~sknets._engine.fused.FusedStep`) under
the thread budget of its own fit: a member is then bit for bit the network
its separate fit trains. Where the budget of the group's total work is
larger (small networks), several members take their steps at once, in
threads.

``batched=True`` instead computes the first layer of all members as one
wide matrix product (their first weight matrices stacked row-wise, whatever
their widths), and the deeper layers of members of equal widths as batched
products (``torch.baddbmm``), with gradients derived by hand as in
``FusedStep`` (and its losses); the members' parameters are views of the
stacked tensors, so their own optimizers update them in place. It agrees
with separate fits to float32 rounding only; the dropout masks are the
separate fits' own.

A member's training loss, stopping (``StopWhenStalled``) and best epoch
(``BestWeights`` on the training loss) follow the separate fit's rules; a
stopped member is no longer trained.
"""

import concurrent.futures
import contextlib
import itertools
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .callbacks import stall_step
from .fused import FusedStep, _cross_entropy, _squared_error
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
    lr : list of float
        The epoch's learning rate, as the fit's ``LRScheduler`` records it.
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
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_epoch: int = 0
    failed: bool = False
    generator_state: torch.Tensor | None = None


def stackable(module, criterion):
    """Whether :func:`train_stacked` can train ``module`` with ``criterion``.

    A plain ``nn.Sequential`` of ``Linear`` layers, each hidden one followed
    by one element-wise activation the fused step knows and optionally a
    ``Dropout``, and a bare linear output; the softmax cross-entropy on class
    indices (no label smoothing) or the squared error.
    """
    if not (type(criterion) is ClassificationLoss and not criterion.label_smoothing) \
            and type(criterion) is not nn.MSELoss:
        return False
    if type(module) is not nn.Sequential and not (
            isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward):
        return False
    step = FusedStep.build(module, criterion)
    return step is not None and all(layer.activation is not None for layer in step.layers)


def _signature(step):
    """What members must share to train together: depth, activations, input and output sizes."""
    return (step.layers[0].linear.in_features if step.layers else step.output.in_features,
            tuple(type(layer.activation) for layer in step.layers), step.output.out_features)


def train_stacked(nets, X, y, *, epochs, batch_size, shuffle, seed, patience, tol,
                  n_threads=None, batched=False, rng_states=None):
    """Train the initialised ``nets`` together, as separate fits would train each.

    Parameters
    ----------
    nets : list of TensorNet
        Initialised nets whose modules :func:`stackable` accepts, of one
        depth, activation, input and output size (their widths and dropout
        rates may differ), starting from the weights a separate fit starts
        from; each net's ``optimizer_`` is used for its own updates, and the
        torch scheduler of its ``"lr"`` callback sets its learning rate of
        each epoch.
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
    rng_states : list of torch.Tensor or None, default=None
        For each member, the state of torch's generator its separate fit's
        training starts from (its dropout masks are drawn from a generator
        in that state). None: the members have no dropout.

    Returns
    -------
    list of MemberRecord
        One per net.
    """
    modules = [net.module_ for net in nets]
    steps = [FusedStep.build(net.module_, net.criterion_) for net in nets]
    if len({_signature(step) for step in steps}) != 1:
        raise ValueError("stacked networks must share depth, activations, inputs and outputs")
    for step, state in zip(steps, rng_states or itertools.repeat(None)):
        if state is not None:
            step.generator = torch.Generator()
            step.generator.set_state(state)
    # The schedulers first: they wrap optimizer.step, which the updates call.
    rates = [_Rate(net) for net in nets]
    update = _Updates(nets)
    records = [MemberRecord() for _ in nets]
    size = min(batch_size, len(X))
    work = [training_flops(module, size) for module in modules]
    loop = {"epochs": epochs, "size": size, "shuffle": shuffle, "seed": seed,
            "patience": patience, "tol": tol}
    if not batched:
        # Each member computes under the thread budget of its own fit, whose
        # matrix-product kernels (and rounding) depend on it; the budget of
        # the group's work, where larger, runs several members at once.
        budgets = [thread_budget(n_threads, w) for w in work]
        lanes = 1
        if n_threads is None and len(set(budgets)) == 1:
            lanes = max(1, min(len(nets), thread_budget(None, sum(work)) // budgets[0]))
        losses = torch.zeros(len(nets))

        def train(members, X_batch, y_batch, worker=False):
            with contextlib.ExitStack() as stack:
                if worker:
                    stack.enter_context(ThreadLimit(budgets[0]))
                    stack.enter_context(flush_denormals())
                for k in members:
                    if not worker and torch.get_num_threads() != budgets[k]:
                        torch.set_num_threads(budgets[k])
                    losses[k] = steps[k](X_batch, y_batch)
                update(members)

        with ThreadLimit(max(budgets)), flush_denormals(), \
                concurrent.futures.ThreadPoolExecutor(max(lanes - 1, 1)) as pool:
            def step(X_batch, y_batch, active):
                shares = [active[lane::lanes] for lane in range(lanes)]
                running = [pool.submit(train, share, X_batch, y_batch, True)
                           for share in shares[1:] if share]
                train(shares[0], X_batch, y_batch)
                for future in running:
                    future.result()
                return losses.clone()

            _epochs(step, records, rates, X, y, **loop)
    else:
        budget = ThreadLimit(n_threads, work=sum(work))  # the work of all members
        classify = type(nets[0].criterion_) is ClassificationLoss
        with budget, flush_denormals(), torch.no_grad(), _Stacked(steps) as stacked:
            def step(X_batch, y_batch, active):
                losses = stacked.step(X_batch, y_batch, classify)
                update(active)
                return losses

            _epochs(step, records, rates, X, y, **loop)
    for record, module in zip(records, modules):
        if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
            record.failed = True
    return records


class _Updates:
    """The members' optimizer steps, Adam's merged into one kernel call per setting.

    Members whose Adam has the same learning rate, betas, weight decay and
    epsilon are updated by one call of torch's fused kernel over all their
    tensors; the update is element-wise, so each member gets exactly what
    its own ``step()`` would give. Other optimizers take their own ``step()``.
    """

    def __init__(self, nets):
        self.kernels = [AdamKernel.build(net.optimizer_) for net in nets]
        self.steps = [net.optimizer_.step for net in nets]

    def __call__(self, members):
        merged = {}
        for k in members:
            kernel = self.kernels[k]
            if kernel is None:
                self.steps[k]()
                continue
            for key, lists in kernel.pending().items():
                for into, more in zip(merged.setdefault(key, ([], [], [], [], [])), lists):
                    into.extend(more)
        AdamKernel.launch(merged)


class _Rate:
    """A member's learning rate per epoch: its fit's ``LRScheduler`` callback, replayed.

    The torch scheduler is built as the callback builds it at the start of
    training (on the member's optimizer, which it sets to the first epoch's
    rate); at the end of each epoch the rate is recorded and the scheduler
    stepped, with the epoch's training loss for "plateau", as the callback
    does.
    """

    def __init__(self, net):
        callback = dict(net.callbacks_)["lr"]
        callback.on_train_begin(net)
        self.scheduler = callback.lr_scheduler_
        self.plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def epoch_end(self, loss):
        """The epoch's rate, then the step to the next epoch's."""
        rate = self.scheduler.get_last_lr()[0]
        if self.plateau:
            self.scheduler.step(loss)
        else:
            self.scheduler.step()
        return rate


class _Stacked:
    """The members' linear layers as stacked tensors, their parameters views of them.

    The first layers of all members are one ``(sum of widths, n_features)``
    matrix, the members' rows in turn; members of equal widths form a
    bucket, whose deeper layers are ``(n_members, out, in)`` tensors. Inside
    the ``with`` block each member's weights, biases and gradients are
    slices of those tensors, so the members' own optimizers update them in
    place; on exit every parameter holds a tensor of its own again.
    """

    def __init__(self, steps):
        self.steps = steps
        self.activations = [(layer.activate, layer.activation_grad) for layer in steps[0].layers]
        widths = [tuple(layer.linear.out_features for layer in step.layers) for step in steps]
        buckets = {}
        for k, width in enumerate(widths):
            buckets.setdefault(width, []).append(k)
        # The members in the order of the first layer's rows: bucket by bucket.
        self.order = [k for members in buckets.values() for k in members]
        self.buckets, start = [], 0
        for width, members in buckets.items():
            # The bucket's columns of the first layer's output, and its members'
            # dropout rates of every hidden layer.
            span = len(members) * (width[0] if width else steps[0].output.out_features)
            rates = [[steps[k].layers[i].dropout for k in members] for i in range(len(width))]
            self.buckets.append(_Bucket(members, width, slice(start, start + span), rates))
            start += span
        self.total = start

    def _linears(self, k):
        return [layer.linear for layer in self.steps[k].layers] + [self.steps[k].output]

    def __enter__(self):
        first = [self._linears(k)[0] for k in self.order]
        self.weight = torch.cat([layer.weight.detach() for layer in first])
        self.bias = torch.cat([layer.bias.detach() for layer in first])
        self.weight_grad, self.bias_grad = torch.zeros_like(self.weight), torch.zeros_like(self.bias)
        row = 0
        for layer in first:
            rows = slice(row, row + layer.out_features)
            self._attach(layer, self.weight[rows], self.bias[rows], self.weight_grad[rows],
                         self.bias_grad[rows])
            row = rows.stop
        for bucket in self.buckets:
            bucket.weights, bucket.biases, bucket.weight_grads, bucket.bias_grads = [], [], [], []
            for i in range(1, len(bucket.width) + 1):
                layers = [self._linears(k)[i] for k in bucket.members]
                weights = torch.stack([layer.weight.detach() for layer in layers])
                biases = torch.stack([layer.bias.detach() for layer in layers])
                weight_grads, bias_grads = torch.zeros_like(weights), torch.zeros_like(biases)
                for j, layer in enumerate(layers):
                    self._attach(layer, weights[j], biases[j], weight_grads[j], bias_grads[j])
                bucket.weights.append(weights)
                bucket.biases.append(biases)
                bucket.weight_grads.append(weight_grads)
                bucket.bias_grads.append(bias_grads)
        return self

    @staticmethod
    def _attach(layer, weight, bias, weight_grad, bias_grad):
        layer.weight.data, layer.weight.grad = weight, weight_grad
        layer.bias.data, layer.bias.grad = bias, bias_grad

    def __exit__(self, *exc):
        for step in self.steps:
            for layer in [layer.linear for layer in step.layers] + [step.output]:
                for parameter in (layer.weight, layer.bias):
                    parameter.data, parameter.grad = parameter.data.clone(), None

    def _noise(self, shape, members, rates, out=None):
        """Dropout masks of ``members`` (one ``shape`` block each), or None without dropout.

        Each member's block is drawn from its own generator, as its fused
        step draws it: ``bernoulli(1 - p) / (1 - p)``.
        """
        if not any(rates):
            return None
        noise = torch.ones(len(members), *shape) if out is None else out.fill_(1.0)
        for j, (k, p) in enumerate(zip(members, rates)):
            if p:
                block = noise[j] if out is None else out[:, j]
                block.bernoulli_(1 - p, generator=self.steps[k].generator).div_(1 - p)
        return noise

    def step(self, X, y, classify):
        """Losses ``(K,)`` of one batch, in the members' order; fills the gradients."""
        loss_fn = _CROSS_ENTROPY if classify else _squared_error
        batch = len(X)
        losses = torch.empty(len(self.steps))
        z = torch.addmm(self.bias, X, self.weight.t())
        if not self.activations:  # no hidden layer: the first layer is the output
            out = z.view(batch, len(self.order), -1).transpose(0, 1)
            loss, grad = _member_losses(loss_fn, out, y)
            losses[self.order] = loss
            wide = grad.transpose(0, 1).reshape(batch, -1)
        else:
            activate, activation_grad = self.activations[0]
            h = activate(z)
            noise = None
            if any(any(bucket.rates[0]) for bucket in self.buckets):
                noise = torch.ones(batch, self.total)
                for bucket in self.buckets:
                    view = noise[:, bucket.columns].view(batch, len(bucket.members), -1)
                    self._noise(None, bucket.members, bucket.rates[0], out=view)
            dropped = h if noise is None else h * noise
            wide = torch.empty(batch, self.total)
            for bucket in self.buckets:
                members = len(bucket.members)
                inputs = dropped[:, bucket.columns].view(batch, members, -1).transpose(0, 1)
                loss, grad = self._bucket(bucket, inputs, y, loss_fn)
                losses[bucket.members] = loss
                wide[:, bucket.columns].view(batch, members, -1).copy_(grad.transpose(0, 1))
            if noise is not None:
                wide.mul_(noise)
            wide = activation_grad(wide, h)
        torch.mm(wide.t(), X, out=self.weight_grad)
        torch.sum(wide, 0, out=self.bias_grad)
        return losses

    def _bucket(self, bucket, h, y, loss_fn):
        """A bucket's layers after the first: its losses, and the gradient of its first outputs."""
        last = len(bucket.weights) - 1
        inputs, outs, noises = [h], [], []
        for i, (weight, bias) in enumerate(zip(bucket.weights, bucket.biases)):
            z = torch.baddbmm(bias.unsqueeze(1), inputs[-1], weight.transpose(1, 2))
            if i == last:
                break
            out = self.activations[i + 1][0](z)
            outs.append(out)
            noise = self._noise(out.shape[1:], bucket.members, bucket.rates[i + 1])
            noises.append(noise)
            inputs.append(out if noise is None else out * noise)
        loss, grad = _member_losses(loss_fn, z, y)
        for i in range(last, -1, -1):
            torch.bmm(grad.transpose(1, 2), inputs[i], out=bucket.weight_grads[i])
            torch.sum(grad, 1, out=bucket.bias_grads[i])
            grad = torch.bmm(grad, bucket.weights[i])
            if i == 0:
                return loss, grad
            if noises[i - 1] is not None:
                grad.mul_(noises[i - 1])
            grad = self.activations[i][1](grad, outs[i - 1])


@dataclass
class _Bucket:
    """Members of equal widths: their deeper layers stacked."""

    members: list
    width: tuple
    columns: slice
    rates: list
    weights: list = field(default_factory=list)
    biases: list = field(default_factory=list)
    weight_grads: list = field(default_factory=list)
    bias_grads: list = field(default_factory=list)


def _epochs(step, records, rates, X, y, *, epochs, size, shuffle, seed, patience, tol):
    """The epochs: ``step(X_batch, y_batch, active)`` trains the active members on a batch.

    ``rates``: each member's :class:`_Rate`, stepped at the end of its epochs.
    """
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
            record.lr.append(rates[k].epoch_end(loss))
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
