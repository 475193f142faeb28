"""Several MLPs trained in lockstep on the same mini-batches.

A grid search over learning rates, penalties, dropout rates, schedules and
widths trains many small networks of one depth on the same data: same
initial weights for the same ``random_state``, same mini-batches.
:func:`train_stacked` trains ``K`` of them in one loop: each batch is drawn
once (with the batch order's generator, as ``BatchIterator`` draws it) and
every member takes its step on it.

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
``FusedStep`` (and its losses); the members' parameters (and fresh Adam
moments) are views of the stacked tensors, so their own optimizers update
them in place, Adam over blocks of neighbouring members. Where torch's
matrix products give a column the same bits however many columns are
computed together (:func:`~sknets._engine.resources.split_invariant`:
MKL's strict mode), every member is bit for bit its separate fit: the
step lays out and reduces each member's numbers as the member's own fused
step does (see :class:`_Stacked`), and computes the members' first layers
apart where a wide product would round a member's columns otherwise
(:func:`_wide_product_exact`: a BLAS kernel chosen by the number of
columns). Products that the fits compute with oneDNN
(:func:`~sknets._engine.resources.onednn_products`: large products on AMD
CPUs) it computes member by member, on operands laid out as the fits lay
them out. Elsewhere it agrees with separate fits
to float32 rounding. The dropout masks are the separate fits' own.

Everything but the steps is each member's own fit
(:class:`~sknets._engine.net.SteppedElsewhere`): its history, its
validation pass (``early_stopping``), its callbacks — learning-rate
schedule, best weights and their restore, stopping. A stopped member is no
longer trained.
"""

import concurrent.futures
import contextlib
import functools
import itertools
import operator
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..exceptions import DivergenceError
from . import resources
from .fused import NARROW_OUTPUT, FusedStep
from .modules import dropout_mask
from .net import AdamKernel, BatchIterator, KernelCalls, SteppedElsewhere, _all_finite
from .resources import (
    ThreadLimit,
    flush_denormals,
    follow_load,
    keep_memory_for,
    onednn_computes,
    onednn_products,
    step_product,
    step_products,
    thread_budget,
    thread_invariant,
    training_flops,
)


def stackable(module, criterion, penalty=None):
    """Whether :func:`train_stacked` can train ``module`` with ``criterion`` and ``penalty``.

    A plain ``nn.Sequential`` of ``Linear`` layers, each hidden one followed
    by one element-wise activation the fused step knows and optionally a
    ``Dropout``, and a bare linear output; a loss the fused step knows
    (without class weights); no penalty, or the weights' ``l1`` and ``l2``
    (:class:`~sknets._engine.modules.Penalty`).
    """
    if type(module) is not nn.Sequential and not (
            isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward):
        return False
    step = FusedStep.build(module, criterion, penalty)
    return step is not None and all(layer.activation is not None for layer in step.layers)


def _signature(step):
    """What members must share to train together: depth, activations, input and output sizes."""
    return (step.layers[0].linear.in_features if step.layers else step.output.in_features,
            tuple(type(layer.activation) for layer in step.layers), step.output.out_features)


