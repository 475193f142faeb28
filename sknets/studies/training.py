"""Study ``training``: learning-rate schedules, Adam, L2, early stopping, and over-fitting."""

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import balanced_accuracy_score
from tqdm.auto import tqdm

from ..mlp import MLPClassifier
from .registry import register
from .steps import fit_all, report_classifiers, score_table


@register("training", "Training improvements and over-fitting",
          small=dict(hidden_layers=(100, 80), batch_size=64, max_epochs=40),
          full=dict(hidden_layers=(100, 80), batch_size=128, max_epochs=25))
def run(study, data, settings, report):
    """The two-layer network 100-80 trained with mini-batch SGD (learning rate
    0.1), then with a linear (with saturation) and an exponential learning-rate
    schedule, with Adam, Adam + L2, and Adam + L2 + early stopping; then a
    deliberately over-fitted wide network (one layer of 5,000 units, no
    regularization) trained for twice as many epochs, one at a time, while its
    training and validation accuracy are recorded. Test accuracy and balanced
    accuracy are reported."""
    epochs = study.params(data, settings)["max_epochs"]
    variants = {
        "SGD": dict(optimizer="sgd", lr=0.1),
        "SGD + linear schedule": dict(optimizer="sgd", lr=0.1, lr_schedule="linear",
                                      lr_decay=0.1 / epochs, lr_min=0.01),
        "SGD + exponential schedule": dict(optimizer="sgd", lr=0.1,
                                           lr_schedule="exponential",
                                           lr_decay=4 / epochs, lr_min=1e-3),
        "Adam": dict(optimizer="adam", lr=1e-3),
        "Adam + L2": dict(optimizer="adam", lr=1e-3, l2=1e-4),
        "Adam + L2 + early stopping": dict(optimizer="adam", lr=1e-3, l2=1e-4,
                                           early_stopping=True, patience=5),
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, params in variants.items()}
    runs = fit_all(models, data, settings, "training")
    fig, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for name, model_runs in runs.items():
        axis.plot(model_runs[0].history_["epoch"], model_runs[0].history_["lr"], label=name)
    axis.set(xlabel="epoch", ylabel="learning rate", yscale="log")
    axis.legend(fontsize=7)
    report.section("Learning rates", "The learning rate of every epoch, as each schedule set it.")
    report.figure("learning_rates", fig, "Learning rate by epoch.")
    report_classifiers(report, runs, data,
                       "Training and validation loss, and validation accuracy; in each run "
                       "every network starts from the same weights.",
                       table=score_table(runs, data, balanced_accuracy=True),
                       normalize=settings.normalize)
    # Twice the epochs: memorising the training set takes longer than converging.
    _report_overfit(study, data, settings, report, 2 * epochs)


def _report_overfit(study, data, settings, report, epochs):
    """Train the [5000] network one epoch at a time, recording both accuracies."""
    # No patience: the point is to watch it over-fit, so the last epoch's weights are kept.
    model = MLPClassifier(**study.params(data, settings, hidden_layers=(5000,),
                                         optimizer="adam", lr=1e-3, patience=None))
    rows = []
    for epoch in tqdm(range(1, epochs + 1), desc="over-fitted [5000]", unit="epoch",
                      disable=not settings.progress):
        model.partial_fit(data.X_train, data.y_train, classes=data.labels)
        rows.append({"epoch": epoch, "train_loss": float(model.history_["train_loss"].iloc[-1]),
                     "train_accuracy": model.score(data.X_train, data.y_train),
                     "valid_accuracy": model.score(data.X_val, data.y_val)})
    curves = pd.DataFrame(rows).set_index("epoch")
    fig, axis = plt.subplots(figsize=(6, 3.8), layout="constrained")
    axis.plot(curves.index, curves["train_accuracy"], label="training")
    axis.plot(curves.index, curves["valid_accuracy"], "--", label="validation")
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy")
    axis.legend()
    report.section("Over-fitting", "One hidden layer of 5,000 ReLU units, Adam, no "
                                   "regularization and no early stopping: the last epoch's "
                                   "weights are kept.")
    report.figure("overfit", fig, "Accuracy on the training and validation sets by epoch.")
    report.table("overfit_curves", curves)
    final = {"train_accuracy": curves["train_accuracy"].iloc[-1],
             "valid_accuracy": curves["valid_accuracy"].iloc[-1],
             "best_valid_accuracy": curves["valid_accuracy"].max(),
             "test_accuracy": model.score(data.X_test, data.y_test),
             "test_balanced_accuracy": balanced_accuracy_score(data.y_test,
                                                               model.predict(data.X_test))}
    report.table("overfit_results", pd.DataFrame([final], index=pd.Index(["[5000]"],
                                                                         name="model")))
