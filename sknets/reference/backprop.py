"""The network's math: activations, forward pass, losses, backward pass, L2.

Read from top to bottom next to ``docs/backpropagation.md``. A network is a
list of layers ``(W, b)``, ``W`` of shape ``(n_out, n_in)`` and ``b`` of
shape ``(n_out,)`` (as torch's ``nn.Linear``); a batch is a matrix with one
sample per row, and a layer computes ``z = a @ W.T + b``. Hidden layers
apply the activation ``f`` to ``z``; the output layer is linear (the softmax
of a classifier lives in its loss).
"""

import numpy as np

# --- Activations -------------------------------------------------------------
# Each activation comes with its derivative f'(z), written in terms of the
# pre-activation z or the activation a = f(z), whichever is simpler.


def _relu(z):
    return np.maximum(z, 0)


def _relu_derivative(z, a):
    return (z > 0).astype(z.dtype)  # torch also takes 0 as the slope at z = 0


def _sigmoid(z):
    # 1 / (1 + exp(-z)) written as exp(-log(1 + exp(-z))) so that a large
    # negative z cannot overflow exp.
    return np.exp(-np.logaddexp(0, -z))


def _sigmoid_derivative(z, a):
    return a * (1 - a)


def _tanh(z):
    return np.tanh(z)


def _tanh_derivative(z, a):
    return 1 - a**2


ACTIVATIONS = {
    "relu": (_relu, _relu_derivative),
    "sigmoid": (_sigmoid, _sigmoid_derivative),
    "tanh": (_tanh, _tanh_derivative),
}


# --- Forward pass ------------------------------------------------------------


def forward(X, layers, activation="relu"):
    """Run a batch through the network, keeping what the backward pass needs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    layers : list of (W, b)
        ``W`` of shape (n_out, n_in), ``b`` of shape (n_out,).
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
        Non-linearity after every layer but the last.

    Returns
    -------
    output : ndarray of shape (n_samples, n_outputs)
        The last layer's ``z`` (logits for a classifier).
    cache : list of (a_in, z)
        For each layer, its input ``a_in`` and its pre-activation ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import forward
    >>> layers = [(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 3)), np.array([0.5]))]
    >>> output, cache = forward(np.array([[1.0, -2.0]]), layers)
    >>> output  # relu(1 - 2) = 0 in every hidden unit, so only the bias is left
    array([[0.5]])
    """
    f, _ = ACTIVATIONS[activation]
    a = X
    cache = []
    last = len(layers) - 1
    for i, (W, b) in enumerate(layers):
        z = a @ W.T + b
        cache.append((a, z))
        a = z if i == last else f(z)
    return a, cache


# --- Losses and the gradient of their input ----------------------------------


