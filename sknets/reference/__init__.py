"""A multi-layer perceptron written out in plain NumPy: the oracle for the torch path.

Everything the torch estimators leave to PyTorch (the forward pass,
backpropagation, the optimizers, the learning-rate schedules, early stopping)
is written out here with NumPy arrays, one small function per idea, in the
order ``docs/backpropagation.md`` explains them:

* :mod:`sknets.reference.backprop`: activations, forward pass, losses and
  their gradients, backward pass, L2 penalty;
* :mod:`sknets.reference.training`: optimizers, schedules, mini-batches,
  stopping, starting weights;
* :mod:`sknets.reference.estimators`: ``NumpyMLPClassifier`` and
  ``NumpyMLPRegressor``, the training loop behind the scikit-learn API.

None of it shares code with torch or with the torch estimators: it imports
only sknets' parameter constraints, input rules and ``model_selection``, and
torch only to read the weights out of a torch module passed as
``init_weights``. That makes it an independent second implementation, and
``tests/test_reference.py`` checks that both train to the same losses from the
same starting weights.
"""

from .backprop import (
    backward,
    forward,
    l2_penalty,
    log_softmax,
    loss_and_gradients,
    softmax_cross_entropy,
    squared_error,
)
from .estimators import NumpyMLPClassifier, NumpyMLPRegressor
from .training import (
    Adam,
    GradientDescent,
    Momentum,
    Patience,
    glorot_init,
    learning_rate,
    make_optimizer,
    minibatches,
)

__all__ = [
    "Adam", "GradientDescent", "Momentum", "NumpyMLPClassifier", "NumpyMLPRegressor",
    "Patience", "backward", "forward", "glorot_init", "l2_penalty", "learning_rate",
    "log_softmax", "loss_and_gradients", "make_optimizer", "minibatches",
    "softmax_cross_entropy", "squared_error",
]
