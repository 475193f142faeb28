"""A fused training step for plain MLPs: forward and hand-derived backward.

At MNIST sizes an eager training step spends most of its time in per-op
overhead, and autograd adds its own: building the graph, running the engine,
accumulating gradients. For the networks most users train — linear layers,
an element-wise activation, optional dropout, softmax cross-entropy or squared
error — the backward pass is short enough to write out. ``FusedStep`` does
the forward pass, the loss and the gradients with no autograd graph, writes
the gradients into preallocated ``.grad`` buffers, and leaves the update to
the (fused) torch optimizer. Numerically it agrees with the eager path to
float32 rounding (the same operations, summed in a slightly different order);
the tests pin that.

Anything else — batch norm, other activations, an L1 penalty, a loss other
than cross-entropy and MSE — returns ``None`` from :meth:`FusedStep.build`
and trains through autograd as before.
"""

import torch
from torch import nn

_TINY = torch.finfo(torch.float32).tiny


def _relu_grad(grad, out):
    return grad.mul_(out > 0)


def _tanh_grad(grad, out):
    return grad.mul_(1 - out * out)


def _sigmoid_grad(grad, out):
    return grad.mul_(out * (1 - out))


def _identity_grad(grad, out):
    return grad


_ACTIVATION_GRADS = {
    nn.ReLU: _relu_grad,
    nn.Tanh: _tanh_grad,
    nn.Sigmoid: _sigmoid_grad,
    nn.Identity: _identity_grad,
}


class _Layer:
    """One hidden layer: linear map, activation, optional dropout."""

    def __init__(self, linear):
        self.linear = linear
        self.activation = None
        self.activation_grad = _identity_grad
        self.dropout = 0.0


class FusedStep:
    """Loss and gradients of a plain MLP in one pass without autograd.

    Use :meth:`build`, which returns ``None`` for networks it does not cover.
    Calling the step fills ``param.grad`` of every parameter and returns the
    batch's data loss (a detached 0-d tensor).
    """

    def __init__(self, layers, output, loss):
        self.layers, self.output, self.loss = layers, output, loss
        self.params = [p for layer in [*layers, _Layer(output)]
                       for p in (layer.linear.weight, layer.linear.bias)]

    @classmethod
    def build(cls, module, criterion, penalty=None):
        """A ``FusedStep`` for ``module`` and ``criterion``, or None."""
        if penalty is not None:
            return None
        if type(criterion) is nn.CrossEntropyLoss:
            if (criterion.weight is not None or criterion.label_smoothing
                    or criterion.ignore_index != -100):
                return None
            loss = "cross_entropy"
        elif type(criterion) is nn.MSELoss:
            loss = "mse"
        else:
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
                pending.activation_grad = _ACTIVATION_GRADS[type(child)]
            elif type(child) is nn.Dropout and pending is not None and not pending.dropout:
                pending.dropout = child.p
            else:
                return None
        if pending is None or pending.activation is not None or pending.dropout:
            return None  # the last layer must be a bare linear output
        return cls(layers, pending.linear, loss)

    def _grads(self):
        for p in self.params:
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.empty_like(p)
        return [p.grad for p in self.params]

    @torch.no_grad()
    def __call__(self, X, target, weight=None):
        grads = self._grads()
        inputs, outs, noises = [], [], []
        h = X
        for layer in self.layers:
            inputs.append(h)
            h = torch.addmm(layer.linear.bias, h, layer.linear.weight.t())
            if layer.activation is not None:
                h = layer.activation(h)
            outs.append(h)
            noise = None
            if layer.dropout and layer.linear.training:
                # The draws of torch's own dropout: bernoulli(1 - p) / (1 - p).
                noise = torch.empty_like(h).bernoulli_(1 - layer.dropout).div_(1 - layer.dropout)
                h = h * noise
            noises.append(noise)
        inputs.append(h)
        out = torch.addmm(self.output.bias, h, self.output.weight.t())
        loss, grad = self._loss_and_grad(out, target, weight)

        # Backward, output layer first. grads: W0, b0, W1, b1, ..., W_out, b_out.
        for i in range(len(self.layers), -1, -1):
            linear = self.output if i == len(self.layers) else self.layers[i].linear
            torch.mm(grad.t(), inputs[i], out=grads[2 * i])
            torch.sum(grad, 0, out=grads[2 * i + 1])
            if i == 0:
                break
            grad = torch.mm(grad, linear.weight)
            layer = self.layers[i - 1]
            if noises[i - 1] is not None:
                grad.mul_(noises[i - 1])
            grad = layer.activation_grad(grad, outs[i - 1])
        return loss

    def _loss_and_grad(self, out, target, weight):
        n = len(out)
        if self.loss == "cross_entropy":
            log_proba = torch.log_softmax(out, 1)
            picked = log_proba.gather(1, target.unsqueeze(1)).squeeze(1)
            grad = log_proba.exp_()
            grad[torch.arange(n, device=out.device), target] -= 1
            if weight is None:
                return -picked.mean(), grad.div_(n)
            total = weight.sum().clamp_min(_TINY)  # an all-zero batch contributes 0
            return -(picked * weight).sum() / total, grad.mul_((weight / total).unsqueeze(1))
        residual = out - target.reshape(out.shape)
        if weight is None:
            return residual.pow(2).mean(), residual.mul_(2 / residual.numel())
        per_sample = residual.pow(2).mean(1)
        total = weight.sum().clamp_min(_TINY)
        scale = (weight * (2 / residual.shape[1]) / total).unsqueeze(1)
        return (per_sample * weight).sum() / total, residual.mul_(scale)
