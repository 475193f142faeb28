"""Figures of fitted networks: training curves, confusion matrices, reconstructions.

Every function draws with matplotlib and returns the Axes it drew on, as
scikit-learn's displays do, so a figure can be adjusted or saved with the
usual calls.
"""

import math

import numpy as np
import pandas as pd

from ._fitted import fitted_network, named_estimators


def plot_history(estimator, metrics=("loss",), ax=None):
    """Plot training and validation curves against the epochs.

    For each metric, the training curve (solid) and the validation curve
    (dashed, when the network had a validation set) are drawn from the
    estimator's ``history_``; a star marks the value at ``best_epoch_``,
    the epoch whose weights the estimator kept.

    Parameters
    ----------
    estimator : estimator, list of estimators or dict of name -> estimator(s)
        Fitted sknets networks (or pipelines / fitted searches ending in
        one). Several estimators are overlaid on the same axes, one colour
        each, named by the dict's keys or by their class names. A dict
        value may be a list of networks, repeated runs of one model (other
        seeds or folds): their mean curve is drawn, with a band from the
        lowest to the highest run at each epoch, and the star at the median
        of their best epochs.
    metrics : str or sequence of str, default=("loss",)
        What to plot, one axes per metric: "loss" plots ``train_loss`` and
        ``valid_loss``; any other name ``m`` plots ``train_m`` and
        ``valid_m`` where they exist (e.g. "accuracy" for classifiers, "r2"
        for regressors, which are recorded on the validation set only).
    ax : matplotlib Axes or sequence of Axes, default=None
        Where to draw, one Axes per metric; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes, or ndarray of Axes when several metrics are given

    Raises
    ------
    ValueError
        If a metric is not in any estimator's history.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier, plot_history
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(max_epochs=10, early_stopping=True, random_state=0)
    >>> ax = plot_history(clf.fit(X / 16, y))
    >>> ax.get_xlabel(), len(ax.get_lines()[0].get_xdata())
    ('epoch', 10)
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    pairs = [(name, [fitted_network(e) for e in est] if isinstance(est, (list, tuple))
              else [fitted_network(est)]) for name, est in named_estimators(estimator)]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if ax is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8),
                               squeeze=False, layout="constrained")
        axes = axes[0]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if len(axes) != len(metrics):
            raise ValueError(f"ax holds {len(axes)} Axes for {len(metrics)} metrics; "
                             "pass one Axes per metric.")
    single = len(pairs) == 1
    for metric, axis in zip(metrics, axes):
        drawn = False
        for index, (name, network) in enumerate(pairs):
            drawn |= _draw_curves(axis, network, metric, None if single else name,
                                  None if single else f"C{index % 10}")
        if not drawn:
            raise ValueError(
                f"No estimator recorded {metric!r}; their histories have "
                f"{sorted(set().union(*(_metric_names(n[0]) for _, n in pairs)))}. "
                "Scores other than the loss exist only with a validation set "
                "(early_stopping=True or validation_data)."
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(handles=_legend_handles(axis, single), fontsize="small")
    return axes[0] if len(axes) == 1 else axes


def _legend_handles(axis, single):
    """One entry per curve for one network; else one per network plus the styles."""
    handles = [line for line in axis.get_lines() if not line.get_label().startswith("_")]
    if not single:
        from matplotlib.lines import Line2D

        styles = {line.get_linestyle() for line in axis.get_lines()}
        handles += [Line2D([], [], color="grey", linestyle=style, label=label)
                    for style, label in (("-", "train"), ("--", "validation"))
                    if style in styles]
        handles.append(Line2D([], [], color="grey", linestyle="none", marker="*",
                              markersize=11, markeredgecolor="black", label="best epoch"))
    if axis.collections:
        from matplotlib.patches import Patch

        handles.append(Patch(color="grey", alpha=0.25, label="range of the runs"))
    return handles


def _draw_curves(axis, networks, metric, name, color):
    """Draw the curves of ``metric`` of one model's runs; False if it has none.

    ``name`` is None when the model is drawn alone: its curves are then
    labelled "train" and "validation"; otherwise only the first curve
    carries the model's name (the legend explains the line styles). Several
    runs draw their mean and, behind it, the band from the lowest to the
    highest run.
    """
    histories = [network.history_.set_index("epoch") for network in networks]
    drawn = {}
    for split, style, label in (("train", "-", "train"), ("valid", "--", "validation")):
        column = f"{split}_{metric}"
        found = [h[column] for h in histories if column in h]
        if not found or pd.concat(found, axis=1).isna().all().all():
            continue
        curves = pd.concat(found, axis=1)
        curves = curves.sort_index()
        if name is not None:
            label = "_nolegend_" if drawn else name
        (line,) = axis.plot(curves.index.to_numpy(), curves.mean(axis=1).to_numpy(),
                            linestyle=style, color=color, label=label)
        if len(networks) > 1:
            axis.fill_between(curves.index.to_numpy(), curves.min(axis=1).to_numpy(),
                              curves.max(axis=1).to_numpy(), color=line.get_color(),
                              alpha=0.15, linewidth=0)
        drawn[split] = (line, curves.mean(axis=1))
    if not drawn:
        return False
    line, mean = drawn["valid" if "valid" in drawn else "train"]
    best = int(sorted(network.best_epoch_ for network in networks)[(len(networks) - 1) // 2])
    label = f"best epoch ({best})" if name is None else "_nolegend_"
    axis.plot([best], mean.reindex([best]).to_numpy(), linestyle="none", marker="*",
              markersize=13, color=line.get_color(), markeredgecolor="black", label=label)
    return True


def _metric_names(network):
    names = set()
    for column in network.history_.columns:
        for split in ("train_", "valid_"):
            if column.startswith(split) and network.history_[column].notna().any():
                names.add(column[len(split):])
    return names


def plot_confusion_matrix(estimator, X, y, *, labels=None, display_labels=None,
                          normalize=False, ax=None):
    """Draw a classifier's confusion matrix so that its errors stand out.

    Correct predictions (the diagonal) are shaded blue, errors (off the
    diagonal) red on their own scale, so that a handful of confusions is as
    visible as a thousand hits; empty cells stay white and show no number.
    The figure grows with the number of classes and the length of their
    names, and the predicted classes' names are slanted so that long names
    do not run into each other.

    Parameters
    ----------
    estimator : fitted classifier
        Any classifier with ``predict`` (an sknets network, a pipeline...).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels, of the same kind as the classifier's ``classes_``.
    labels : array-like, default=None
        The classes, in the matrix's order; by default ``classes_``.
    display_labels : array-like of str, default=None
        Names shown for ``labels`` (e.g. a data set's ``target_names`` when
        the labels are class numbers); by default the labels themselves.
    normalize : bool, default=False
        Divide each row by its total: cell ``(i, j)`` is then the fraction
        of class ``i`` predicted as ``j``, and the diagonal the recall of
        each class.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure of :func:`confusion_figsize` if None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknets.inspection import plot_confusion_matrix
    >>> X, y = load_iris(return_X_y=True)
    >>> ax = plot_confusion_matrix(LogisticRegression(max_iter=500).fit(X, y), X, y,
    ...                            display_labels=["setosa", "versicolor", "virginica"])
    >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_xlabel()
    (['setosa', 'versicolor', 'virginica'], 'Predicted label')
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = np.asarray(getattr(estimator, "classes_", None) if labels is None else labels)
    if labels.ndim == 0:
        raise ValueError(f"{type(estimator).__name__} has no classes_; pass labels=.")
    names = [str(n) for n in (labels if display_labels is None else display_labels)]
    if len(names) != len(labels):
        raise ValueError(f"display_labels has {len(names)} names for {len(labels)} labels.")
    counts = confusion_matrix(y, estimator.predict(X), labels=labels)
    values = counts.astype(float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    if ax is None:
        _, ax = plt.subplots(figsize=confusion_figsize(names), layout="constrained")
    n = len(names)
    diagonal = np.eye(n, dtype=bool)
    shown = np.ma.masked_where(~diagonal | (counts == 0), values)
    errors = np.ma.masked_where(diagonal | (counts == 0), values)
    top = values.max() or 1.0
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=top, interpolation="nearest")
    ax.imshow(errors, cmap="Reds", vmin=0, vmax=(errors.max() if errors.count() else 1) * 1.25,
              interpolation="nearest")
    if n <= 20:
        fontsize = 9 if n <= 10 else 7
        for i, j in zip(*np.nonzero(counts)):
            text = f"{values[i, j]:.2f}" if normalize else f"{counts[i, j]:d}"
            dark = (values[i, j] / top > 0.6) if i == j else (errors[i, j] / errors.max() > 0.6)
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
    slanted = max(len(name) for name in names) > 2
    ax.set_xticks(np.arange(n), names, rotation=45 if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor",
                  fontsize=_tick_fontsize(n))
    ax.set_yticks(np.arange(n), names, fontsize=_tick_fontsize(n))
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#dddddd", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    return ax


