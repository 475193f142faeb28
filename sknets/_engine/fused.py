"""A fused training step for plain MLPs: forward and hand-derived backward.

At MNIST sizes an eager training step spends most of its time in per-op
overhead, and autograd adds its own: building the graph, running the engine,
accumulating gradients. For the networks most users train — linear layers,
an element-wise activation, optional dropout, and a loss whose gradient with
respect to the outputs is one line — the backward pass is short enough to
write out. ``FusedStep`` does the forward pass, the loss and the gradients
with no autograd graph, writes the gradients into preallocated ``.grad``
buffers, and leaves the update to the (fused) torch optimizer. Numerically it
agrees with the eager path to float32 rounding (the same operations, summed
in a slightly different order); the tests pin that.

The losses it covers: the softmax cross-entropy (with label smoothing), the
binary cross-entropy with logits (multi-label classification, with label
smoothing), and the squared, absolute, Huber and Poisson (log link) errors,
as torch's criteria and :mod:`.losses` define them, and the weights'
``l1`` penalty (and ``l2`` where it is in the loss). Anything else — batch
norm, other activations, class-weighted or other losses — returns ``None``
from :meth:`FusedStep.build` and trains through autograd.
"""

import operator

import torch
from torch import nn

from .losses import ClassificationLoss, smooth_labels
from .modules import Dropout, Penalty, dropout_mask
from .resources import (
    holding,
    linear,
    on_one_thread,
    onednn_computes,
    onednn_products,
    small_on_one_thread,
)

_TINY = torch.finfo(torch.float32).tiny


def _relu_grad(grad, out):
    # One kernel: the gradient where the output is positive, 0 elsewhere;
    # in place, like the other activations' (``grad`` keeps its layout).
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


def _tanh_grad(grad, out):
    return grad.mul_(1 - out * out)


def _sigmoid_grad(grad, out):
    return grad.mul_(out * (1 - out))


def _identity_grad(grad, out):
    return grad


def _identity(h):
    return h


# {activation module: (in-place function on a fresh tensor, gradient)}. The
# functions are the modules' own operations without the module call.
_ACTIVATIONS = {
    nn.ReLU: (torch.relu_, _relu_grad),
    nn.Tanh: (torch.tanh_, _tanh_grad),
    nn.Sigmoid: (torch.sigmoid_, _sigmoid_grad),
    nn.Identity: (_identity, _identity_grad),
}
_ACTIVATION_GRADS = {kind: grad for kind, (_, grad) in _ACTIVATIONS.items()}


class _Layer:
    """One hidden layer: linear map, activation, optional dropout."""

    def __init__(self, linear):
        self.linear = linear
        self.activation = None
        self.activate = _identity
        self.activation_grad = _identity_grad
        self.dropout = 0.0


