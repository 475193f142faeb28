"""Study ``architectures``: one or two hidden layers, L2, dropout."""

from ..mlp import MLPClassifier
from .registry import register
from .steps import fit_all, report_classifiers


@register("architectures", "MLP architectures and regularization",
          small=dict(hidden_layers=(100,), lr=3e-3, batch_size=64, max_epochs=30),
          full=dict(hidden_layers=(100,), lr=2e-4, batch_size=100, max_epochs=20))
def run(study, data, settings, report):
    """One hidden layer of 100 ReLU units, two hidden layers, one layer with an
    L2 penalty and one layer with dropout, trained with Adam; the weights of the
    best validation epoch are kept and compared on the test set."""
    variants = {
        "1 layer": {},
        "2 layers": {"hidden_layers": (100, 100)},
        "1 layer + L2": {"l2": 1e-3},
        "1 layer + dropout": {"dropout": 0.2},
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    runs = fit_all(models, data, settings, "architectures")
    report_classifiers(report, runs, data,
                       "Training and validation loss, and validation accuracy, of the "
                       "four networks.", normalize=settings.normalize)