def _tick_fontsize(n):
    return 9 if n <= 12 else (7 if n <= 30 else 5)


def confusion_figsize(names):
    """(width, height) in inches of one confusion matrix of classes named ``names``.

    Each cell gets room for its count, and the margins room for the
    longest name (slanted below, level on the left).

    Examples
    --------
    >>> from sknets.inspection.plotting import confusion_figsize
    >>> confusion_figsize([str(d) for d in range(10)])
    (5.4, 5.1)
    """
    n = len(names)
    cell = 0.42 if n <= 12 else (0.3 if n <= 30 else 0.2)
    longest = max((len(str(name)) for name in names), default=1)
    margin = 0.7 + 0.075 * longest * _tick_fontsize(n) / 9
    return round(n * cell + margin + 0.4, 1), round(n * cell + margin * 0.75 + 0.3, 1)


def plot_reconstructions(autoencoder, X, n=10, image_shape=None, axes=None):
    """Show images above their reconstructions.

    The top row shows the first ``n`` rows of ``X``, the bottom row
    ``autoencoder.inverse_transform(autoencoder.transform(head))``, both
    with the grey scale of the originals, so a reconstruction's contrast can
    be judged against its original.

    Parameters
    ----------
    autoencoder : fitted transformer with ``transform`` and ``inverse_transform``
        An :class:`sknets.AutoencoderTransformer`, or any such transformer,
        e.g. scikit-learn's ``PCA`` (or a pipeline of them).
    X : array-like of shape (n_samples, n_features)
        Images as flat rows.
    n : int, default=10
        How many images to show (all of ``X`` if it has fewer rows).
    image_shape : tuple (height, width), default=None
        Shape of one image; by default the square root of ``n_features``
        (28x28 for MNIST's 784 pixels, 8x8 for scikit-learn's digits).
    axes : ndarray of matplotlib Axes of shape (2, n), default=None
        Where to draw; a new figure if None.

    Returns
    -------
    axes : ndarray of matplotlib Axes of shape (2, n)
        Row 0 the originals, row 1 the reconstructions.

    Raises
    ------
    ValueError
        If the images are not square and ``image_shape`` is not given.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sknets import plot_reconstructions
    >>> X = load_digits().data / 16
    >>> axes = plot_reconstructions(PCA(n_components=16).fit(X), X, n=5)
    >>> axes.shape, axes[0, 0].get_images()[0].get_array().shape
    ((2, 5), (8, 8))
    """
    import matplotlib.pyplot as plt

    head = X.iloc[:n] if hasattr(X, "iloc") else X[:n]
    originals = np.asarray(head, dtype=float)
    n = len(originals)
    shape = image_shape or _square_shape(originals.shape[1])
    if math.prod(shape) != originals.shape[1]:
        raise ValueError(f"image_shape={tuple(shape)} holds {math.prod(shape)} pixels, "
                         f"but X has {originals.shape[1]} features.")
    reconstructions = np.asarray(autoencoder.inverse_transform(autoencoder.transform(head)),
                                 dtype=float)
    if axes is None:
        _, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.5), squeeze=False,
                               layout="constrained")
    low, high = originals.min(), originals.max()
    for row, images in enumerate((originals, reconstructions)):
        for axis, image in zip(axes[row], images):
            axis.imshow(image.reshape(shape), cmap="gray", vmin=low, vmax=high)
            axis.set_xticks([])
            axis.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    return axes


def _square_shape(n_features):
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(
            f"X has {n_features} features, which is not a square number of pixels; "
            "pass image_shape=(height, width)."
        )
    return side, side


__all__ = ["confusion_figsize", "plot_confusion_matrix", "plot_history", "plot_reconstructions"]