def train_stacked(nets, train, valid=None, metrics=None, *, epochs, n_threads=None,
                  batched=False, rng_states=None):
    """Train the initialised ``nets`` together, as separate fits would train each.

    Parameters
    ----------
    nets : list of TensorNet
        Initialised nets whose modules :func:`stackable` accepts, of one
        depth, activation, input and output size (their widths and dropout
        rates may differ), starting from the weights a separate fit starts
        from, with equal batch sizes, ``shuffle`` and batch-order generator
        states; each net's optimizer and callbacks serve its own fit.
    train : TensorData
        The training data, without sample weights: class indices (int64)
        or float32 targets.
    valid : TensorData or None, default=None
        The validation set every net monitors (``early_stopping``).
    metrics : callable or None, default=None
        As :meth:`~sknets._engine.net.TensorNet.train_epochs`'.
    epochs : int
    n_threads : int or None
        Thread budget (see :class:`~sknets._engine.resources.ThreadLimit`),
        the one a separate fit of one member gets.
    batched : bool, default=False
        False: each member's batch goes through its own fused step
        (:class:`~sknets._engine.fused.FusedStep`, the separate fit's
        step), so every member is bit for bit its separate fit; the members
        share the batches and the loop. True: the members' layers are
        stacked and computed in wide and batched matrix products, bit for
        bit the separate fits where
        :func:`~sknets._engine.resources.split_invariant` holds, and to
        float32 rounding elsewhere (a different summation order, which
        training can amplify).
    rng_states : list of torch.Tensor or None, default=None
        For each member, the state of torch's generator its separate fit's
        training starts from (its dropout masks are drawn from a generator
        in that state). None: the members have no dropout.

    Returns
    -------
    list of Outcome or None
        Each member's :class:`~sknets._engine.net.Outcome`, as its
        ``train_epochs`` would return it; None for a member whose training
        loss or weights became non-finite (a separate fit raises or
        restores an earlier epoch: the caller fits it on its own).
    """
    modules = [net.module_ for net in nets]
    steps = [FusedStep.build(net.module_, net.criterion_, net.penalty) for net in nets]
    if len({_signature(step) for step in steps}) != 1:
        raise ValueError("stacked networks must share depth, activations, inputs and outputs")
    for step, state in zip(steps, rng_states or itertools.repeat(None)):
        if state is not None:
            step.generator = torch.Generator()
            step.generator.set_state(state)
    size = min(nets[0].batch_size, len(train))
    keep_memory_for(train, size)
    work = [training_flops(module, size) for module in modules]
    products = [step_products(module, size, len(train)) for module in modules]
    fits = []
    try:
        with flush_denormals():
            for net in nets:
                fits.append(SteppedElsewhere(net, train, valid, metrics, size))
            # After the fits' schedulers, which wrap optimizer.step.
            update = _Updates(nets)
            # Members whose products round otherwise on another thread count
            # train the exact way, each on its own fit's count.
            if batched and thread_invariant(set().union(*products)):
                outcomes = _train_batched(steps, update, fits, train, size, epochs, n_threads,
                                          sum(work))
            else:
                outcomes = _train_lockstep(steps, update, fits, train, size, epochs, n_threads,
                                           work, products)
    finally:
        for fit in fits:
            fit.close()
    return [None if outcome is None or not _all_finite(module.state_dict()) else outcome
            for outcome, module in zip(outcomes, modules)]


