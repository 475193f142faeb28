"""Torch network builders: the feed-forward stacks every estimator trains."""

import torch
from torch import nn


def dropout_mask(shape, keep, generator=None, device=None, dtype=None):
    """A dropout mask: ``1 / keep`` with probability ``keep``, else 0.

    The mask ``nn.Dropout`` multiplies by, drawn as ``uniform(0, 1) < keep``
    instead of with ``bernoulli_``: on a CPU torch's ``bernoulli_`` starts a
    new random stream for every call, which took 525-640 µs for a
    100 x 512 mask against 220-275 µs for this. ``generator`` is where the
    uniform numbers come from (the device's default generator if None);
    ``device`` and ``dtype`` are the mask's (float32 on the CPU by default).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.modules import dropout_mask
    >>> mask = dropout_mask((1000, 100), 0.8, torch.Generator().manual_seed(0))
    >>> sorted(mask.unique().tolist())
    [0.0, 1.25]
    >>> round(float((mask > 0).float().mean()), 2)
    0.8
    """
    return torch.rand(shape, generator=generator, device=device, dtype=dtype).lt_(keep).div_(keep)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from :func:`dropout_mask`.

    The same rule — in training, each element is zeroed with probability
    ``p`` and the others scaled by ``1 / (1 - p)``; in evaluation, the
    identity — with the masks drawn faster on a CPU. The fused training
    step draws the same masks from the same generator, so the two agree.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.modules import Dropout
    >>> layer = Dropout(0.5).eval()
    >>> bool((layer(torch.ones(3)) == 1).all())
    True
    """

    def forward(self, input):
        if not self.training or self.p == 0:
            return input
        if self.p == 1:
            return input * 0
        return input * dropout_mask(input.shape, 1 - self.p, device=input.device,
                                    dtype=input.dtype)


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
    >>> from sknets._engine.modules import dense_stack
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
            layers.append(Dropout(dropout))
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
    >>> from sknets._engine.modules import MLP
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


class TabularNetwork(nn.Module):
    """An MLP fed with numeric inputs and learned embeddings of categorical codes.

    The input is one float32 matrix: ``n_dense`` columns the MLP reads as
    they are, then one column per embedded categorical column holding its
    integer codes (as floats). Each code column goes through its own
    ``nn.Embedding``; the embeddings are concatenated after the dense
    columns and fed to ``mlp``. Used only when a table has embedded
    columns: otherwise the network is the plain :class:`MLP`.

    Parameters
    ----------
    mlp : torch.nn.Module
        The network on ``n_dense + sum(widths)`` inputs.
    n_dense : int
    embeddings : list of (int, int)
        ``(rows, width)`` of each embedding, in the order of the code columns.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.modules import MLP, TabularNetwork
    >>> net = TabularNetwork(MLP(3 + 4, (8,), 2), n_dense=3, embeddings=[(12, 4)])
    >>> net(torch.tensor([[0.5, 1.0, -1.0, 11.0]])).shape
    torch.Size([1, 2])
    """

    def __init__(self, mlp, n_dense, embeddings):
        super().__init__()
        self.n_dense = n_dense
        self.embeddings = nn.ModuleList(nn.Embedding(rows, width) for rows, width in embeddings)
        self.mlp = mlp

    def forward(self, x):
        codes = x[:, self.n_dense:].long()
        parts = [x[:, :self.n_dense]]
        parts += [embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))


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


NOISE_TYPES = ("gaussian", "masking")


class InputNoise(nn.Module):
    """Corruption of the input in training mode; the identity in eval mode.

    The corruption of a denoising autoencoder (Vincent et al., 2008): the
    network sees a corrupted input and learns to reconstruct the clean one.

    Parameters
    ----------
    noise_type : {"gaussian", "masking"}
        "gaussian" adds ``level * N(0, 1)`` to every value; "masking" sets
        each value to 0 with probability ``level`` (no rescaling, unlike
        dropout: the network must fill the gaps, not see a scaled input).
    level : float
        Standard deviation ("gaussian") or masking probability in [0, 1).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.modules import InputNoise
    >>> noise = InputNoise("masking", 0.5)
    >>> x = torch.ones(1000, 10)
    >>> 0.4 < (noise(x) == 0).float().mean().item() < 0.6
    True
    >>> bool((noise.eval()(x) == x).all())
    True
    """

    def __init__(self, noise_type, level):
        super().__init__()
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"noise_type must be one of {NOISE_TYPES}; got {noise_type!r}.")
        self.noise_type, self.level = noise_type, float(level)

    def forward(self, x):
        if not self.training or self.level == 0:
            return x
        if self.noise_type == "gaussian":
            return x + self.level * torch.randn_like(x)
        return x * (torch.rand_like(x) >= self.level).to(x.dtype)

    def extra_repr(self):
        return f"noise_type={self.noise_type!r}, level={self.level}"


class Autoencoder(nn.Module):
    """A feed-forward autoencoder: ``decoder(encoder(noise(x)))``.

    The encoder is ``dense_stack([n_features, *hidden_layers])`` followed by
    the code layer, ``dense_stack([hidden_layers[-1], code_size])`` with
    ``code_activation`` (linear by default: a ReLU code layer leaves units
    dead at 0 and reconstructs worse, see docs/autoencoder.md). The decoder
    mirrors the encoder: an :class:`MLP` from the code through
    ``reversed(hidden_layers)`` to a linear layer of ``n_features`` units
    followed by ``output_activation``. Dropout and batch normalisation apply
    to every hidden layer and to the code layer.

    Parameters
    ----------
    n_features : int
        Width of the input and of the reconstruction.
    hidden_layers : tuple of int
        Encoder widths before the code; the decoder uses them reversed.
    code_size : int
        Width of the code layer.
    activation : str, default="relu"
        Key of ``ACTIVATIONS`` for the hidden layers.
    code_activation : str, default="identity"
        Key of ``ACTIVATIONS`` for the code layer.
    output_activation : str, default="identity"
        Key of ``ACTIVATIONS`` applied to the reconstruction.
    dropout, batch_norm
        As in :func:`dense_stack`.
    noise_type : str, default="gaussian"
    noise : float, default=0.0
        Input corruption in training mode, see :class:`InputNoise`.
    logits : bool, default=False
        If True, ``forward`` stops before the decoder's last layer (its
        output activation): the sigmoid's input, for a numerically stable
        ``BCEWithLogitsLoss``. ``decoder(encoder(x))`` still reconstructs.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.modules import Autoencoder
    >>> ae = Autoencoder(784, (128,), 32, output_activation="sigmoid")
    >>> [m.out_features for m in ae.encoder if isinstance(m, torch.nn.Linear)]
    [128, 32]
    >>> [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)]
    [128, 784]
    >>> ae(torch.zeros(2, 784)).shape
    torch.Size([2, 784])
    """

    def __init__(self, n_features, hidden_layers, code_size, activation="relu",
                 code_activation="identity", output_activation="identity", dropout=0.0,
                 batch_norm=False, noise_type="gaussian", noise=0.0, logits=False):
        super().__init__()
        if logits and output_activation in (None, "identity"):
            raise ValueError("logits=True needs an output activation to leave out.")
        widths = [n_features, *hidden_layers]
        self.noise = InputNoise(noise_type, noise)
        self.encoder = nn.Sequential(
            *dense_stack(widths, activation, dropout, batch_norm),
            *dense_stack([widths[-1], code_size], code_activation, dropout, batch_norm))
        # The encoder keeps torch's default initialisation: Glorot there gave
        # worse reconstructions than PCA on tests/test_autoencoder.py's curved
        # data at the same budget; the decoder is an MLP (Glorot).
        self.decoder = MLP(code_size, tuple(reversed(hidden_layers)), n_features, activation,
                           dropout, batch_norm, output_activation)
        self.logits = logits

    def forward(self, x):
        out = self.encoder(self.noise(x))
        layers = list(self.decoder)
        for layer in layers[:-1] if self.logits else layers:
            out = layer(out)
        return out


def linear_layers(module):
    """The ``nn.Linear`` layers of ``module`` in order of definition."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def weight_parameters(module):
    """Weight matrices of the linear layers: what ``l1``/``l2`` penalise."""
    return [layer.weight for layer in linear_layers(module)]


