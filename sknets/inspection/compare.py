"""Networks side by side on test data: one run each, or repeated runs with paired tests.

One run per model says little: on small data the test score of a network
moves with its seed by more than the gap between two architectures. Given
several runs of each model (over seeds on one test set, or over
cross-validation folds), :func:`compare` reports the mean of each score with
a confidence interval, and tests each model against the best one with a
paired test suited to how the runs were made:

- **seeds on one test set**: the paired t-test. Run ``i`` of every model
  uses seed ``i`` and the same training and test sets, so the differences
  ``d_i = score_model_i - score_best_i`` are independent draws of the
  seed's effect, and ``t = mean(d) / (sd(d) / sqrt(n))`` has ``n - 1``
  degrees of freedom under "no difference".
- **cross-validation folds**: the corrected resampled t-test of Nadeau and
  Bengio (2003). Folds share most of their training data, so their scores
  are correlated and the plain t-test finds differences that are not there;
  the correction replaces ``1 / n`` by ``1 / n + n_test / n_train`` in the
  variance of the mean.

The same variance is used for each model's own interval. The test only
speaks of the variation the runs saw (seeds, or seeds and the data of the
folds): a difference over seeds on one test set may still not carry over to
another test set.
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.metrics import check_scoring, log_loss, mean_squared_error, r2_score

from ._fitted import fitted_network, named_estimators
from .summary import count_parameters

#: Scores where lower is better; every other score is better when higher.
LOWER_IS_BETTER = ("test_log_loss", "test_mse")

_FACTS = ("train_loss", "best_epoch", "epochs", "parameters", "fit_seconds")


def mean_interval(values, confidence=0.95, test_fraction=None):
    """Mean of repeated scores and its confidence interval (Student's t).

    Parameters
    ----------
    values : array-like of shape (n,)
        One score per run.
    confidence : float, default=0.95
    test_fraction : float, default=None
        ``n_test / n_train`` of cross-validation folds: the variance of the
        mean is then ``(1 / n + n_test / n_train) * var`` (Nadeau and
        Bengio's correction) instead of ``var / n``.

    Returns
    -------
    (mean, low, high) : tuple of float
        ``low`` and ``high`` are NaN with a single run.

    Examples
    --------
    >>> from sknets.inspection.compare import mean_interval
    >>> mean, low, high = mean_interval([0.96, 0.97, 0.98])
    >>> round(mean, 3), round(low, 4), round(high, 4)
    (0.97, 0.9452, 0.9948)
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = _half_width(values, confidence, test_fraction)
    return mean, mean - half, mean + half


def paired_test(scores, reference, confidence=0.95, test_fraction=None):
    """Paired t-test of ``scores - reference``, run by run.

    Parameters
    ----------
    scores, reference : array-like of shape (n,)
        The scores of two models, run ``i`` of one paired with run ``i`` of
        the other (same seed, same fold).
    confidence : float, default=0.95
    test_fraction : float, default=None
        ``n_test / n_train`` of cross-validation folds: the corrected
        resampled t-test of Nadeau and Bengio; None: the plain paired t-test.

    Returns
    -------
    dict
        ``difference`` (mean of ``scores - reference``), ``low`` and
        ``high`` (its confidence interval), ``t`` and ``p_value``
        (two-sided, ``n - 1`` degrees of freedom). With identical runs
        (no spread) ``p_value`` is 1 when the differences are all 0 and 0
        otherwise; with one run everything but ``difference`` is NaN.

    Examples
    --------
    >>> from sknets.inspection.compare import paired_test
    >>> result = paired_test([0.97, 0.98, 0.97, 0.99], [0.96, 0.97, 0.97, 0.97])
    >>> round(result["difference"], 4), round(result["t"], 3), round(result["p_value"], 3)
    (0.01, 2.449, 0.092)
    """
    from scipy import stats

    diff = np.asarray(scores, dtype=float) - np.asarray(reference, dtype=float)
    if diff.shape != np.shape(reference) or diff.ndim != 1:
        raise ValueError("scores and reference need one value per run, as many of each; "
                         f"got shapes {np.shape(scores)} and {np.shape(reference)}.")
    n = len(diff)
    mean = float(diff.mean())
    if n < 2:
        return {"difference": mean, "low": np.nan, "high": np.nan, "t": np.nan,
                "p_value": np.nan}
    scale = _standard_error(diff, test_fraction)
    if scale == 0:
        t = 0.0 if mean == 0 else np.copysign(np.inf, mean)
        p = 1.0 if mean == 0 else 0.0
    else:
        t = mean / scale
        p = float(2 * stats.t.sf(abs(t), n - 1))
    half = _half_width(diff, confidence, test_fraction)
    return {"difference": mean, "low": mean - half, "high": mean + half, "t": float(t),
            "p_value": p}


def _standard_error(values, test_fraction):
    n = len(values)
    factor = 1 / n + (test_fraction or 0.0)
    return float(np.sqrt(factor * values.var(ddof=1)))


def _half_width(values, confidence, test_fraction):
    from scipy import stats

    if len(values) < 2:
        return np.nan
    quantile = stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
    return float(quantile * _standard_error(values, test_fraction))


class Comparison(pd.DataFrame):
    """The table :func:`compare` returns for repeated runs.

    One row per model: the mean of each score over the runs with its
    confidence interval (``<score>``, ``<score>_low``, ``<score>_high``),
    the comparison with the best model on the main score (``vs_best``: the
    model's mean minus the best one's, with ``vs_best_low``,
    ``vs_best_high``, the ``t`` statistic and the two-sided ``p_value``; NaN
    on the best model's row), then the means of the training facts.

    Attributes
    ----------
    score : str
        The main score (``test_accuracy``, ``test_r2``, ``test_mse``).
    best : str
        The model with the best mean main score.
    design : {"seeds", "cv"}
        Runs over seeds on one test set, or over cross-validation folds.
    test : str
        The test used: "paired t-test" or "corrected resampled t-test".
    n_repeats : int
        Runs per model.
    confidence : float
    runs : pandas.DataFrame
        Every run's scores: one row per model and run.

    Derived frames (slices, sorts) are plain DataFrames.
    """

    _metadata = ["score", "best", "design", "test", "n_repeats", "confidence", "runs"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def significant(self, alpha=0.05):
        """Model -> whether it differs from the best at level ``alpha`` (not the best)."""
        rows = self.drop(index=self.best)
        return {name: bool(p < alpha) for name, p in rows["p_value"].items()}

    def sentences(self, alpha=0.05):
        """One sentence per model against the best, to quote in a report.

        Examples
        --------
        >>> import pandas as pd
        >>> from sknets.inspection.compare import compare_runs
        >>> runs = pd.DataFrame({"1 layer": [0.96, 0.97, 0.98],
        ...                      "2 layers": [0.97, 0.97, 0.99]})
        >>> compare_runs(runs, "test_accuracy").sentences()
        ['1 layer vs 2 layers: -0.7 points (95% CI -2.1 to +0.8), p = 0.18 over 3 seeds: \
not a significant difference']
        """
        out = []
        for name, row in self.drop(index=self.best).iterrows():
            if self.n_repeats < 2:
                out.append(f"{name} vs {self.best}: {self._amount(row['vs_best'])} in one "
                           "run each: no test possible (repeat the runs)")
                continue
            if row["vs_best_low"] == row["vs_best_high"] == row["vs_best"] == 0:
                out.append(f"{name} vs {self.best}: the same score in each of the "
                           f"{self._runs()}: no difference")
                continue
            verdict = ("a significant difference" if row["p_value"] < alpha
                       else "not a significant difference")
            out.append(f"{name} vs {self.best}: {self._amount(row['vs_best'])} "
                       f"({self.confidence:.0%} CI {self._amount(row['vs_best_low'], False)} to "
                       f"{self._amount(row['vs_best_high'], False)}), "
                       f"{format_p(row['p_value'])} over {self._runs()}: {verdict}")
        return out

    def verdict(self, alpha=0.05):
        """One sentence: the best model if the evidence supports it, else that none is.

        The best model is named as best only when it differs significantly
        from every other model.
        """
        if len(self) == 1:
            return f"One model: {self.best}."
        mean = self.loc[self.best, self.score]
        others = self.drop(index=self.best).index
        if self.n_repeats < 2:
            return (f"{self.best} has the best {_score_words(self.score)} "
                    f"({_format_value(self.score, mean)}), but from one run per model no "
                    "difference can be told from the noise between runs: repeat them.")
        significant = self.significant(alpha)
        tied = [name for name in others if not significant[name]]
        if not tied:
            return (f"{self.best} is the best model: its {_score_words(self.score)} "
                    f"({_format_value(self.score, mean)} on average over {self._runs()}) is "
                    "significantly better than every other model's "
                    f"({format_p(self['p_value'].max())} at most).")
        return (f"No model is clearly the best: {self.best} has the best mean "
                f"{_score_words(self.score)} ({_format_value(self.score, mean)} over "
                f"{self._runs()}), but its difference from {_join(tied)} is within the "
                "noise between runs (no significant difference). More runs would narrow "
                "the intervals.")

    def _runs(self):
        unit = "seed" if self.design == "seeds" else "fold"
        return f"{self.n_repeats} {unit}{'s' if self.n_repeats != 1 else ''}"

    def _amount(self, value, unit=True):
        if self.score.endswith("accuracy"):
            return f"{100 * value:+.1f}" + (" points" if unit else "")
        return f"{value:+.3g}"


def format_p(p):
    """``"p = 0.41"``, ``"p < 0.001"``, as a sentence quotes a p-value.

    Examples
    --------
    >>> from sknets.inspection.compare import format_p
    >>> format_p(0.4123), format_p(0.0449), format_p(1e-5)
    ('p = 0.41', 'p = 0.045', 'p < 0.001')
    """
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}"


def _score_words(score):
    return score.removeprefix("test_").replace("_", " ")


def _format_value(score, value):
    if score.endswith("accuracy"):
        return f"{100 * value:.1f}%"
    return f"{value:.4g}"


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def compare_runs(runs, score, design="seeds", test_fraction=None, confidence=0.95):
    """Compare models from their scores run by run, as :func:`compare` does.

    Parameters
    ----------
    runs : pandas.DataFrame
        One column per model, one row per run; row ``i`` of every column
        comes from the same seed (or fold).
    score : str
        The score's name, e.g. ``"test_accuracy"``; lower is better for
        names in ``LOWER_IS_BETTER``.
    design : {"seeds", "cv"}, default="seeds"
    test_fraction : float, default=None
        ``n_test / n_train`` of the folds; required for ``design="cv"``.
    confidence : float, default=0.95

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import pandas as pd
    >>> from sknets.inspection.compare import compare_runs
    >>> table = compare_runs(pd.DataFrame({"a": [0.9, 0.92], "b": [0.8, 0.83]}), "test_accuracy")
    >>> table.best, round(float(table.loc["b", "vs_best"]), 3)
    ('a', -0.095)
    """
    if design not in ("seeds", "cv"):
        raise ValueError(f"design must be 'seeds' or 'cv', got {design!r}.")
    if design == "cv" and test_fraction is None:
        raise ValueError("design='cv' needs test_fraction, the folds' n_test / n_train.")
    means = runs.mean()
    best = means.idxmin() if score in LOWER_IS_BETTER else means.idxmax()
    rows = {}
    for name in runs.columns:
        mean, low, high = mean_interval(runs[name], confidence, test_fraction)
        row = {score: mean, f"{score}_low": low, f"{score}_high": high}
        if name == best:
            row.update(vs_best=0.0, vs_best_low=np.nan, vs_best_high=np.nan, t=np.nan,
                       p_value=np.nan)
        else:
            test = paired_test(runs[name], runs[best], confidence, test_fraction)
            row.update(vs_best=test["difference"], vs_best_low=test["low"],
                       vs_best_high=test["high"], t=test["t"], p_value=test["p_value"])
        rows[name] = row
    table = Comparison(pd.DataFrame.from_dict(rows, orient="index"))
    table.index.name = "model"
    table.score, table.best, table.design = score, best, design
    table.test = "paired t-test" if design == "seeds" else "corrected resampled t-test"
    table.n_repeats, table.confidence = len(runs), confidence
    table.runs = runs
    return table


def compare(estimators, X_test, y_test=None, *, n_repeats=1, cv=None, train=None,
            fit_params=None, scoring=None, random_state=0, confidence=0.95):
    """One row per network: test scores, training facts, size; over repeated runs if asked.

    With fitted networks and the defaults, each is scored once on
    ``(X_test, y_test)``. With several runs per model (lists of fitted
    networks, ``n_repeats`` with a ``train`` set, or ``cv``), each score is
    the mean over the runs with a confidence interval, and every model is
    compared with the best one by a paired test (see
    :mod:`sknets.inspection.compare` for which test, and why).

    Parameters
    ----------
    estimators : estimator, list of estimators or dict of name -> estimator(s)
        Fitted sknets networks, or pipelines / fitted searches ending in one
        (test scores then come from the whole pipeline). Rows are named by
        the dict's keys, else by class names. A dict value may be a list of
        fitted networks, one per run: run ``i`` of every model must share
        its seed and its training set (paired runs). With ``n_repeats > 1``
        and ``train``, or with ``cv``, the estimators are templates: they
        are cloned and fitted once per run (fitted or not).
    X_test : array-like of shape (n_samples, n_features)
        The test inputs; with ``cv``, all the data, split into folds.
    y_test : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        Targets; not needed by autoencoders (their target is ``X_test``).
    n_repeats : int, default=1
        Runs per model, over the seeds ``random_state``,
        ``random_state + 1``, ...: each run fits a clone on ``train`` with
        that seed. With ``cv``, how many times the folds are drawn (with a
        new shuffle each time).
    cv : int or cross-validation splitter, default=None
        Fit and score each model on cross-validation folds of
        ``(X_test, y_test)`` instead: an int is a number of folds
        (stratified for classifiers, shuffled with ``random_state``).
    train : tuple, default=None
        ``(X_train, y_train)``, or ``(X_train,)`` for autoencoders: the
        training set of the runs when ``n_repeats > 1`` without ``cv``.
    fit_params : dict, default=None
        Passed to every ``fit`` of a run (e.g. ``validation_data``).
    scoring : dict of str -> str or callable, default=None
        More scores per run: column name -> a scikit-learn scorer name or
        a callable ``scorer(estimator, X, y)`` (greater is better), e.g.
        ``{"test_balanced_accuracy": "balanced_accuracy"}``.
    random_state : int, default=0
        Seed of the first run, and of the folds' shuffle.
    confidence : float, default=0.95
        Level of the intervals.

    Returns
    -------
    pandas.DataFrame or Comparison
        With one run per model, a DataFrame indexed by model name, with the
        columns that apply to the models:

        - classifiers: ``test_accuracy`` and ``test_log_loss`` (the
          cross-entropy they were trained on);
        - regressors: ``test_r2`` and ``test_mse``;
        - autoencoders and other transformers with ``inverse_transform``:
          ``test_mse``, the mean squared reconstruction error;

        then any ``scoring`` columns, and for every model ``train_loss``
        (training loss of the epoch whose weights were kept),
        ``best_epoch``, ``epochs`` (trained), ``parameters`` (as counted by
        :func:`sknets.summary`) and ``fit_seconds``.

        With several runs, a :class:`Comparison`: each score's mean with
        ``<score>_low`` and ``<score>_high``, the paired test against the
        best model on the first score (``vs_best``, ``vs_best_low``,
        ``vs_best_high``, ``t``, ``p_value``) and the means of the training
        facts; its ``sentences()`` and ``verdict()`` say it in words.

    Raises
    ------
    ValueError
        If ``y_test`` is missing for a classifier or regressor, if
        ``n_repeats > 1`` comes without ``train`` or ``cv``, or if lists of
        runs differ in length.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier, compare
    >>> X, y = load_digits(return_X_y=True)
    >>> models = {f"{w} units": MLPClassifier((w,), max_epochs=5, random_state=0)
    ...           .fit(X[:1500] / 16, y[:1500]) for w in (16, 64)}
    >>> table = compare(models, X[1500:] / 16, y[1500:])
    >>> list(table.index), int(table.loc["16 units", "parameters"])
    (['16 units', '64 units'], 1210)

    Three seeds each, on the same split, with a paired t-test:

    >>> table = compare(models, X[1500:] / 16, y[1500:], n_repeats=3,
    ...                 train=(X[:1500] / 16, y[:1500]))
    >>> table.n_repeats, table.test, list(table.columns[:3])
    (3, 'paired t-test', ['test_accuracy', 'test_accuracy_low', 'test_accuracy_high'])
    """
    pairs = named_estimators(estimators)
    if not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive int, got {n_repeats!r}.")
    if cv is not None:
        return _compare_cv(pairs, X_test, y_test, n_repeats, cv, fit_params, scoring,
                           random_state, confidence)
    if n_repeats > 1:
        if any(isinstance(est, (list, tuple)) for _, est in pairs):
            raise ValueError("Pass either lists of fitted runs or n_repeats, not both.")
        if train is None:
            raise ValueError("n_repeats > 1 refits every model once per seed: pass its "
                             "training set as train=(X_train, y_train), or use cv=.")
        pairs = [(name, _fit_runs(est, train, fit_params, random_state, n_repeats))
                 for name, est in pairs]
    runs = {name: list(est) if isinstance(est, (list, tuple)) else [est] for name, est in pairs}
    lengths = {len(r) for r in runs.values()}
    if len(lengths) > 1:
        raise ValueError("Every model needs the same number of runs to pair them, run i "
                         f"with run i; got {', '.join(f'{n}: {len(r)}' for n, r in runs.items())}.")
    rows = {name: [_row(est, X_test, y_test, scoring) for est in ests]
            for name, ests in runs.items()}
    if lengths == {1}:
        table = pd.DataFrame.from_dict({n: r[0] for n, r in rows.items()}, orient="index")
        table.index.name = "model"
        return table
    return _summarise(rows, "seeds", None, confidence)


def _fit_runs(estimator, train, fit_params, random_state, n):
    return [_fit_clone(estimator, train, fit_params, random_state + i) for i in range(n)]


def _fit_clone(estimator, train, fit_params, seed):
    model = clone(estimator)
    _set_seed(model, seed)
    return model.fit(*train, **(fit_params or {}))


def _set_seed(model, seed):
    names = [k for k in model.get_params() if k == "random_state" or k.endswith("__random_state")]
    model.set_params(**{k: seed for k in names})


def _compare_cv(pairs, X, y, n_repeats, cv, fit_params, scoring, random_state, confidence):
    from sklearn.model_selection import check_cv
    from sklearn.utils import indexable
    from sklearn.utils import _safe_indexing

    if isinstance(cv, numbers.Integral):
        from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

        classifier = any(is_classifier(est) for _, est in pairs)
        kind = RepeatedStratifiedKFold if classifier else RepeatedKFold
        splitter = kind(n_splits=cv, n_repeats=n_repeats, random_state=random_state)
    else:
        if n_repeats != 1:
            raise ValueError("n_repeats repeats an int cv with new shuffles; with a "
                             "splitter, give it the repeats (e.g. RepeatedStratifiedKFold).")
        splitter = check_cv(cv, y, classifier=any(is_classifier(est) for _, est in pairs))
    X, y = indexable(X, y)
    splits = list(splitter.split(X, y))
    fractions = [len(test) / len(train) for train, test in splits]
    rows = {name: [] for name, _ in pairs}
    for fold, (train_idx, test_idx) in enumerate(splits):
        X_train, X_fold = _safe_indexing(X, train_idx), _safe_indexing(X, test_idx)
        train = (X_train,) if y is None else (X_train, _safe_indexing(y, train_idx))
        y_fold = None if y is None else _safe_indexing(y, test_idx)
        for name, est in pairs:
            model = _fit_clone(est, train, fit_params, random_state + fold)
            rows[name].append(_row(model, X_fold, y_fold, scoring))
    return _summarise(rows, "cv", float(np.mean(fractions)), confidence)


def _summarise(rows, design, test_fraction, confidence):
    """A Comparison from ``{model: [row of run 0, row of run 1, ...]}``."""
    frames = {name: pd.DataFrame(r) for name, r in rows.items()}
    first = next(iter(frames.values()))
    scores = [c for c in first.columns if c not in _FACTS]
    score = scores[0]
    missing = [name for name, frame in frames.items() if score not in frame]
    if missing:
        raise ValueError(f"{_join(missing)} have no {score}: compare models of one kind "
                         "(classifiers, regressors or autoencoders) together.")
    table = compare_runs(pd.DataFrame({n: f[score].to_numpy() for n, f in frames.items()}),
                         score, design, test_fraction, confidence)
    for other in scores[1:]:
        intervals = {name: mean_interval(frame[other], confidence, test_fraction)
                     if other in frame else (np.nan,) * 3 for name, frame in frames.items()}
        for i, suffix in enumerate(("", "_low", "_high")):
            table[other + suffix] = [intervals[name][i] for name in table.index]
    order = [s + suffix for s in scores for suffix in ("", "_low", "_high")]
    table = _reordered(table, order + [c for c in table.columns if c not in order])
    for fact in _FACTS:
        table[fact] = [frames[name][fact].mean() for name in table.index]
    runs = pd.concat({name: frame for name, frame in frames.items()}, names=["model", "run"])
    table.runs = runs.reset_index()
    return table


def _reordered(table, columns):
    """``table`` with its columns in ``columns``' order, still a Comparison."""
    result = Comparison(pd.DataFrame(table)[columns])
    for name in Comparison._metadata:
        setattr(result, name, getattr(table, name, None))
    return result


def _row(estimator, X_test, y_test, scoring):
    network = fitted_network(estimator)
    row = _test_scores(estimator, X_test, y_test)
    for name, scorer in (scoring or {}).items():
        row[name] = float(check_scoring(estimator, scoring=scorer)(estimator, X_test, y_test))
    history = network.history_
    kept = history.loc[history["epoch"] == network.best_epoch_, "train_loss"]
    row.update(
        train_loss=float(kept.iloc[0]) if len(kept) else np.nan,
        best_epoch=network.best_epoch_,
        epochs=network.n_epochs_,
        parameters=count_parameters(network.module_),
        fit_seconds=network.fit_seconds_,
    )
    return row


def _test_scores(estimator, X_test, y_test):
    if is_classifier(estimator):
        _require_targets(y_test, estimator)
        proba = estimator.predict_proba(X_test)
        if np.ndim(y_test) == 2 and np.shape(y_test)[1] > 1:
            # Multi-label: one probability per label; the log loss is the mean
            # binary cross-entropy over samples and labels.
            loss = log_loss(np.ravel(y_test), np.ravel(proba), labels=[0, 1])
        else:
            # float32 softmax sums to 1 only within ~1e-7, which log_loss warns about.
            proba = proba / proba.sum(axis=1, keepdims=True)
            loss = log_loss(y_test, proba, labels=estimator.classes_)
        return {"test_accuracy": estimator.score(X_test, y_test), "test_log_loss": loss}
    if is_regressor(estimator):
        _require_targets(y_test, estimator)
        predicted = estimator.predict(X_test)
        return {"test_r2": r2_score(y_test, predicted),
                "test_mse": mean_squared_error(y_test, predicted)}
    if hasattr(estimator, "inverse_transform"):
        X = np.asarray(X_test, dtype=float)
        rebuilt = np.asarray(estimator.inverse_transform(estimator.transform(X_test)), dtype=float)
        return {"test_mse": float(np.mean((rebuilt - X) ** 2))}
    raise TypeError(f"Cannot score {type(estimator).__name__} on a test set: it is neither "
                    "a classifier, a regressor nor a transformer with inverse_transform.")


def _require_targets(y_test, estimator):
    if y_test is None:
        raise ValueError(f"y_test is needed to score {type(estimator).__name__}; "
                         "pass the test targets.")


__all__ = ["Comparison", "LOWER_IS_BETTER", "compare", "compare_runs", "format_p",
           "mean_interval", "paired_test"]
