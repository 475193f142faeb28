"""Study ``regularizers``: dropout, batch norm, L1 and L2 on a five-layer network."""

import matplotlib.pyplot as plt

from ..inspection import plot_history
from ..mlp import MLPClassifier
from .registry import register
from .steps import fit_all, report_classifiers

DEEP = (64, 64, 128, 64, 64)


@register("regularizers", "Regularizers on a deep network",
          small=dict(hidden_layers=DEEP, lr=2e-3, batch_size=64, max_epochs=40),
          full=dict(hidden_layers=DEEP, lr=1e-3, batch_size=128, max_epochs=40))
def run(study, data, settings, report):
    """The five-hidden-layer ReLU network 64-64-128-64-64 without regularization,
    with dropout (0.33), with batch normalization, with both, and with L1 + L2 +
    dropout + batch normalization: how the gap between training and validation
    loss changes."""
    variants = {
        "none": {},
        "dropout": {"dropout": 0.33},
        "batch norm": {"batch_norm": True},
        "dropout + batch norm": {"dropout": 0.33, "batch_norm": True},
        "L1 + L2 + dropout + batch norm": {"l1": 1e-5, "l2": 1e-4, "dropout": 0.33,
                                           "batch_norm": True},
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    runs = fit_all(models, data, settings, "regularizers")
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6),
                             sharey=True, layout="constrained")
    for axis, (name, model_runs) in zip(axes, runs.items()):
        plot_history({name: model_runs}, "loss", ax=axis)
        axis.set_yscale("log")
        axis.set_title(name)
    report.section("Generalization gap", "Training against validation loss, model by model.")
    report.figure("loss_by_model", fig,
                  "Loss on a log scale; a star marks the epoch of lowest validation loss, "
                  "whose weights were kept.")
    report_classifiers(report, runs, data, "The five networks overlaid.",
                       normalize=settings.normalize)