class FusedStep:
    """Loss and gradients of a plain MLP in one pass without autograd.

    Use :meth:`build`, which returns ``None`` for networks it does not cover.
    Calling the step fills ``param.grad`` of every parameter and returns the
    batch's data loss (a detached 0-d tensor).

    Attributes
    ----------
    penalty : Penalty or None
        The weights' penalty, whose gradient the step adds.
    generator : torch.Generator or None
        Where the dropout masks are drawn from; None (the default) is torch's
        global generator, which the modules' ``Dropout`` draws from too.
    softmax : bool
        Whether the loss is the softmax cross-entropy without label
        smoothing: for class-index targets without sample weights and at
        most ``NARROW_OUTPUT`` classes, the step computes it on the outputs'
        transposed layout (the same loss and gradient, bit for bit).
    """

    def __init__(self, layers, output, loss):
        self.layers, self.output, self.loss = layers, output, loss
        self.generator = None
        self.penalty = None
        # (weight, bias) of each linear layer, the output layer last.
        self._linears = [(layer.linear.weight, layer.linear.bias)
                         for layer in [*layers, _Layer(output)]]
        self.params = [p for pair in self._linears for p in pair]
        self._grad_list = []  # the gradient tensors the last step wrote
        self._modes = {}  # (batch size, threads, oneDNN's) -> each linear layer's products
        self._constants = _Constants()
        self.softmax = False

    @classmethod
    def build(cls, module, criterion, penalty=None):
        """A ``FusedStep`` for ``module``, ``criterion`` and ``penalty``, or None.

        ``penalty``: None or a :class:`~sknets._engine.modules.Penalty` on
        the linear layers' weights (``l1``, and ``l2`` in the loss).
        """
        if penalty is not None and type(penalty) is not Penalty:
            return None
        loss = _fused_loss(criterion)
        if loss is None:
            return None
        if not isinstance(module, nn.Sequential):
            return None
        layers, pending = [], None
        for child in module:
            if type(child) is nn.Linear:
                if pending is not None:
                    layers.append(pending)
                pending = _Layer(child)
            elif type(child) in _ACTIVATION_GRADS and pending is not None \
                    and pending.activation is None and not pending.dropout:
                pending.activation = child
                pending.activate, pending.activation_grad = _ACTIVATIONS[type(child)]
            elif type(child) is Dropout and pending is not None and not pending.dropout:
                pending.dropout = child.p
            else:
                return None
        if pending is None or pending.activation is not None or pending.dropout:
            return None  # the last layer must be a bare linear output
        step = cls(layers, pending.linear, loss)
        step.penalty = penalty
        step.softmax = (type(criterion) in (nn.CrossEntropyLoss, ClassificationLoss)
                        and not criterion.label_smoothing)
        return step

    def _grads(self):
        grads = self._grad_list
        if len(grads) == len(self.params) and all(
                map(operator.is_, (p.grad for p in self.params), grads)):
            return grads  # the tensors of the last step, still in place
        for p in self.params:
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.empty_like(p)
        self._grad_list = [p.grad for p in self.params]
        return self._grad_list

    def __call__(self, X, target, weight=None):
        with torch.no_grad():
            return self._step(X, target, weight)

    def _step(self, X, target, weight):
        grads = self._grads()
        cpu = X.device.type == "cpu"
        threads = torch.get_num_threads() if cpu else 1
        onednn = cpu and onednn_products()
        modes = self._modes.get((X.shape[0], threads, onednn)) or self._plan(X, threads, onednn)
        inputs, outs, noises = [], [], []
        h = X
        for layer, (matrix, bias), mode in zip(self.layers, self._linears, modes):
            inputs.append(h)
            h = layer.activate(_forward(mode, threads, h, matrix, bias))
            outs.append(h)
            noise = None
            if layer.dropout and layer.linear.training:
                # The draws of the module's Dropout.
                noise = dropout_mask(h.shape, 1 - layer.dropout, self.generator, h.device,
                                     h.dtype)
                h = h * noise
            noises.append(noise)
        inputs.append(h)
        (matrix, bias), mode = self._linears[-1], modes[-1]
        # The output layer's forward product is MKL's (output_layer), on one
        # thread if it is small; the backward pass takes the transposed
        # gradient of the outputs, ``grad_t`` (n_outputs, n).
        if (self.softmax and weight is None and target.dim() == 1
                and len(bias) <= NARROW_OUTPUT):
            # Narrow outputs are computed transposed: the loss on that layout.
            out_t = _on_threads(mode, threads, narrow_output_t, h, matrix, bias)
            loss, grad_t = _softmax_cross_entropy_t(out_t, target, self._constants)
        else:
            out = _on_threads(mode, threads, output_layer, h, matrix, bias)
            loss, grad = self._loss_and_grad(out, target, weight)
            grad_t = grad.t()

        # Backward, output layer first. grads: W0, b0, W1, b1, ..., W_out, b_out.
        for i in range(len(self.layers), -1, -1):
            _weight_grad(modes[i], threads, grad_t, inputs[i], grads[2 * i])
            torch.sum(grad_t, 1, out=grads[2 * i + 1])
            if i == 0:
                break
            grad = _input_grad(modes[i], threads, grad_t.t(), self._linears[i][0])
            layer = self.layers[i - 1]
            if noises[i - 1] is not None:
                grad.mul_(noises[i - 1])
            grad_t = layer.activation_grad(grad, outs[i - 1]).t()
        if self.penalty is not None:
            for matrix, matrix_grad in zip(self.params[0::2], grads[0::2]):
                self.penalty.grad_(matrix, matrix_grad)
        return loss

    def _plan(self, X, threads, onednn):
        """How each linear layer's products are computed at ``X``'s batch size (cached).

        :func:`~sknets._engine.resources.step_product`'s rule, decided once
        per batch size, thread count and library (``onednn``: where
        :func:`~sknets._engine.resources.onednn_products` holds, on a CPU):
        with oneDNN, with MKL, or with MKL on one thread (a small product on
        a step of several threads).
        """
        modes = []
        for layer in [layer.linear for layer in self.layers] + [self.output]:
            flops = 2 * X.shape[0] * layer.in_features * layer.out_features
            modes.append(_ONEDNN if onednn_computes(onednn, flops)
                         else _MKL_ONE_THREAD if small_on_one_thread(threads, flops)
                         else _MKL)
        if len(self._modes) > 16:  # batch sizes of past fits
            self._modes.clear()
        self._modes[X.shape[0], threads, onednn] = modes
        return modes

    def _loss_and_grad(self, out, target, weight):
        values, grad = self.loss(out, target)
        if weight is None:
            # The mean as torch computes it (the sum, then divided by the
            # count), the count a tensor: a Python number costs a conversion.
            count = self._constants.count(values.numel(), values.device)
            return values.sum().div_(count), grad.div_(count)
        # As the engine's weighted path: the mean over a sample's elements,
        # then the weighted mean over samples.
        per_sample = values.reshape(len(out), -1).mean(1)
        total = weight.sum().clamp_min(_TINY)  # an all-zero batch contributes 0
        scale = weight / (total * (values.numel() // len(out)))
        return (per_sample * weight).sum() / total, grad.mul_(scale.unsqueeze(1))


# How a layer's three products (forward, weight and input gradients) are
# computed at a batch size: FusedStep._plan.
_ONEDNN, _MKL, _MKL_ONE_THREAD = range(3)


def _on_threads(mode, threads, product, *args, **kwargs):
    """``product(*args, **kwargs)``, on one thread where ``mode`` is ``_MKL_ONE_THREAD``.

    ``threads``: the step's thread count, restored after the product.
    """
    if mode != _MKL_ONE_THREAD:
        return product(*args, **kwargs)
    return on_one_thread(threads, product, *args, **kwargs)


def _forward(mode, threads, x, weight, bias):
    """``x @ weight.T + bias`` computed as ``mode`` says (``threads``: the step's count)."""
    if mode == _ONEDNN:
        return linear(x, weight, bias)
    return _on_threads(mode, threads, torch.addmm, bias, x, weight.t())


def _weight_grad(mode, threads, grad_t, inputs, out):
    """``grad_t @ inputs`` into ``out`` (the weights' gradient), computed as ``mode`` says.

    ``grad_t``: the transposed gradient of the layer's outputs. oneDNN's
    product, which has no ``out=``, is put in ``out`` by
    :func:`~sknets._engine.resources.holding`.
    """
    if mode == _ONEDNN:
        holding(out, linear(grad_t, inputs.t()))
    else:
        _on_threads(mode, threads, torch.mm, grad_t, inputs, out=out)


def _input_grad(mode, threads, grad, weight):
    """``grad @ weight`` (the gradient of the layer's inputs), computed as ``mode`` says."""
    if mode == _ONEDNN:
        return linear(grad, weight.t())
    return _on_threads(mode, threads, torch.mm, grad, weight)


def _softmax_cross_entropy_t(out_t, target, constants):
    """Mean softmax cross-entropy of the transposed outputs ``out_t`` and its gradient.

    ``out_t``: ``(n_classes, n)``, contiguous (:func:`output_layer`'s narrow
    outputs); ``target``: ``(n,)`` class indices. The loss and gradient of
    :func:`_cross_entropy` (no label smoothing) and
    :meth:`FusedStep._loss_and_grad`, bit for bit, computed along the
    contiguous layout, which the gradient has too: ``(n_classes, n)``.
    ``constants``: the step's :class:`_Constants`.
    """
    log_proba = torch.log_softmax(out_t, 0)
    index = target.unsqueeze(0)
    n = target.shape[0]
    # -(sum of the log-probabilities) / n is the mean of the negated ones, exactly.
    loss = log_proba.gather(0, index).sum().div_(constants.count(-n, out_t.device))
    grad = log_proba.exp_().scatter_add_(0, index, constants.minus_ones(index))
    return loss, grad.div_(constants.count(n, out_t.device))


class _Constants(dict):
    """Small constant tensors of a training step (counts, -1s), made once per value and device.

    Held by the step or loss that uses them, not in a module-wide cache: a
    step replayed from a CUDA graph (:mod:`~sknets._engine.graphs`) reads
    them by address, and they must live as long as it does.
    """

    def count(self, n, device):
        """``n`` as a 0-d float32 tensor: an operation with a Python number converts it."""
        key = ("count", n, device)
        count = self.get(key)
        if count is None:
            count = self[key] = torch.tensor(float(n), device=device)
        return count

    def minus_ones(self, index):
        """A tensor of -1 shaped and typed for ``scatter_add_`` at ``index``."""
        key = ("-1", index.shape, index.device)
        ones = self.get(key)
        if ones is None:
            ones = self[key] = torch.full(index.shape, -1.0, device=index.device)
        return ones


def onednn_step(module, criterion, device):
    """Whether training ``module`` on ``device`` computes its large products with oneDNN.

    Where the fused step trains it (:meth:`FusedStep.build`) on a CPU whose
    products it computes with oneDNN (:func:`~sknets._engine.resources.onednn_products`).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.fused import onednn_step
    >>> from sknets._engine.resources import onednn_products
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> onednn_step(net, torch.nn.CrossEntropyLoss(), "cpu") == onednn_products()
    True
    >>> onednn_step(net, torch.nn.CrossEntropyLoss(weight=torch.ones(2)), "cpu")
    False
    """
    return (torch.device(device).type == "cpu" and onednn_products()
            and FusedStep.build(module, criterion) is not None)


# Outputs this narrow are computed column by column (see output_layer).
NARROW_OUTPUT = 16


def output_layer(h, weight, bias):
    """``h @ weight.T + bias``; for at most ``NARROW_OUTPUT`` outputs, stored transposed.

    The result is ``(n, n_outputs)`` either way. A narrow one is a view of a
    contiguous ``(n_outputs, n)`` tensor, so that the softmax of each row
    (:func:`log_softmax_rows`) runs along contiguous columns: on a CPU,
    torch's ``log_softmax`` over rows of 10 values took 19 µs for 100 rows
    and 300 µs for 1,600, against 2 and 19 µs on the transposed layout.
    """
    if weight.shape[0] <= NARROW_OUTPUT:
        return narrow_output_t(h, weight, bias).t()
    return torch.addmm(bias, h, weight.t())


def narrow_output_t(h, weight, bias):
    """``(h @ weight.T + bias).T``, contiguous: :func:`output_layer`'s narrow outputs."""
    return torch.addmm(bias.unsqueeze(1), weight, h.t())


def log_softmax_rows(out):
    """``torch.log_softmax(out, -1)``, on the transposed layout where ``out`` has it.

    ``out`` is ``(n, n_outputs)``, or ``(n_networks, n, n_outputs)`` for
    networks side by side, each network's block transposed or not. The two
    layouts sum in different orders: they agree to float32 rounding.
    """
    if out.stride(-2) == 1 and out.stride(-1) == out.shape[-2]:
        return torch.log_softmax(out.transpose(-1, -2), -2).transpose(-1, -2)
    return torch.log_softmax(out, -1)


# The losses: ``loss(out, target) -> (values, grad)``, where ``values`` are the
# per-element losses that ``reduction="none"`` gives (one per sample for the
# softmax cross-entropy) and ``grad`` is the gradient of their sum with
# respect to ``out`` (a fresh tensor, scaled in place by the caller). ``out``
# may have leading dimensions (networks side by side, ``target`` expanded to
# them): the outputs are the last dimension.


def _cross_entropy(label_smoothing):
    constants = _Constants()

    def loss(out, target):
        log_proba = log_softmax_rows(out)
        index = target.unsqueeze(-1)
        values = log_proba.gather(-1, index).squeeze(-1).neg_()
        if not label_smoothing:
            # softmax - one_hot(target), the one-hot part as one scatter.
            return values, log_proba.exp_().scatter_add_(-1, index, constants.minus_ones(index))
        # torch's rule: (1 - s) * nll + s * (mean over the classes of -log p),
        # the cross-entropy against the target (1 - s) * one_hot + s / n_classes.
        n_classes = out.shape[-1]
        values = (1 - label_smoothing) * values - label_smoothing / n_classes * log_proba.sum(-1)
        grad = log_proba.exp_().sub_(label_smoothing / n_classes)
        return values, grad.scatter_add_(-1, index,
                                         constants.minus_ones(index).mul(1 - label_smoothing))
    return loss


def _binary_cross_entropy(label_smoothing):
    def loss(out, target):
        if out.dim() > 2:
            # torch computes the sigmoid and log1p of a tensor's last few
            # elements (past its last full vector) another way than the
            # others: each network's block apart, as its own step would.
            return _network_by_network(loss, out, target)
        target = smooth_labels(target.to(out.dtype).reshape(out.shape), label_smoothing)
        # log(1 + exp(out)) - target * out, computed as torch does (stable).
        values = out.clamp_min(0) - out * target + torch.log1p(torch.exp(-out.abs()))
        return values, torch.sigmoid(out).sub_(target)
    return loss


def _network_by_network(loss, out, target):
    """``loss`` of each network's block of ``out`` and ``target`` apart, side by side."""
    values, grad = torch.empty_like(out), torch.empty_like(out)
    for k in range(len(out)):
        values_k, grad_k = loss(out[k], target[k])
        values[k].copy_(values_k)
        grad[k].copy_(grad_k)
    return values, grad


def _classification(label_smoothing):
    # ClassificationLoss: class indices or an indicator matrix, told by the targets.
    softmax = _cross_entropy(label_smoothing)
    sigmoid = _binary_cross_entropy(label_smoothing)

    def loss(out, target):
        return (softmax if target.dim() < out.dim() else sigmoid)(out, target)
    return loss


def _squared_error(out, target):
    residual = out - target.reshape(out.shape)
    return residual.pow(2), residual.mul_(2)


def _absolute_error(out, target):
    residual = out - target.reshape(out.shape)
    return residual.abs(), residual.sign_()


def _huber(delta):
    def loss(out, target):
        residual = out - target.reshape(out.shape)
        size = residual.abs()
        values = torch.where(size < delta, 0.5 * residual * residual,
                             delta * (size - 0.5 * delta))
        return values, residual.clamp_(-delta, delta)
    return loss


def _poisson(out, target):
    # PoissonNLLLoss(log_input=True, full=False): exp(out) - target * out.
    target = target.reshape(out.shape)
    rate = torch.exp(out)
    return rate - target * out, rate.sub_(target)


def _fused_loss(criterion):
    """The fused form of ``criterion``, or None where the step does not cover it."""
    kind = type(criterion)
    if kind is nn.CrossEntropyLoss:
        if criterion.weight is not None or criterion.ignore_index != -100:
            return None
        return _cross_entropy(criterion.label_smoothing)
    if kind is ClassificationLoss:
        return _classification(criterion.label_smoothing)
    if kind is nn.BCEWithLogitsLoss:
        if criterion.weight is not None or criterion.pos_weight is not None:
            return None
        return _binary_cross_entropy(0.0)
    if kind is nn.MSELoss:
        return _squared_error
    if kind is nn.L1Loss:
        return _absolute_error
    if kind is nn.HuberLoss:
        return _huber(criterion.delta)
    if kind is nn.PoissonNLLLoss:
        return _poisson if criterion.log_input and not criterion.full else None
    return None
