"""Torch network builders: the feed-forward stacks every estimator trains."""

from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def dense_stack(widths, activation="relu", dropout=0.0, batch_norm=False):
    """Hidden layers ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``.

    Parameters
    ----------
    widths : sequence of int
        Input width followed by the width of each hidden layer.
    activation : str, default="relu"
        Key of ``ACTIVATIONS``.
    dropout : float, default=0.0
        Dropout rate after each hidden layer (no layer when 0).
    batch_norm : bool, default=False
        Whether to normalise each hidden layer's pre-activations.

    Returns
    -------
    layers : list of torch.nn.Module

    Examples
    --------
    >>> from sknets.modules import dense_stack
    >>> [type(m).__name__ for m in dense_stack([4, 8], dropout=0.5)]
    ['Linear', 'ReLU', 'Dropout']
    """
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers.append(nn.Linear(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLP(nn.Sequential):
    """A multi-layer perceptron: hidden layers then one linear output layer.

    The output layer has no activation: classifiers train on logits
    (softmax lives in the loss), regressors predict the linear output.

    Parameters
    ----------
    n_features : int
        Width of the input.
    hidden_layers : tuple of int
        Width of each hidden layer; ``()`` gives a linear model.
    n_outputs : int
        Width of the output layer.
    activation, dropout, batch_norm
        As in :func:`dense_stack`.
    output_activation : str or None, default=None
        Activation after the output layer (used by autoencoder decoders).

    Weights start Glorot-uniform and biases at zero (see :func:`glorot_init_`).

    Examples
    --------
    >>> import torch
    >>> from sknets.modules import MLP
    >>> net = MLP(784, (100,), 10)
    >>> net(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
    >>> sum(p.numel() for p in net.parameters())
    79510
    """

    def __init__(self, n_features, hidden_layers, n_outputs, activation="relu",
                 dropout=0.0, batch_norm=False, output_activation=None):
        widths = [n_features, *hidden_layers]
        layers = dense_stack(widths, activation, dropout, batch_norm)
        layers.append(nn.Linear(widths[-1], n_outputs))
        if output_activation not in (None, "identity"):
            layers.append(ACTIVATIONS[output_activation]())
        super().__init__(*layers)
        glorot_init_(self)


def glorot_init_(module):
    """Glorot-uniform weights and zero biases for every linear layer, in place.

    The initialisation of Keras and scikit-learn's MLP. Torch's default
    (uniform with bound ``1/sqrt(fan_in)``) starts smaller and trains
    measurably slower on MNIST-like data.
    """
    for layer in linear_layers(module):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return module


def linear_layers(module):
    """The ``nn.Linear`` layers of ``module`` in order of definition."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def weight_parameters(module):
    """Weight matrices of the linear layers: what ``l1``/``l2`` penalise."""
    return [layer.weight for layer in linear_layers(module)]


def l1_penalty(module):
    """Sum of absolute values of all linear weights (biases excluded)."""
    return sum(w.abs().sum() for w in weight_parameters(module))


__all__ = [
    "ACTIVATIONS", "MLP", "dense_stack", "glorot_init_", "l1_penalty", "linear_layers", "weight_parameters",
]