def _train_lockstep(steps, update, fits, train, size, epochs, n_threads, work, products):
    """Each member's own fused step on the shared batches, under its own fit's thread budget."""
    # Each member computes under the thread budget of its own fit, whose
    # matrix-product kernels (and rounding) depend on it. Members of one
    # budget take their steps together, in as many lanes (threads) as the
    # budget of the group's total work holds; the budgets one after another.
    # One budget per distinct work: the members start together, and the load
    # (thread_budget's rule for large steps) is read once for them all. A
    # short step that its own fit would take on several threads (where the
    # count cannot change its results) takes one here: the lanes use the
    # other cores, and a member on one thread never waits for another.
    keys = list(zip(work, products))
    budget_of = {key: thread_budget(n_threads, key[0], size, key[1]) for key in dict.fromkeys(keys)}
    if n_threads is None:
        budget_of = {key: 1 if key[0] < resources.SHORT_STEP_FLOPS else budget
                     for key, budget in budget_of.items()}
    budgets = [budget_of[key] for key in keys]
    total = thread_budget(None, sum(work)) if n_threads is None else 1
    classes = {}
    for k, budget in enumerate(budgets):
        classes.setdefault(budget, set()).add(k)
    lanes = {budget: max(1, min(len(members), total // budget))
             for budget, members in classes.items()}
    losses = torch.zeros(len(steps))

    def train_members(members, budget, batches, worker=False):
        with contextlib.ExitStack() as stack:
            if worker:
                stack.enter_context(ThreadLimit(budget))
                stack.enter_context(flush_denormals())
            elif torch.get_num_threads() != budget:
                torch.set_num_threads(budget)
            for k in members:
                losses[k] = steps[k](*batches[k])
                fits[k].step_done()
            update(members)

    with ThreadLimit(max(budgets)), \
            concurrent.futures.ThreadPoolExecutor(max(max(lanes.values()) - 1, 1)) as pool:
        def step(batches, active):
            for budget, members in classes.items():
                share = [k for k in active if k in members]
                n_lanes = lanes[budget]
                shares = [share[lane::n_lanes] for lane in range(n_lanes)]
                running = [pool.submit(train_members, part, budget, batches, True)
                           for part in shares[1:] if part]
                train_members(shares[0], budget, batches)
                for future in running:
                    future.result()
            return losses.clone()

        return _epochs(step, fits, train, size, epochs)


def _train_batched(steps, update, fits, train, size, epochs, n_threads, work):
    """The members' layers stacked into wide and batched products, on the group's budget."""
    if len({bytes(fit.net.generator.get_state().numpy()) for fit in fits}) != 1:
        raise ValueError("batched stacking needs one batch order: members of one seed")
    optimizers = [fit.net.optimizer_ for fit in fits]
    with ThreadLimit(n_threads, work=work, batch_size=size), torch.no_grad(), \
            _Stacked(steps, optimizers) as stacked:
        update.blocks = stacked.adam_blocks

        def step(batches, active):
            losses = stacked.step(*batches[0])
            for k in active:
                fits[k].step_done()
            update(active)
            return losses

        return _epochs(step, fits, train, size, epochs)


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
        self._merged = {}  # {members: (their calls, merged)}; lanes update different members
        # A batched group's stacked Adam states (_Stacked.adam_blocks): None, or
        # blocks(pending) -> (calls over blocks of neighbours, members left).
        self.blocks = None

    def __call__(self, members):
        pending, counters = {}, []
        for k in members:
            kernel = self.kernels[k]
            if kernel is None:
                self.steps[k]()
                continue
            calls = kernel.pending()  # empty after a first step, which step() took
            if calls:
                pending[k] = calls
                counters.append(kernel.counter)
        blocks = {}
        if self.blocks is not None and pending:
            blocks, left = self.blocks(pending)
            pending = {k: pending[k] for k in left}
            if not pending:
                AdamKernel.launch(blocks, counters)
                return
        pending = list(pending.values())
        # The merged lists of the last step hold while every member's do.
        members = tuple(members)
        last, merged = self._merged.get(members, (None, None))
        if last is None or len(pending) != len(last) or not all(map(operator.is_, pending, last)):
            merged = AdamKernel.merge(pending)
            self._merged[members] = (pending, merged)
        AdamKernel.launch(AdamKernel.merge([blocks, merged]) if blocks else merged, counters)


class _Stacked:
    """The members' linear layers as stacked tensors, their parameters views of them.

    The first layers of all members are one ``(sum of widths, n_features)``
    matrix, the members' rows in turn; members of equal widths form a
    bucket, whose deeper layers are ``(n_members, out, in)`` tensors. Inside
    the ``with`` block each member's weights, biases and gradients are
    slices of those tensors, so the members' own optimizers update them in
    place; on exit every parameter holds a tensor of its own again.

    ``optimizers``: the members' optimizers. A fresh fused Adam's (or
    AdamW's) moments are made slices of stacked tensors too, and members
    of equal Adam settings are neighbours in every stack, so that
    :meth:`adam_blocks` updates each run of them with one kernel call over
    a few large blocks instead of many small tensors.
    """

    def __init__(self, steps, optimizers=None):
        self.steps = steps
        self.optimizers = optimizers
        self.activations = [(layer.activate, layer.activation_grad) for layer in steps[0].layers]
        # Activations torch computes alike for every element of a tensor
        # (others, the sigmoid, round a tensor's last few elements otherwise).
        self.uniform = [type(layer.activation) in _SAME_FOR_EVERY_ELEMENT
                        for layer in steps[0].layers]
        widths = [tuple(layer.linear.out_features for layer in step.layers) for step in steps]
        buckets = {}
        for k, width in enumerate(widths):
            buckets.setdefault(width, []).append(k)
        if optimizers is not None:  # members of one Adam setting side by side
            buckets = {width: sorted(members, key=lambda k: _adam_setting(optimizers[k]))
                       for width, members in buckets.items()}
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
        self.leaders = _draw_leaders(steps, widths)
        self._uniforms = {}

    def _linears(self, k):
        return [layer.linear for layer in self.steps[k].layers] + [self.steps[k].output]

    def __enter__(self):
        first = [self._linears(k)[0] for k in self.order]
        self.weight = torch.cat([layer.weight.detach() for layer in first])
        self.bias = torch.cat([layer.bias.detach() for layer in first])
        self.weight_grad, self.bias_grad = torch.zeros_like(self.weight), torch.zeros_like(self.bias)
        row, self.rows = 0, []
        for layer in first:
            rows = slice(row, row + layer.out_features)
            self.rows.append(rows)
            self._attach(layer, self.weight[rows], self.bias[rows], self.weight_grad[rows],
                         self.bias_grad[rows])
            row = rows.stop
        self.widths = tuple(layer.out_features for layer in first)
        # Every stack: (parameters, gradients, [(member, parameter, its block)]).
        self.stacks = [(stack, grad, [(k, getattr(layer, name), rows)
                                      for k, layer, rows in zip(self.order, first, self.rows)])
                       for name, stack, grad in (("weight", self.weight, self.weight_grad),
                                                 ("bias", self.bias, self.bias_grad))]
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
                for name, stack, grad in (("weight", weights, weight_grads),
                                          ("bias", biases, bias_grads)):
                    self.stacks.append((stack, grad, [
                        (k, getattr(layer, name), slice(j, j + 1))
                        for j, (k, layer) in enumerate(zip(bucket.members, layers))]))
        self._stack_adam_states()
        return self

    def _stack_adam_states(self):
        """Fresh fused Adam states as slices of stacked moments (see the class docstring)."""
        self.moments, self._moment_of, self._blocks, self._fresh = [], {}, {}, set()
        if self.optimizers is None:
            return
        fresh = {k for k, optimizer in enumerate(self.optimizers)
                 if not optimizer.state and AdamKernel.build(optimizer) is not None}
        if not fresh:
            return
        for stack, _, blocks in self.stacks:
            exp_avg, exp_avg_sq = torch.zeros_like(stack), torch.zeros_like(stack)
            self.moments.append((exp_avg, exp_avg_sq))
            for k, parameter, block in blocks:
                if k in fresh:  # the state torch's first step would create
                    self.optimizers[k].state[parameter] = state = {
                        "step": torch.zeros((), dtype=torch.float32),
                        "exp_avg": exp_avg[block].view_as(parameter),
                        "exp_avg_sq": exp_avg_sq[block].view_as(parameter)}
                    self._moment_of[parameter] = state["exp_avg"]
        self._fresh = fresh

    def adam_blocks(self, pending):
        """The Adam kernel calls of the members in ``pending`` over blocks of neighbours.

        ``pending``: ``{member: its kernel's calls}`` (``AdamKernel.pending``).
        Runs of neighbouring members whose parameters in a stack have one
        setting (kernel key) and whose states are this group's stacked
        moments are updated over that stack's block: the update is
        element-wise, so each member gets what its own calls give. Returns
        ``(calls, members left to their own calls)``.
        """
        members = tuple(k for k in pending if k in self._fresh)
        cached = self._blocks.get(members)
        if cached is None or not all(map(operator.is_, (pending[k] for k in members),
                                         cached[0])):
            if len(self._blocks) > 64:  # learning rates set by schedules
                self._blocks.clear()
            keys = {}
            for k in members:  # {member: {parameter: its key}}, where the moments are ours
                keys[k] = {p: key for key, (params, _, exp_avgs, _, _) in pending[k].items()
                           for p, m in zip(params, exp_avgs) if self._moment_of.get(p) is m}
                if len(keys[k]) != sum(len(lists[0]) for lists in pending[k].values()):
                    del keys[k]
            cached = self._blocks[members] = ([pending[k] for k in members],
                                              self._block_calls(keys),
                                              [k for k in pending if k not in keys])
        return cached[1], cached[2]

    def _block_calls(self, keys):
        merged = KernelCalls()
        for (stack, grad, blocks), (exp_avg, exp_avg_sq) in zip(self.stacks, self.moments):
            run = []
            for k, parameter, block in [*blocks, (None, None, None)]:
                key = keys[k][parameter] if k in keys else None
                if key is not None and parameter.numel() % _VECTOR_ALIGNED:
                    # Alone: its last elements (past its last full vector) are
                    # computed another way than in a block (see _VECTOR_ALIGNED).
                    lists = merged.setdefault(key, ([], [], [], [], []))
                    state = self.optimizers[k].state[parameter]
                    for into, tensor in zip(lists, (parameter, parameter.grad, state["exp_avg"],
                                                    state["exp_avg_sq"], state["step"])):
                        into.append(tensor)
                    key = None
                if run and key != run[0][0]:
                    run_key, first, last = run[0][0], run[0][1], run[-1][1]
                    rows = slice(first[2].start, last[2].stop)
                    lists = merged.setdefault(run_key, ([], [], [], [], []))
                    for into, tensor in zip(lists, (stack, grad, exp_avg, exp_avg_sq)):
                        into.append(tensor[rows])
                    lists[4].append(self.optimizers[first[0]].state[first[1]]["step"])
                    run = []
                if key is not None:
                    run.append((key, (k, parameter, block)))
        return merged

    @staticmethod
    def _attach(layer, weight, bias, weight_grad, bias_grad):
        layer.weight.data, layer.weight.grad = weight, weight_grad
        layer.bias.data, layer.bias.grad = bias, bias_grad

    def __exit__(self, *exc):
        for step in self.steps:
            for layer in [layer.linear for layer in step.layers] + [step.output]:
                for parameter in (layer.weight, layer.bias):
                    parameter.data, parameter.grad = parameter.data.clone(), None
        for k in self._fresh:  # each member's moments its own tensors again
            for state in self.optimizers[k].state.values():
                for name in ("exp_avg", "exp_avg_sq"):
                    state[name] = state[name].clone()

    def _masks(self, layer, shape, members, rates):
        """The dropout masks of ``members`` at hidden ``layer``, as runs of members.

        Returns ``[(first, stop, mask)]``: the members ``first:stop`` (positions
        in ``members``) multiply their ``shape`` block by ``mask``; members
        without dropout are in no run. Each member's mask is the one its
        fused step draws (:func:`~sknets._engine.modules.dropout_mask`) from
        its generator. Members whose generators start in one state and draw
        masks of the same shapes (one seed, equal widths) draw the same
        uniform numbers: those are drawn once per step and layer, by the
        first of them (:attr:`leaders`), and each rate thresholds them once,
        so that neighbours of one rate share one run.
        """
        runs, masks = [], {}
        for j, (k, p) in enumerate(zip(members, rates)):
            if not p:
                continue
            leader = self.leaders.get(k)
            if leader is None:
                mask = dropout_mask(shape, 1 - p, self.steps[k].generator)
            else:
                mask = masks.get((leader, p))
                if mask is None:
                    uniform = self._uniforms.get((leader, layer))
                    if uniform is None:
                        uniform = self._uniforms[leader, layer] = torch.rand(
                            shape, generator=self.steps[leader].generator)
                    # dropout_mask's rule on the shared draws.
                    mask = masks[leader, p] = uniform.lt(1 - p).to(uniform.dtype).div_(1 - p)
            if runs and runs[-1][1] == j and runs[-1][2] is mask:
                runs[-1][1] = j + 1
            else:
                runs.append([j, j + 1, mask])
        return runs

    @staticmethod
    def _drop(x, runs, members_axis=0):
        """``x`` (members along ``members_axis``) times the masks of ``runs``, in place."""
        for first, stop, mask in runs:
            if members_axis == 0:
                x[first:stop].mul_(mask)
            else:
                x[:, first:stop].mul_(mask.unsqueeze(1))
        return x

    def step(self, X, y):
        """Losses ``(K,)`` of one batch, in the members' order; fills the gradients."""
        loss_fn = self.steps[0].loss  # the members' loss (they share it)
        batch = len(X)
        self._uniforms.clear()  # this step's shared dropout draws
        losses = torch.empty(len(self.steps))
        # Products that the members' fits compute with oneDNN (their large
        # ones, onednn_products) are computed member by member here, on
        # operands laid out as the fits' own: the batched products are
        # MKL's, which round otherwise.
        onednn = X.is_cpu and onednn_products()
        if not self.activations:  # no hidden layer: the first layer is the output
            # In the layout of each member's own output (output_layer).
            n_members = len(self.order)
            n_outputs = len(self.weight) // n_members
            if n_outputs <= NARROW_OUTPUT:
                out = _products(self.weight.view(n_members, -1, X.shape[1]), X.t(),
                                self.bias.view(n_members, -1, 1)).transpose(1, 2)
            else:  # each member's block row-major, as its fit's outputs
                out = self._first_products(X).view(batch, n_members, -1).transpose(0, 1)
                out = out.contiguous()
            loss, grad = _member_losses(loss_fn, out, y)
            losses[self.order] = loss
            # Each member's column sums as its own step sums its block.
            torch.sum(grad, 1, out=self.bias_grad.view(n_members, -1))
            weight_grads = self.weight_grad.view(n_members, -1, X.shape[1])
            if _onednn_layer(onednn, batch, X.shape[1], n_outputs):
                for member, weight_grad in zip(grad, weight_grads):  # as each fit computes it
                    member = _as_in_fit(member, n_outputs <= NARROW_OUTPUT)
                    step_product(1, member.t(), X.t(), out=weight_grad, onednn=True)
            else:
                _products(grad.transpose(1, 2), X, out=weight_grads)
        else:
            # Where a member's fit computes its first layer with oneDNN, the
            # first layers member by member, as the fits do.
            first = onednn and any(_onednn_layer(True, batch, X.shape[1], width)
                                   for width in self.widths)
            z = self._first_products(X, first)
            activate, activation_grad = self.activations[0]
            if self.uniform[0]:
                h = activate(z)
            else:  # each member's block as a tensor of its own, as its step computes it
                h = z
                for rows in self.rows:
                    h[:, rows] = activate(z[:, rows].contiguous())
            runs = [self._masks(0, (batch, bucket.width[0]), bucket.members, bucket.rates[0])
                    for bucket in self.buckets]
            dropped = h.clone() if any(runs) else h
            for bucket, bucket_runs in zip(self.buckets, runs):
                self._drop(bucket.block(dropped), bucket_runs, members_axis=1)
            wide = None if first else torch.empty(batch, self.total)
            for bucket, bucket_runs in zip(self.buckets, runs):
                loss, grad = self._bucket(bucket, bucket.block(dropped).transpose(0, 1), y,
                                          loss_fn, onednn)
                losses[bucket.members] = loss
                # The first layer's gradient in the members' own layout,
                # (members, batch, width), each member's block contiguous.
                grad = activation_grad(self._drop(grad, bucket_runs),
                                       bucket.block(h).transpose(0, 1))
                # Each member's column sums as its own step sums its block: a
                # sum over the wide matrix's rows is vectorised across its
                # columns, and rounds another way where a member's width is
                # not a multiple of the vector length.
                torch.sum(grad, 1, out=self.bias_grad[bucket.columns].view(len(grad), -1))
                if first:  # each member's own product, into its rows
                    for j, rows in enumerate(self._bucket_rows(bucket)):
                        step_product(1, grad[j].t(), X.t(), out=self.weight_grad[rows],
                                     onednn=True)
                else:
                    bucket.block(wide).copy_(grad.transpose(0, 1))
            if not first:
                torch.mm(wide.t(), X, out=self.weight_grad)
        for step in self.steps:
            if step.penalty is not None:  # its weights and gradients: views of the stacks
                for weight in step.params[0::2]:
                    step.penalty.grad_(weight, weight.grad)
        return losses

    def _first_products(self, X, onednn=False):
        """The first layers' outputs ``bias + X @ weight.T``, all members' columns side by side.

        One wide product where it gives each member's columns the bits of the
        member's own product (:func:`_wide_product_exact`) and no member's
        fit computes it with oneDNN (``onednn`` False); elsewhere one
        product per member, as its fit computes it.
        """
        if not onednn and _wide_product_exact(*X.shape, self.widths):
            return torch.addmm(self.bias, X, self.weight.t())
        z = X.new_empty(len(X), self.total)
        for rows in self.rows:
            z[:, rows] = step_product(1, X, self.weight[rows], self.bias[rows], onednn=onednn)
        return z

    @staticmethod
    def _bucket_rows(bucket):
        """The rows of the first layer's stacked weights of each of ``bucket``'s members."""
        width, start = bucket.width[0], bucket.columns.start
        return [slice(start + j * width, start + (j + 1) * width)
                for j in range(len(bucket.members))]

    def _bucket(self, bucket, h, y, loss_fn, onednn=False):
        """A bucket's layers after the first: its losses, and the gradient of its first outputs.

        ``h``: the first layer's outputs, (members, batch, width). Layers
        whose products the fits compute with oneDNN (``onednn``, where
        large) are computed member by member on contiguous blocks, as the
        fits' own tensors are laid out; the others as batched products.
        """
        last = len(bucket.weights) - 1
        large = [_onednn_layer(onednn, h.shape[1], weight.shape[2], weight.shape[1])
                 for weight in bucket.weights]
        inputs, outs, noises = [h.contiguous() if large[0] else h], [], []
        for i, (weight, bias) in enumerate(zip(bucket.weights, bucket.biases)):
            if i == last and weight.shape[1] <= NARROW_OUTPUT:  # as output_layer computes it
                z = _products(weight, inputs[-1].transpose(1, 2), bias.unsqueeze(2))
                z = z.transpose(1, 2)
                break
            if large[i] and i < last:  # (output_layer's forward product is MKL's)
                z = torch.stack([step_product(1, member, weight[j], bias[j], onednn=True)
                                 for j, member in enumerate(inputs[-1])])
            else:
                z = torch.baddbmm(bias.unsqueeze(1), inputs[-1], weight.transpose(1, 2))
            if i == last:
                break
            activate = self.activations[i + 1][0]
            if self.uniform[i + 1]:
                out = activate(z)
            else:  # each member's block (contiguous) as a tensor of its own
                out = torch.stack([activate(member) for member in z])
            outs.append(out)
            runs = self._masks(i + 1, out.shape[1:], bucket.members, bucket.rates[i + 1])
            noises.append(runs)
            inputs.append(self._drop(out.clone(), runs) if runs else out)
        loss, grad = _member_losses(loss_fn, z, y)
        narrow = bucket.weights[last].shape[1] <= NARROW_OUTPUT
        for i in range(last, -1, -1):
            if large[i]:
                members = [_as_in_fit(member, narrow and i == last) for member in grad]
                for member, x, weight_grad in zip(members, inputs[i], bucket.weight_grads[i]):
                    step_product(1, member.t(), x.t(), out=weight_grad, onednn=True)
            else:
                _products(grad.transpose(1, 2), inputs[i], out=bucket.weight_grads[i])
            torch.sum(grad, 1, out=bucket.bias_grads[i])
            if large[i]:
                grad = torch.stack([step_product(1, member, weight.t(), onednn=True)
                                    for member, weight in zip(members, bucket.weights[i])])
            else:
                grad = torch.bmm(grad, bucket.weights[i])
            if i == 0:
                return loss, grad
            self._drop(grad, noises[i - 1])
            grad = self.activations[i][1](grad, outs[i - 1])


# Element-wise activations torch computes the same way wherever an element
# lies in a tensor (checked on 10^7 values); the sigmoid, like log1p, uses
# another formula for the elements past a tensor's last full vector.
_SAME_FOR_EVERY_ELEMENT = (nn.ReLU, nn.Tanh, nn.Identity)


# Torch's fused Adam kernel computes a tensor by vectors of up to 16 floats
# and the elements past the last full vector with scalar code, which rounds
# otherwise: a member's tensor joins a block of several members' only when
# its size is a multiple of this (then none of its elements is past a full
# vector, alone or in the block).
_VECTOR_ALIGNED = 64


def _adam_setting(optimizer):
    """What members must share to be updated by one Adam kernel call (sorts; others first)."""
    if AdamKernel.build(optimizer) is None:
        return ("",)
    group = optimizer.param_groups[0]
    return (type(optimizer).__name__, group["lr"], group["betas"], group["weight_decay"],
            group["eps"])


def _draw_leaders(steps, widths):
    """``{member: leader}`` of members that draw dropout masks together (``_Stacked._masks``).

    The leader is the first member whose generator starts in the same
    state, whose hidden widths are the same and whose dropout is in the
    same hidden layers: their draws of uniform numbers are the same, step
    after step. Members without dropout draw nothing; a member without a
    generator of its own draws from torch's global one, and alone.
    """
    first, leaders = {}, {}
    for k, (step, width) in enumerate(zip(steps, widths)):
        drawing = tuple(bool(layer.dropout) for layer in step.layers)
        if step.generator is None or not any(drawing):
            continue
        key = (bytes(step.generator.get_state().numpy()), width, drawing)
        leaders[k] = first.setdefault(key, k)
    return leaders


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

    def block(self, wide):
        """The bucket's columns of ``wide`` (batch, all members' columns): (batch, members, width)."""
        return wide[:, self.columns].view(len(wide), len(self.members), -1)


def _epochs(step, fits, train, size, epochs):
    """The epochs: ``step(batches, active)`` trains the active members on their batches.

    ``batches[k]`` is member ``k``'s ``(X_batch, y_batch)``: members whose
    batch-order generators start in one state (one seed) share each batch.
    Returns each member's outcome, None for one whose training loss diverged.
    """
    nets = [fit.net for fit in fits]
    # The batches of a separate fit: its iterator, with its generator's state.
    orders, of_member = {}, []
    for net in nets:
        state = net.generator.get_state()
        key = bytes(state.numpy())
        if key not in orders:
            generator = torch.Generator()
            generator.set_state(state)
            orders[key] = (generator, BatchIterator(train, size, shuffle=net.shuffle,
                                                    generator=generator))
        of_member.append(list(orders).index(key))
    orders = list(orders.values())
    active, diverged = list(range(len(fits))), set()
    for _ in range(epochs):
        begin = time.perf_counter()
        for k in active:
            fits[k].begin_epoch()
        losses, sizes = [], []
        for drawn in zip(*(iterator for _, iterator in orders)):
            follow_load()
            batches = [drawn[order] for order in of_member]
            for k in active:
                fits[k].notify_batch("on_batch_begin", batch=batches[k], training=True)
            losses.append(step([(X, y) for X, (y, _) in batches], active))
            sizes.append(len(drawn[0][0]))
            for k in active:
                fits[k].notify_batch("on_batch_end", batch=batches[k], training=True,
                                     loss=losses[-1][k], y_pred=None)
        members = torch.stack(losses).t()
        seconds = (time.perf_counter() - begin) / len(active)
        states = [generator.get_state() for generator, _ in orders]
        still = []
        for k in active:
            nets[k].generator.set_state(states[of_member[k]])
            try:
                goes_on = fits[k].end_epoch(list(members[k]), sizes)
            except DivergenceError:
                diverged.add(k)
                continue
            nets[k].history.record("dur", seconds)  # its share of the epoch
            if goes_on:
                still.append(k)
        active = still
        if not active:
            break
    return [None if k in diverged else fit.finish() for k, fit in enumerate(fits)]


@functools.lru_cache(maxsize=256)
def _wide_product_exact(n_rows, n_features, widths):
    """Whether a wide product's blocks of columns have the bits of their own products.

    ``bias + X @ W.T`` with ``W`` the blocks of ``widths`` rows stacked: is
    each block of its columns, bit for bit, the product by that block
    alone? A BLAS may pick its kernel by the number of columns: in MKL's
    strict mode on an AMD EPYC host with AVX-512, products of at most 11
    columns round otherwise than products of 12 or more, while on other
    hosts every width agrees. Checked once per shape, on random numbers
    (two kernels that sum in different orders disagree on most of them).
    """
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(n_rows, n_features, generator=generator)
    weight = torch.rand(sum(widths), n_features, generator=generator)
    bias = torch.rand(sum(widths), generator=generator)
    wide = torch.addmm(bias, X, weight.t())
    starts = itertools.accumulate(widths, initial=0)
    return all(torch.equal(wide[:, start:start + width],
                           torch.addmm(bias[start:start + width], X,
                                       weight[start:start + width].t()))
               for start, width in zip(starts, widths))


def _products(a, b, bias=None, out=None):
    """The members' ``bias[k] + a[k] @ b[k]`` (``b`` may be one matrix for all).

    One batched product, except for a layer of one output, where each
    member's product is a matrix-vector product, which torch computes apart
    from (and rounds otherwise than) a batched product: then each member's
    own, as its fused step computes it.
    """
    if a.shape[1] != 1:
        if bias is None:
            return torch.matmul(a, b, out=out)
        if b.dim() == 2:  # all members' rows in one product
            return torch.addmm(bias.reshape(-1, bias.shape[-1]), a.reshape(-1, a.shape[-1]),
                               b).view(len(a), -1, b.shape[-1])
        return torch.baddbmm(bias, a, b, out=out)
    if out is None:
        out = a.new_empty(len(a), 1, b.shape[-1])
    for k in range(len(a)):
        b_k = b if b.dim() == 2 else b[k]
        if bias is None:
            torch.mm(a[k], b_k, out=out[k])
        else:
            torch.addmm(bias[k], a[k], b_k, out=out[k])
    return out


def _onednn_layer(onednn, batch, n_inputs, n_outputs):
    """Whether fits compute a layer's products with oneDNN (``onednn``: where it is the library).

    A training step's three products of a layer (forward, weight and input
    gradients; the output layer's forward product is always MKL's) take
    the same operations: :func:`~sknets._engine.resources.onednn_computes`
    of them.
    """
    return onednn_computes(onednn, 2 * batch * n_inputs * n_outputs)


def _as_in_fit(grad, narrow):
    """A member's gradient of a layer's outputs ``(batch, outputs)``, laid out as in its fit.

    A fit's tensors are row-major, except the output layer's outputs and
    their gradient where the outputs are narrow (``narrow``: stored
    transposed, :func:`~sknets._engine.fused.output_layer`). oneDNN's
    products may round otherwise on another layout; a copy only where the
    member's block is laid out otherwise.
    """
    return grad.t().contiguous().t() if narrow else grad.contiguous()


def _member_losses(loss, out, target):
    """Mean loss per member and its gradient, ``out`` of shape (K, B, C).

    ``loss`` is the fused step's loss (``values, grad`` of the sum), applied
    to the members' outputs side by side; each member's block of ``out`` is
    laid out as its own fused step lays out its outputs (see
    :func:`~sknets._engine.fused.output_layer`), so that each member's loss
    and gradient are its fused step's, bit for bit.
    """
    n_members = len(out)
    values, grad = loss(out, target.expand(n_members, *target.shape))
    # Each member's mean over its own block, in its memory order (as its fit sums).
    per_member = values.mean(dim=tuple(range(1, values.dim())))
    return per_member, grad.div_(values.numel() // n_members)
