"""Steps the studies share: fit repeated runs with a progress bar, and report what
classifiers learned and how they compare."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.decomposition import PCA
from skorch.callbacks import Callback
from tqdm.auto import tqdm

from ..inspection import compare, plot_confusion_matrix, plot_history, summary
from ..inspection.compare import Comparison, format_p
from ..inspection.plotting import confusion_figsize


class EpochTick(Callback):
    """Advance a study's progress bar at the end of every epoch of the networks given it.

    Passed as a network's ``callbacks``; the copies that ``clone`` and a
    search make share the bar, since one bar shows the whole study.

    Parameters
    ----------
    bar : tqdm.tqdm
    """

    def __init__(self, bar):
        self.bar = bar

    def on_epoch_end(self, net, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def __getstate__(self):
        # The bar is this process's display: a pickled copy ticks nothing.
        return {"bar": None}

    # clone (through sklearn's protocol) and deepcopy give this object back.
    def __sklearn_clone__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def fit_all(models, data, settings, desc, training_sets=None):
    """Fit ``settings.repeats`` runs of every model, with one progress bar over the epochs.

    Run ``i`` of every model is a clone with ``random_state =
    settings.random_state + i``: the runs of two models are paired (same
    seed, same data), as :func:`sknets.compare` expects. Classifiers are
    fitted on ``(data.X_train, data.y_train)``, monitored on the validation
    set; other estimators (autoencoders) on ``data.X_train`` alone.

    Parameters
    ----------
    models : dict of str -> estimator
        The models, unfitted (templates of the runs).
    data : StudyData
    settings : StudySettings
        ``repeats`` runs per model; ``progress`` shows the bar.
    desc : str
        Label of the progress bar.
    training_sets : dict of str -> (X, y), default=None
        Training sets of the models that do not train on all of
        ``data.X_train``.

    Returns
    -------
    dict of str -> list
        Model name -> its fitted runs, run 0 first.

    Examples
    --------
    >>> from sknets import MLPClassifier
    >>> from sknets.studies import StudySettings, load_study_data
    >>> from sknets.studies.steps import fit_all
    >>> data = load_study_data(n_train=200)
    >>> runs = fit_all({"tiny": MLPClassifier(hidden_layers=(8,), max_epochs=1)}, data,
    ...                StudySettings(progress=False, repeats=2), "demo")
    >>> [model.random_state for model in runs["tiny"]]
    [0, 1]
    """
    training_sets = training_sets or {}
    total = sum(model.get_params()["max_epochs"] for model in models.values())
    bar = tqdm(total=total * settings.repeats, desc=desc, unit="epoch",
               disable=not settings.progress)
    runs = {name: [] for name in models}
    for repeat in range(settings.repeats):
        for name, template in models.items():
            bar.set_postfix_str(f"{name}, run {repeat + 1}/{settings.repeats}")
            model = clone(template).set_params(
                random_state=settings.random_state + repeat, verbose=settings.verbose,
                callbacks=[("progress", EpochTick(bar))])
            X, y = training_sets.get(name, (data.X_train, data.y_train))
            if is_classifier(model):
                model.fit(X, y, validation_data=(data.X_val, data.y_val))
            else:
                model.fit(X, validation_data=data.X_val)
            bar.update(model.max_epochs - model.n_epochs_)  # stopped early
            runs[name].append(model.set_params(callbacks=None))
    bar.close()
    return runs


def first_runs(runs):
    """Model name -> its first run (seed ``--seed``), for figures of one network."""
    return {name: models[0] for name, models in runs.items()}


def score_table(runs, data, balanced_accuracy=False):
    """The models' test scores over their runs (:func:`sknets.compare`), one row per model.

    ``balanced_accuracy`` adds ``test_balanced_accuracy``, the metric for
    imbalanced classes such as Kuzushiji-49's. With several runs per model
    the table is a :class:`~sknets.inspection.compare.Comparison`.
    """
    scoring = {"test_balanced_accuracy": "balanced_accuracy"} if balanced_accuracy else None
    return compare(runs, data.X_test, data.y_test, scoring=scoring)


def display_table(table):
    """Text to show for a test table: means with their intervals, the tests in words.

    Examples
    --------
    >>> import pandas as pd
    >>> from sknets.inspection.compare import compare_runs
    >>> from sknets.studies.steps import display_table
    >>> table = compare_runs(pd.DataFrame({"a": [0.96, 0.97, 0.98],
    ...                                    "b": [0.95, 0.95, 0.96]}), "test_accuracy")
    >>> display_table(table).loc["b"].tolist()
    ['95.33 (93.9 to 96.8)', '-1.7 (-3.1 to -0.2)', 'p = 0.038', 'yes']
    """
    if not isinstance(table, Comparison):
        return None
    percent = table.score.endswith("accuracy")
    shown = {}
    scores = [c[:-4] for c in table.columns if c.endswith("_low") and c != "vs_best_low"]
    for score in scores:
        scale = 100 if score.endswith("accuracy") else 1
        unit = " (%)" if scale == 100 else ""
        shown[f"{score.removeprefix('test_').replace('_', ' ')}{unit}, mean (95% CI)"] = [
            _interval(scale * row[score], scale * row[f"{score}_low"],
                      scale * row[f"{score}_high"]) for _, row in table.iterrows()]
    scale = 100 if percent else 1
    shown["vs best" + (" (points)" if percent else "")] = [
        "best" if name == table.best else
        _interval(scale * row["vs_best"], scale * row["vs_best_low"],
                  scale * row["vs_best_high"], sign=True)
        for name, row in table.iterrows()]
    shown["p-value"] = ["" if name == table.best or np.isnan(row["p_value"])
                        else format_p(row["p_value"]) for name, row in table.iterrows()]
    shown["significant"] = ["" if name == table.best or np.isnan(row["p_value"])
                            else ("yes" if row["p_value"] < 0.05 else "no")
                            for name, row in table.iterrows()]
    for column in table.columns:
        if column in ("best_epoch", "epochs", "parameters", "fit_seconds", "n_train"):
            values = table[column]
            shown[column] = [f"{v:,.0f}" if column in ("parameters", "n_train") else f"{v:.3g}"
                             for v in values]
    extra = [c for c in table.columns if c.startswith("pca_")]
    for column in extra:
        shown[column] = [f"{v:.4g}" for v in table[column]]
    frame = pd.DataFrame(shown, index=table.index)
    return frame


def _interval(mean, low, high, sign=False):
    fmt = "{:+.1f}" if sign else "{:.2f}" if abs(mean) >= 1 else "{:.4f}"
    if np.isnan(low):
        return fmt.format(mean)
    inner = "{:+.1f}" if sign else ("{:.1f}" if abs(mean) >= 1 else "{:.3f}")
    return f"{fmt.format(mean)} ({inner.format(low)} to {inner.format(high)})"


def report_comparison(report, table, what="model"):
    """Add what the runs say: the best model only if the evidence supports it,
    and one sentence per model against the best. Recorded as ``comparison``
    in ``results.json``."""
    if not isinstance(table, Comparison):
        lead = ("One run per model (--repeats 1): a difference between two models may "
                "come from their seeds alone. Repeat the runs to tell differences from noise.")
        report.sentences(lead)
        report.results["comparison"] = {"n_repeats": 1, "verdict": lead, "sentences": []}
        return
    unit = "seed" if table.design == "seeds" else "fold"
    how = ("each model trained once per seed on the same split and scored on the same "
           f"test set; paired t-test over the {table.n_repeats} seeds"
           if table.design == "seeds" else
           f"corrected resampled t-test (Nadeau and Bengio) over the {table.n_repeats} "
           "cross-validation folds")
    report.text(f"{table.n_repeats} runs per {what} ({how}). Each score is the mean over "
                f"the {unit}s with its {table.confidence:.0%} confidence interval; each "
                f"{what} is compared with the best one, {table.best}, run by run. A p-value "
                "below 0.05 (an interval that excludes 0) is called significant.")
    verdict = table.verdict()
    sentences = table.sentences()
    report.sentences(verdict, sentences)
    report.results["comparison"] = {
        "score": table.score, "design": table.design, "test": table.test,
        "n_repeats": table.n_repeats, "confidence": table.confidence, "best": table.best,
        "verdict": verdict, "sentences": sentences}


def report_classifiers(report, runs, data, curves_caption, table=None, normalize=False):
    """Add the classifiers' curves, test table, comparison, confusion matrices, summaries
    and parameters.

    Also records the first run's histories
    (:meth:`~sknets.studies.report.Report.histories`).

    Parameters
    ----------
    report : Report
    runs : dict of str -> list of fitted classifiers
        Each model's runs (from :func:`fit_all`).
    data : StudyData
    curves_caption : str
        Paragraph under the "Training curves" heading.
    table : DataFrame, default=None
        The test table, when the study adds columns to :func:`score_table`'s.
    normalize : bool, default=False
        Confusion matrices as fractions of each true class.
    """
    n_runs = len(next(iter(runs.values())))
    report.section("Training curves", curves_caption)
    axes = plot_history(runs, metrics=("loss", "accuracy"))
    axes[0].set_yscale("log")  # the late epochs, where models differ, stay visible
    axes[0].set_title("loss (cross-entropy, log scale) by epoch")
    axes[1].set_title("validation accuracy by epoch")
    band = (f" Lines are the mean of the {n_runs} runs; the band spans the lowest to the "
            "highest run." if n_runs > 1 else "")
    report.figure("curves", axes[0].figure,
                  "Solid: training, dashed: validation; a star marks the epoch whose "
                  "weights each model kept (lowest validation loss)" +
                  (", the median over the runs." if n_runs > 1 else ".") + band)
    report_test_results(report, table if table is not None else score_table(runs, data), data)
    first = first_runs(runs)
    report.histories(first)
    report_confusion_matrices(report, first, data, normalize=normalize,
                              note=" (first run of each model)" if n_runs > 1 else "")
    report_models(report, first)


def report_test_results(report, table, data):
    """Add the test table and the comparison of the models under their own headings."""
    runs = getattr(table, "n_repeats", 1) if isinstance(table, Comparison) else 1
    report.section("Test results",
                   f"Each model with the weights of its best validation epoch, scored on "
                   f"the {len(data.X_test):,} test samples"
                   + (f"; mean over {runs} runs (seeds), 95% confidence interval in "
                      "brackets." if runs > 1 else "."))
    report.table("test_results", table, display=display_table(table))
    if len(table) > 1:
        report.section("Comparison")
        report_comparison(report, table)
    if runs > 1:
        report.table("test_runs", table.runs.set_index(["model", "run"]),
                     "Every run's scores (run i of every model used the same seed).")


def report_confusion_matrices(report, models, data, normalize=False, note=""):
    """Add one confusion matrix on the test set per model, in a grid."""
    n = len(models)
    columns = min(n, 3 if n > 4 else 2)
    rows = -(-n // columns)
    width, height = confusion_figsize(data.names)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, (height + 0.3) * rows),
                             squeeze=False, layout="constrained")
    for axis, (name, model) in zip(axes.flat, models.items()):
        plot_confusion_matrix(model, data.X_test, data.y_test, labels=data.labels,
                              display_labels=data.names, normalize=normalize, ax=axis)
        axis.set_title(name)
    for axis in axes.flat[n:]:
        axis.remove()
    report.section("Confusion matrices")
    what = "fraction of each true class" if normalize else "counts"
    report.figure("confusion_matrices", fig,
                  f"Confusion matrices on the test set{note}: rows are the true class, "
                  f"columns the predicted one ({what}); correct predictions in blue, "
                  "errors in red, empty cells blank.")


def report_models(report, models):
    """Add each model's summary, then all their parameters."""
    report.section("Models", "Keras-style summaries (batch-norm running statistics count "
                             "as non-trainable parameters).")
    for name, model in models.items():
        report.code(name, summary(model).to_text())
    report.parameters(models)


def fit_and_report(model, data, report, normalize=False):
    """Fit one classifier on a study's data and add its curves, test scores,
    confusion matrix, summary and parameters to ``report``.

    ``sknets train`` runs this.

    Parameters
    ----------
    model : MLPClassifier
    data : StudyData
    report : sknets.studies.report.Report
    normalize : bool, default=False
        Confusion matrix as fractions of each true class.

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
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    report_classifiers(report, {"model": [model]}, data, "Training and validation loss, and "
                                                         "validation accuracy.",
                       normalize=normalize)
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


__all__ = ["EpochTick", "display_table", "first_runs", "fit_all", "fit_and_report",
           "pca_reconstruction_error", "report_classifiers", "report_comparison",
           "report_confusion_matrices", "report_models", "report_test_results", "score_table"]
