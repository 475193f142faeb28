"""Steps the studies share: fit with a progress bar, and report what classifiers learned."""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import is_classifier
from sklearn.decomposition import PCA
from sklearn.metrics import ConfusionMatrixDisplay, balanced_accuracy_score
from tqdm.auto import tqdm

from ..inspection import compare, plot_history, summary


def fit_all(models, data, settings, desc, training_sets=None):
    """Fit every model, monitored on the validation set, with one progress bar.

    Classifiers are fitted on ``(data.X_train, data.y_train)``, other
    estimators (autoencoders) on ``data.X_train`` alone.

    Parameters
    ----------
    models : dict of str -> estimator
    data : StudyData
    settings : StudySettings
        ``settings.progress`` shows the bar.
    desc : str
        Label of the progress bar.
    training_sets : dict of str -> (X, y), default=None
        Training sets of the models that do not train on all of
        ``data.X_train``.

    Returns
    -------
    dict
        ``models``, fitted.

    Examples
    --------
    >>> from sknets import MLPClassifier
    >>> from sknets.studies import StudySettings, load_study_data
    >>> from sknets.studies.steps import fit_all
    >>> data = load_study_data(n_train=200)
    >>> models = fit_all({"tiny": MLPClassifier(hidden_layers=(8,), max_epochs=1)}, data,
    ...                  StudySettings(progress=False), "demo")
    >>> models["tiny"].n_epochs_
    1
    """
    training_sets = training_sets or {}
    bar = tqdm(models.items(), desc=desc, unit="model", disable=not settings.progress)
    for name, model in bar:
        bar.set_postfix_str(name)
        X, y = training_sets.get(name, (data.X_train, data.y_train))
        if is_classifier(model):
            model.fit(X, y, validation_data=(data.X_val, data.y_val))
        else:
            model.fit(X, validation_data=data.X_val)
    bar.close()
    return models


def score_table(models, data, balanced_accuracy=False):
    """The models' test scores (:func:`sknets.compare`), one row per model.

    ``balanced_accuracy`` adds ``test_balanced_accuracy``, the metric for
    imbalanced classes such as Kuzushiji-49's.
    """
    table = compare(models, data.X_test, data.y_test)
    if balanced_accuracy:
        table["test_balanced_accuracy"] = [
            balanced_accuracy_score(data.y_test, model.predict(data.X_test))
            for model in models.values()]
    return table


def report_classifiers(report, models, data, curves_caption, table=None):
    """Add the classifiers' curves, test table, confusion matrices, summaries and parameters.

    Also records their histories (:meth:`~sknets.studies.report.Report.histories`).

    Parameters
    ----------
    report : Report
    models : dict of str -> fitted classifier
    data : StudyData
    curves_caption : str
        Paragraph under the "Training curves" heading.
    table : DataFrame, default=None
        The test table, when the study adds columns to :func:`score_table`'s.
    """
    report.section("Training curves", curves_caption)
    axes = plot_history(models, metrics=("loss", "accuracy"))
    axes[0].set_yscale("log")  # the late epochs, where models differ, stay visible
    axes[0].set_title("loss (cross-entropy, log scale) by epoch")
    axes[1].set_title("validation accuracy by epoch")
    report.figure("curves", axes[0].figure,
                  "Solid: training, dashed: validation; a star marks the epoch whose "
                  "weights each model kept (lowest validation loss).")
    report_test_results(report, table if table is not None else score_table(models, data), data)
    report.histories(models)
    report_confusion_matrices(report, models, data)
    report_models(report, models)


def report_test_results(report, table, data):
    """Add the test table under its own heading."""
    report.section("Test results",
                   f"Each model with the weights of its best validation epoch, scored on "
                   f"the {len(data.X_test):,} test samples.")
    report.table("test_results", table)


def report_confusion_matrices(report, models, data):
    """Add one confusion matrix on the test set per model, in a grid."""
    n = len(models)
    columns = min(n, 3 if n > 4 else 2)
    rows = -(-n // columns)
    size = 4.2 if len(data.labels) <= 10 else 6.0
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows),
                             squeeze=False, layout="constrained")
    for axis, (name, model) in zip(axes.flat, models.items()):
        ConfusionMatrixDisplay.from_estimator(
            model, data.X_test, data.y_test, labels=data.labels, ax=axis, colorbar=False,
            include_values=len(data.labels) <= 10, cmap="Blues",
            text_kw={"fontsize": 7})
        axis.set_title(name)
    for axis in axes.flat[n:]:
        axis.remove()
    report.figure("confusion_matrices", fig,
                  "Confusion matrices on the test set (rows: true class, columns: predicted).")


def report_models(report, models):
    """Add each model's summary, then all their parameters."""
    report.section("Models", "Keras-style summaries (batch-norm running statistics count "
                             "as non-trainable parameters).")
    for name, model in models.items():
        report.code(name, summary(model).to_text())
    report.parameters(models)


def fit_and_report(model, data, report):
    """Fit one classifier on a study's data and add its curves, test scores,
    confusion matrix, summary and parameters to ``report``.

    ``sknets train`` runs this.

    Parameters
    ----------
    model : MLPClassifier
    data : StudyData
    report : sknets.studies.report.Report

    Returns
    -------
    report : sknets.studies.report.Report

    Examples
    --------
    Training takes seconds, so this is not run here:

    >>> from sknets import MLPClassifier
    >>> from sknets.studies.report import Report
    >>> from sknets.studies import fit_and_report, load_study_data
    >>> report = fit_and_report(MLPClassifier(max_epochs=3), load_study_data(),
    ...                         Report("x"))  # doctest: +SKIP
    >>> list(report.tables)  # doctest: +SKIP
    ['data', 'test_results', 'parameters']
    """
    report.describe_data(data.describe())
    models = {"model": model}
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    report_classifiers(report, models, data, "Training and validation loss, and "
                                             "validation accuracy.")
    return report


def pca_reconstruction_error(X_train, X_test, n_components, random_state=0):
    """Mean squared error of ``X_test`` reconstructed by PCA fitted on ``X_train``.

    The baseline an autoencoder with a code of ``n_components`` units is
    compared with.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.studies.steps import pca_reconstruction_error
    >>> X = np.random.RandomState(0).rand(50, 6)
    >>> pca_reconstruction_error(X, X, 6) < 1e-20 < pca_reconstruction_error(X, X, 2)
    True
    """
    pca = PCA(n_components, random_state=random_state).fit(X_train)
    return float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))


__all__ = ["fit_all", "fit_and_report", "pca_reconstruction_error", "report_classifiers",
           "report_confusion_matrices", "report_models", "report_test_results", "score_table"]
