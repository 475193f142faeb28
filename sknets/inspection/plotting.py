"""Figures of fitted networks: training curves and reconstructions.

Both functions draw with matplotlib and return the Axes they drew on, as
scikit-learn's displays do, so a figure can be adjusted or saved with the
usual calls. Confusion matrices are scikit-learn's
:class:`~sklearn.metrics.ConfusionMatrixDisplay`, which works directly on
sknets classifiers (string labels included)::

    ConfusionMatrixDisplay.from_estimator(clf, X_test, y_test)
"""

import math

import numpy as np

from ._fitted import fitted_network, named_estimators


def plot_history(estimator, metrics=("loss",), ax=None):
    """Plot training and validation curves against the epochs.

    For each metric, the training curve (solid) and the validation curve
    (dashed, when the network had a validation set) are drawn from the
    estimator's ``history_``; a star marks the value at ``best_epoch_``,
    the epoch whose weights the estimator kept.

    Parameters
    ----------
    estimator : estimator, list of estimators or dict of name -> estimator
        Fitted sknets networks (or pipelines / fitted searches ending in
        one). Several estimators are overlaid on the same axes, one colour
        each, named by the dict's keys or by their class names.
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

    pairs = [(name, fitted_network(est)) for name, est in named_estimators(estimator)]
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
                f"{sorted(set().union(*(_metric_names(n) for _, n in pairs)))}. "
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
    if single:
        return handles
    from matplotlib.lines import Line2D

    styles = {line.get_linestyle() for line in axis.get_lines()}
    handles += [Line2D([], [], color="grey", linestyle=style, label=label)
                for style, label in (("-", "train"), ("--", "validation")) if style in styles]
    handles.append(Line2D([], [], color="grey", linestyle="none", marker="*", markersize=11,
                          markeredgecolor="black", label="best epoch"))
    return handles


def _draw_curves(axis, network, metric, name, color):
    """Draw one network's curves of ``metric``; False if it has none.

    ``name`` is None when the network is drawn alone: its curves are then
    labelled "train" and "validation"; otherwise only the first curve
    carries the network's name (the legend explains the line styles).
    """
    history = network.history_
    epochs = history["epoch"].to_numpy()
    drawn = {}
    for split, style, label in (("train", "-", "train"), ("valid", "--", "validation")):
        column = f"{split}_{metric}"
        if column not in history or history[column].isna().all():
            continue
        if name is not None:
            label = "_nolegend_" if drawn else name
        (line,) = axis.plot(epochs, history[column].to_numpy(), linestyle=style,
                            color=color, label=label)
        drawn[split] = line
    if not drawn:
        return False
    split = "valid" if "valid" in drawn else "train"
    values = history.loc[history["epoch"] == network.best_epoch_, f"{split}_{metric}"]
    label = f"best epoch ({network.best_epoch_})" if name is None else "_nolegend_"
    axis.plot([network.best_epoch_], values.to_numpy()[:1], linestyle="none", marker="*",
              markersize=13, color=drawn[split].get_color(), markeredgecolor="black",
              label=label)
    return True


def _metric_names(network):
    names = set()
    for column in network.history_.columns:
        for split in ("train_", "valid_"):
            if column.startswith(split) and network.history_[column].notna().any():
                names.add(column[len(split):])
    return names


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


__all__ = ["plot_history", "plot_reconstructions"]
