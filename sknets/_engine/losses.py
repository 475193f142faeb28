"""The training losses of the supervised networks, as torch criteria.

Each criterion follows torch's conventions: it is called as
``criterion(outputs, targets)``, averages with ``reduction="mean"`` and gives
one value per element with ``reduction="none"`` (what the engine's weighted
path asks for, to average per sample before weighting). The fused training
step (``fused.py``) recognises each of them and derives the same gradients by
hand.

* :class:`ClassificationLoss`: a classifier's cross-entropy, softmax over the
  classes for class indices, one sigmoid per label for 0/1 indicator
  matrices (multi-label), with optional label smoothing;
* :func:`regression_loss`: the regressor's loss by its scikit-learn name
  (:data:`REGRESSION_LOSSES`).
"""

from torch import nn
from torch.nn import functional as F


def smooth_labels(target, label_smoothing):
    """0/1 targets moved towards 0.5: ``target * (1 - s) + s / 2``.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.losses import smooth_labels
    >>> smooth_labels(torch.tensor([0.0, 1.0]), 0.2)
    tensor([0.1000, 0.9000])
    """
    if not label_smoothing:
        return target
    return target * (1 - label_smoothing) + label_smoothing / 2


class ClassificationLoss(nn.Module):
    """Cross-entropy of a classifier's logits, for one label per sample or several.

    The targets say which: class indices (a 1-D int64 tensor) train a
    softmax over the classes (``torch.nn.functional.cross_entropy``); a 0/1
    indicator matrix (a 2-D float tensor, one column per label) trains one
    sigmoid per label with the binary cross-entropy
    (``binary_cross_entropy_with_logits``), averaged over samples and labels.

    Parameters
    ----------
    label_smoothing : float in [0, 1), default=0.0
        With class indices, torch's ``label_smoothing``: the target puts
        ``1 - label_smoothing`` on its class and spreads ``label_smoothing``
        evenly over all classes. With indicator matrices, each 0/1 target
        becomes ``target * (1 - label_smoothing) + label_smoothing / 2``.

    Attributes
    ----------
    reduction : {"mean", "none"}
        "none" gives one loss per sample (class indices) or per sample and
        label (indicator matrices).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.losses import ClassificationLoss
    >>> logits = torch.zeros(2, 3)
    >>> round(ClassificationLoss()(logits, torch.tensor([0, 2])).item(), 4)  # log(3)
    1.0986
    >>> round(ClassificationLoss()(logits, torch.tensor([[0.0, 1, 1], [1, 0, 0]])).item(), 4)
    0.6931
    """

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.reduction = "mean"

    def forward(self, logits, target):
        if target.dim() == 1:
            return F.cross_entropy(logits, target, reduction=self.reduction,
                                   label_smoothing=self.label_smoothing)
        return F.binary_cross_entropy_with_logits(
            logits, smooth_labels(target.to(logits.dtype), self.label_smoothing),
            reduction=self.reduction)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}"


def _poisson_loss():
    # exp(output) - target * output: the Poisson deviance up to terms free of
    # the output, with the output as log(mean).
    return nn.PoissonNLLLoss(log_input=True, full=False)


# The regressor's losses by their scikit-learn names: name -> factory(huber_delta).
REGRESSION_LOSSES = {
    "squared_error": lambda delta: nn.MSELoss(),
    "absolute_error": lambda delta: nn.L1Loss(),
    "huber": lambda delta: nn.HuberLoss(delta=float(delta)),
    "poisson": lambda delta: _poisson_loss(),
}


def regression_loss(name, huber_delta=1.0):
    """The torch criterion of the regression loss ``name`` (a key of :data:`REGRESSION_LOSSES`).

    With "poisson" the network's output is the logarithm of the mean.

    Examples
    --------
    >>> from sknets._engine.losses import regression_loss
    >>> regression_loss("huber", huber_delta=2.0)
    HuberLoss()
    >>> regression_loss("huber", huber_delta=2.0).delta
    2.0
    """
    return REGRESSION_LOSSES[name](huber_delta)


def log_link(name):
    """Whether the regression loss ``name`` trains the output as the log of the mean."""
    return name == "poisson"


__all__ = ["REGRESSION_LOSSES", "ClassificationLoss", "log_link", "regression_loss",
           "smooth_labels"]

