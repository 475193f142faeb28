"""Study ``optimizers``: vanilla SGD, momentum, RMSprop, Adagrad and Adam."""

from ..mlp import MLPClassifier
from .registry import register
from .steps import fit_all, report_classifiers

# Learning rates at which each optimizer is usually run on MNIST-sized MLPs.
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "rmsprop": 1e-3, "adagrad": 1e-2, "adam": 1e-3}


@register("optimizers", "Optimizers",
          small=dict(hidden_layers=(100,), batch_size=64, max_epochs=30),
          full=dict(hidden_layers=(100,), batch_size=100, max_epochs=20))
def run(study, data, settings, report):
    """Vanilla mini-batch gradient descent against momentum (0.9), RMSprop,
    Adagrad and Adam on the same network with the same initial weights, each at
    its customary learning rate (``--lr`` sets one rate for all)."""
    models = {
        f"{name} (lr={settings.lr or lr:g})": MLPClassifier(
            **study.params(data, settings, optimizer=name, lr=lr))
        for name, lr in LEARNING_RATES.items()
    }
    runs = fit_all(models, data, settings, "optimizers")
    report_classifiers(report, runs, data,
                       "All optimizers start from the same weights and see the same "
                       "batches in the same order.", normalize=settings.normalize)
