"""Study ``search``: a grid search over the hidden layers."""

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold
from tqdm.auto import tqdm

from ..inspection import plot_history
from ..inspection.compare import compare_runs
from ..mlp import MLPClassifier
from ..model_selection import GridSearchCV
from .registry import register
from .steps import (EpochTick, display_table, report_comparison, report_confusion_matrices,
                    report_models, report_test_results, score_table)

GRID = {"hidden_layers": [(50,), (100,), (100, 80), (256, 128)]}


@register("search", "Grid search over hidden layers",
          small=dict(lr=3e-3, batch_size=64, max_epochs=20),
          full=dict(lr=1e-3, batch_size=128, max_epochs=15))
def run(study, data, settings, report):
    """``GridSearchCV`` (3-fold, stratified, on training + validation data,
    repeated with new shuffles) over ``hidden_layers``; the candidates are
    compared with the corrected resampled t-test over the folds, and the best
    candidate, refitted, is scored on the test set (accuracy and balanced
    accuracy, the metric for imbalanced sets such as Kuzushiji-49).

    The search is :class:`sknets.model_selection.GridSearchCV`: candidates
    of one depth train together on each split, each exactly as its own fit
    would. To report the time this saves, each candidate is also fitted on
    its own on the first split and the separate fits' time extrapolated to
    all splits."""
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    cv = RepeatedStratifiedKFold(n_splits=3, n_repeats=settings.repeats,
                                 random_state=settings.random_state)
    template = MLPClassifier(**study.params(data, settings))
    n_fits = len(GRID["hidden_layers"]) * cv.get_n_splits()
    bar = tqdm(total=(n_fits + 1) * template.max_epochs, desc="search", unit="epoch",
               disable=not settings.progress)
    template.set_params(verbose=settings.verbose, callbacks=[("progress", EpochTick(bar))])
    search = GridSearchCV(template, GRID, cv=cv, scoring=_ProgressScorer(bar), refit=False)
    # A process's first fit also loads the rest of torch (about a second):
    # done here, so that neither the search nor the separate fits pay it.
    clone(template).set_params(max_epochs=1, callbacks=None).fit(X[:64], y[:64])
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start
    bar.set_postfix_str("timing separate fits")
    saved, same = _time_saved(search, template, X, y, cv, seconds)
    # Refitted by hand, not by refit=True, to keep the validation set and its best epoch.
    best = clone(search.estimator).set_params(**search.best_params_)
    bar.set_postfix_str("refit of the best")
    best.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val))
    bar.update(best.max_epochs - best.n_epochs_)
    bar.close()
    best.set_params(callbacks=None)

    results = pd.DataFrame(search.cv_results_)
    names = results["param_hidden_layers"].map(str)
    splits = [f"split{i}_test_score" for i in range(cv.get_n_splits())]
    folds = pd.DataFrame(results[splits].to_numpy().T, columns=names)
    n_test = len(X) / 3
    comparison = compare_runs(folds, "accuracy", design="cv",
                              test_fraction=n_test / (len(X) - n_test))
    table = pd.DataFrame({
        "hidden_layers": names,
        "mean_accuracy": results["mean_test_score"],
        "std_accuracy": results["std_test_score"],
        "rank": results["rank_test_score"],
        "mean_fit_seconds": results["mean_fit_time"],
    }).set_index("hidden_layers")
    table = table.join(comparison.drop(columns="accuracy"))
    report.section("Cross-validation",
                   f"Accuracy of each candidate over {cv.get_n_splits()} folds (3-fold "
                   f"cross-validation drawn {settings.repeats} times) of the {len(X):,} "
                   "training + validation samples.")
    report.table("search_results", table, display=display_table(comparison))
    report_comparison(report, comparison, what="candidate")
    report.figure("search_scores", _scores_figure(table),
                  "Mean accuracy over the folds with its 95% interval (corrected for the "
                  "overlap of the folds' training sets); the best in orange.")
    report.section("Search time",
                   f"{search.n_stacked_fits_} of the {len(results) * cv.get_n_splits()} fits "
                   f"of the search trained together, in {search.n_stacked_groups_} groups of "
                   "candidates of one depth, each as its own fit would (same weights, batches "
                   "and steps). Each candidate was also fitted on its own on the first split; "
                   "the separate fits' time is that, times the number of splits. Their test "
                   "scores on that split are " + ("equal to the search's." if same else
                                                   "not all equal to the search's."))
    report.table("search_time", saved)
    report.results["search"] = {"n_stacked_groups": search.n_stacked_groups_,
                                "n_stacked_fits": search.n_stacked_fits_,
                                "first_split_scores_equal": same}

    models = {f"best: hidden_layers={best.hidden_layers}": best}
    report_test_results(report, score_table(models, data, balanced_accuracy=True), data)
    report.histories(models)
    report.section("Best model", "The best candidate refitted on the training set, "
                                 "monitored on the validation set.")
    axes = plot_history(best, metrics=("loss", "accuracy"))
    report.figure("best_curves", axes[0].figure, "Training curves of the refitted best model.")
    report_confusion_matrices(report, models, data, normalize=settings.normalize)
    report_models(report, models)


def _time_saved(search, template, X, y, cv, seconds):
    """The search's time beside an estimate of the same search fitting one candidate at a time.

    Returns the table and whether the separate fits' scores equal the search's.

    Each candidate is fitted on its own on the first split (timed, and its
    test score checked against the search's); the search's training time is
    replaced by those times, times the number of splits.
    """
    results = search.cv_results_
    n_splits = cv.get_n_splits()
    train, test = next(iter(cv.split(X, y)))
    separate, same = 0.0, True
    for i, params in enumerate(results["params"]):
        estimator = clone(template).set_params(**params, callbacks=None)
        start = time.perf_counter()
        estimator.fit(X[train], y[train])
        separate += time.perf_counter() - start
        same &= bool(estimator.score(X[test], y[test]) == results["split0_test_score"][i])
    trained = float(np.sum(results["mean_fit_time"]) * n_splits)
    alone = seconds - trained + separate * n_splits
    table = pd.DataFrame({"seconds": [seconds, trained, alone, alone - seconds]}, index=pd.Index(
        ["search, candidates trained together", "of which training",
         "search fitting one candidate at a time (estimated)", "time saved"], name="search"))
    return table, same


def _scores_figure(table):
    fig, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
    positions = np.arange(len(table))
    errors = np.vstack([table["mean_accuracy"] - table["accuracy_low"],
                        table["accuracy_high"] - table["mean_accuracy"]])
    axis.bar(positions, table["mean_accuracy"], yerr=np.nan_to_num(errors), capsize=4,
             color=["C1" if r == 1 else "C0" for r in table["rank"]])
    axis.set_xticks(positions, table.index)
    axis.set_xlabel("hidden_layers")
    axis.set_ylabel("cross-validated accuracy")
    low = np.nanmin([table["accuracy_low"].min(), (table["mean_accuracy"]
                                                   - 3 * table["std_accuracy"]).min()])
    axis.set_ylim(max(0.0, low - 0.02), min(1.0, table["mean_accuracy"].max() + 0.02))
    return fig


class _ProgressScorer:
    """Accuracy scorer that moves the progress bar past the epochs a fit stopped early."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, estimator, X, y):
        self.bar.update(estimator.max_epochs - estimator.n_epochs_)
        return estimator.score(X, y)