def l1_penalty(module):
    """Sum of absolute values of all linear weights (biases excluded)."""
    return sum(w.abs().sum() for w in weight_parameters(module))


class Penalty:
    """``l1 * sum|W| + l2 / 2 * sum W^2`` over the linear layers' weights (picklable).

    Added to the training loss; its gradient, ``l1 * sign(W) + l2 * W``, is
    what :meth:`grad_` adds to the weights' gradients where the loss's
    gradient is derived by hand (the fused step).

    Examples
    --------
    >>> from torch import nn
    >>> from sknets._engine.modules import Penalty
    >>> layer = nn.Linear(2, 1)
    >>> _ = nn.init.constant_(layer.weight, -2.0)
    >>> float(Penalty(l1=0.5, l2=0.0)(layer).detach())
    2.0
    """

    def __init__(self, l1, l2):
        self.l1, self.l2 = l1, l2

    def __call__(self, module):
        total = 0.0
        if self.l1:
            total = total + self.l1 * l1_penalty(module)
        if self.l2:
            total = total + self.l2 / 2 * sum((w ** 2).sum() for w in weight_parameters(module))
        return total

    def grad_(self, weight, grad):
        """Add the penalty's gradient with respect to ``weight`` to ``grad``, in place."""
        if self.l1:
            grad.add_(torch.sign(weight), alpha=self.l1)
        if self.l2:
            grad.add_(weight, alpha=self.l2)
        return grad


__all__ = [
    "ACTIVATIONS", "MLP", "NOISE_TYPES", "Autoencoder", "Dropout", "InputNoise", "Penalty",
    "TabularNetwork", "dense_stack", "dropout_mask",
    "glorot_init_", "l1_penalty", "linear_layers", "weight_parameters",
]