def log_softmax(logits):
    """``log(softmax(logits))`` row by row, without overflow.

    Softmax does not change when a constant is subtracted from a row, so the
    row's maximum is subtracted first and ``exp`` never sees a large number.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import log_softmax
    >>> np.exp(log_softmax(np.array([[1000.0, 1000.0]])))
    array([[0.5, 0.5]])
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, Y):
    """Mean cross-entropy of ``softmax(logits)`` against one-hot targets, and its gradient.

    With ``p = softmax(z)`` for one sample, ``L = -sum_k y_k log p_k`` and
    ``dL/dz = p - y`` (see docs/backpropagation.md for the derivation). The
    loss of a batch is the mean over its ``n`` samples, so the gradient of
    the logits is ``(p - y) / n``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    Y : ndarray of shape (n_samples, n_classes)
        One-hot targets.

    Returns
    -------
    loss : float
    d_logits : ndarray of shape (n_samples, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import softmax_cross_entropy
    >>> loss, grad = softmax_cross_entropy(np.zeros((1, 2)), np.array([[1.0, 0.0]]))
    >>> round(loss, 4), grad
    (0.6931, array([[-0.5,  0.5]]))
    """
    n = len(logits)
    log_p = log_softmax(logits)
    loss = -(Y * log_p).sum() / n
    return float(loss), (np.exp(log_p) - Y) / n


def squared_error(output, Y):
    """Mean squared error over samples and outputs (torch's ``MSELoss``), and its gradient.

    ``L = mean((output - Y) ** 2)`` over all ``n * k`` entries, so
    ``dL/d(output) = 2 (output - Y) / (n * k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import squared_error
    >>> squared_error(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
    (5.0, array([[1.],
           [3.]]))
    """
    residual = output - Y
    return float((residual**2).mean()), 2 * residual / residual.size


LOSSES = {"cross_entropy": softmax_cross_entropy, "squared_error": squared_error}


# --- Backward pass (backpropagation) -----------------------------------------


def backward(d_output, layers, cache, activation="relu"):
    """Gradients of the loss with respect to every ``W`` and ``b``, from the last layer back.

    ``delta`` is ``dL/dz`` of the current layer. For a layer computing
    ``z = a_in @ W.T + b``: ``dL/dW = delta.T @ a_in`` and
    ``dL/db = sum of delta over the batch``. The previous layer's ``delta``
    follows by the chain rule through ``W`` and the activation:
    ``(delta @ W) * f'(z_previous)``.

    Parameters
    ----------
    d_output : ndarray of shape (n_samples, n_outputs)
        Gradient of the loss with respect to the network's output.
    layers : list of (W, b)
    cache : list of (a_in, z)
        As returned by :func:`forward`.
    activation : {"relu", "sigmoid", "tanh"}, default="relu"

    Returns
    -------
    gradients : list of (dW, db)
        Same shapes as ``layers``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import backward, forward
    >>> layers = [(np.array([[2.0]]), np.array([0.0]))]
    >>> output, cache = forward(np.array([[3.0]]), layers)
    >>> backward(np.ones_like(output), layers, cache)  # z = 2 x: dz/dW = x = 3
    [(array([[3.]]), array([1.]))]
    """
    _, derivative = ACTIVATIONS[activation]
    gradients = [None] * len(layers)
    delta = d_output
    for i in reversed(range(len(layers))):
        W, _ = layers[i]
        a_in, _ = cache[i]
        gradients[i] = (delta.T @ a_in, delta.sum(axis=0))
        if i > 0:
            z_previous = cache[i - 1][1]
            delta = (delta @ W) * derivative(z_previous, a_in)  # a_in = f(z_previous)
    return gradients


# --- L2 penalty --------------------------------------------------------------


def l2_penalty(layers, l2):
    """``l2 / 2 * sum(W ** 2)`` over the weight matrices; biases are not penalised.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import l2_penalty
    >>> l2_penalty([(np.array([[1.0, 2.0]]), np.array([9.0]))], l2=0.1)
    0.25
    """
    return float(l2 / 2 * sum((W**2).sum() for W, _ in layers))


def loss_and_gradients(X, Y, layers, activation="relu", l2=0.0, loss="cross_entropy"):
    """One forward and backward pass: the data loss and the training gradients.

    The training objective is ``data_loss + l2_penalty(layers, l2)``; its
    gradient adds ``l2 * W`` to each ``dW`` (biases unchanged). As in torch,
    where the penalty is the optimizer's ``weight_decay``, the loss returned
    (and recorded in ``history_["train_loss"]``) is the data loss alone.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
        One-hot classes for "cross_entropy", targets for "squared_error".
    layers : list of (W, b)
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
    l2 : float, default=0.0
    loss : {"cross_entropy", "squared_error"}, default="cross_entropy"

    Returns
    -------
    data_loss : float
        Mean loss over the batch, without the penalty.
    gradients : list of (dW, db)
        Gradient of ``data_loss + l2_penalty(layers, l2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.reference import loss_and_gradients
    >>> layers = [(np.zeros((2, 3)), np.zeros(2))]
    >>> loss, grads = loss_and_gradients(np.ones((4, 3)), np.eye(2)[[0, 1, 0, 1]], layers)
    >>> round(loss, 4)  # log(2): two equally likely classes
    0.6931
    """
    output, cache = forward(X, layers, activation)
    data_loss, d_output = LOSSES[loss](output, Y)
    gradients = backward(d_output, layers, cache, activation)
    if l2:
        gradients = [(dW + l2 * W, db) for (dW, db), (W, _) in zip(gradients, layers)]
    return data_loss, gradients
