"""Training: optimizers, learning-rate schedules, mini-batches, stopping, starting weights.

How a gradient from :mod:`sknets.reference.backprop` becomes a step, epoch
after epoch. Each optimizer updates a flat list of parameter arrays in place.
"""

import math

import numpy as np

# --- Optimizers: how a gradient becomes a step -------------------------------


class GradientDescent:
    """Plain mini-batch gradient descent: ``θ ← θ − η g``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import GradientDescent
    >>> w = np.array([1.0])
    >>> GradientDescent().step([w], [np.array([2.0])], lr=0.1)
    >>> w
    array([0.8])
    """

    def step(self, params, grads, lr):
        for p, g in zip(params, grads):
            p -= lr * g


class Momentum:
    """Heavy-ball momentum, as ``torch.optim.SGD(momentum=μ)`` (no dampening).

    The velocity ``v`` is ``g`` on the first step and ``μ v + g`` after it;
    the step is ``θ ← θ − η v``.

    Parameters
    ----------
    momentum : float, default=0.9
        μ.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import Momentum
    >>> w, opt = np.array([0.0]), Momentum(0.5)
    >>> for _ in range(2):
    ...     opt.step([w], [np.array([1.0])], lr=1.0)
    >>> w  # steps of 1 and then 0.5 * 1 + 1
    array([-2.5])
    """

    def __init__(self, momentum=0.9):
        self.momentum = momentum
        self.velocity = None

    def step(self, params, grads, lr):
        if self.velocity is None:
            self.velocity = [g.copy() for g in grads]
        else:
            for v, g in zip(self.velocity, grads):
                v *= self.momentum
                v += g
        for p, v in zip(params, self.velocity):
            p -= lr * v


class Adam:
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` with its defaults.

    At step ``t = 1, 2, ...``: ``m ← β1 m + (1 − β1) g``,
    ``v ← β2 v + (1 − β2) g²``, and
    ``θ ← θ − η m̂ / (√v̂ + ε)`` with the bias corrections
    ``m̂ = m / (1 − β1^t)``, ``v̂ = v / (1 − β2^t)``.

    Parameters
    ----------
    beta1 : float, default=0.9
    beta2 : float, default=0.999
    eps : float, default=1e-8

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import Adam
    >>> w = np.array([1.0])
    >>> Adam().step([w], [np.array([123.0])], lr=0.1)
    >>> w.round(6)  # the first step has length lr whatever the gradient's size
    array([0.9])
    """

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m = self.v = None

    def step(self, params, grads, lr):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]
            self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


def make_optimizer(name, momentum=0.9):
    """The optimizer called ``name`` ("sgd", "momentum" or "adam").

    Examples
    --------
    >>> from sknets.reference import make_optimizer
    >>> type(make_optimizer("momentum", 0.5)).__name__
    'Momentum'
    """
    if name == "sgd":
        return GradientDescent()
    if name == "momentum":
        return Momentum(momentum)
    if name == "adam":
        return Adam()
    raise ValueError(f"unknown optimizer {name!r}; use one of {OPTIMIZERS}")


OPTIMIZERS = ("sgd", "momentum", "adam")


# --- Learning-rate schedules --------------------------------------------------

SCHEDULES = ("constant", "linear", "exponential")


def learning_rate(epoch, lr, schedule="constant", lr_decay=0.0, lr_min=0.0):
    """Learning rate of epoch ``epoch`` (0 for the first epoch).

    "constant": ``lr``; "linear": ``max(lr − lr_decay · epoch, lr_min)``;
    "exponential": ``max(lr · exp(−lr_decay · epoch), lr_min)``.

    Examples
    --------
    >>> from sknets.reference import learning_rate
    >>> [round(learning_rate(t, 0.1, "linear", 0.03, 0.02), 3) for t in range(5)]
    [0.1, 0.07, 0.04, 0.02, 0.02]
    """
    if schedule == "constant":
        return lr
    if schedule == "linear":
        return max(lr - lr_decay * epoch, lr_min)
    if schedule == "exponential":
        return max(lr * math.exp(-lr_decay * epoch), lr_min)
    raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")


# --- Stopping ----------------------------------------------------------------


class Patience:
    """Counts epochs whose loss did not beat the best one by more than ``tol``.

    An epoch "improves" when its loss is below ``best - tol``; training stops
    after ``patience`` epochs in a row without improvement (never when
    ``patience`` is None).

    Examples
    --------
    >>> from sknets.reference import Patience
    >>> counter = Patience(patience=2, tol=0.1)
    >>> [counter.should_stop(loss) for loss in [1.0, 0.95, 0.5, 0.45, 0.44]]
    [False, False, False, False, True]
    """

    def __init__(self, patience, tol):
        self.patience, self.tol = patience, tol
        self.threshold = np.inf
        self.misses = 0

    def should_stop(self, loss):
        if loss < self.threshold:
            self.threshold = loss - self.tol
            self.misses = 0
        else:
            self.misses += 1
        return self.patience is not None and self.misses >= self.patience


def minibatches(n_samples, batch_size, rng=None):
    """Index arrays of one epoch's mini-batches.

    Consecutive slices of ``0 .. n_samples - 1`` (the last may be smaller),
    taken from a fresh random permutation when ``rng`` is given.

    Examples
    --------
    >>> from sknets.reference import minibatches
    >>> [batch.tolist() for batch in minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    order = np.arange(n_samples) if rng is None else rng.permutation(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start:start + batch_size]


# --- Starting weights --------------------------------------------------------


def glorot_init(widths, rng, dtype=np.float64):
    """Layers with Glorot-uniform weights and zero biases, as the torch estimators start.

    ``W`` of a layer with ``n_in`` inputs and ``n_out`` outputs is drawn from
    ``U(-r, r)`` with ``r = sqrt(6 / (n_in + n_out))``, which keeps the
    variance of activations and gradients about the same from layer to
    layer (Glorot & Bengio, 2010).

    Parameters
    ----------
    widths : sequence of int
        Input width, hidden widths, output width.
    rng : numpy.random.RandomState
    dtype : numpy dtype, default=np.float64

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import glorot_init
    >>> layers = glorot_init([784, 100, 10], np.random.RandomState(0))
    >>> [W.shape for W, b in layers], float(abs(layers[0][0]).max()) <= (6 / 884) ** 0.5
    ([(100, 784), (10, 100)], True)
    """
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        bound = math.sqrt(6 / (n_in + n_out))
        W = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(dtype)
        layers.append((W, np.zeros(n_out, dtype=dtype)))
    return layers
