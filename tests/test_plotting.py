"""Figures: training curves, reconstructions, confusion matrices (Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sknets import MLPClassifier, MLPRegressor, plot_history, plot_reconstructions  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(small_network):
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = MLPClassifier(max_epochs=12, early_stopping=True, **small_network).fit(
        X, names[y[:600]])
    return clf, X, names[y[:600]]


def _curve(axis, label):
    return next(line for line in axis.get_lines() if line.get_label() == label)


def _stars(axis):
    return [line for line in axis.get_lines() if line.get_marker() == "*"]


def test_plot_history_draws_train_and_validation_with_best_epoch(fitted):
    clf = fitted[0]
    ax = plot_history(clf)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    train, valid = _curve(ax, "train"), _curve(ax, "validation")
    for line, column in ((train, "train_loss"), (valid, "valid_loss")):
        assert len(line.get_xdata()) == clf.n_epochs_
        np.testing.assert_allclose(line.get_ydata(), clf.history_[column])
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, clf.n_epochs_ + 1))
    (star,) = _stars(ax)
    assert list(star.get_xdata()) == [clf.best_epoch_]
    assert star.get_ydata()[0] == pytest.approx(clf.history_["valid_loss"].min())
    assert star.get_label() == f"best epoch ({clf.best_epoch_})"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train", "validation", f"best epoch ({clf.best_epoch_})"]


def test_plot_history_one_axes_per_metric(fitted):
    clf = fitted[0]
    loss_ax, accuracy_ax = plot_history(clf, metrics=("loss", "accuracy"))
    assert accuracy_ax.get_ylabel() == "accuracy"
    assert loss_ax.figure is accuracy_ax.figure
    # accuracy is recorded on the validation set only
    curves = [line for line in accuracy_ax.get_lines() if line.get_marker() != "*"]
    assert [line.get_label() for line in curves] == ["validation"]
    np.testing.assert_allclose(curves[0].get_ydata(), clf.history_["valid_accuracy"])
    assert list(_stars(accuracy_ax)[0].get_xdata()) == [clf.best_epoch_]


def test_plot_history_overlays_named_estimators(fitted, small_network):
    clf, X, y = fitted
    other = MLPClassifier(max_epochs=5, early_stopping=True,
                          **{**small_network, "lr": 3e-2}).fit(X, y)
    ax = plot_history({"slow": clf, "fast": other})
    lines = [line for line in ax.get_lines() if line.get_marker() != "*"]
    assert len(lines) == 4
    assert [len(line.get_xdata()) for line in lines] == [12, 12, 5, 5]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-", "--"]
    assert [list(star.get_xdata()) for star in _stars(ax)] == [
        [clf.best_epoch_], [other.best_epoch_]]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["slow", "fast", "train", "validation", "best epoch"]


def test_plot_history_without_validation_marks_the_training_curve(small_network):
    rng = np.random.RandomState(0)
    X = rng.rand(120, 3)
    reg = MLPRegressor(max_epochs=7, patience=None, **small_network).fit(X, X.sum(1))
    fig, ax = plt.subplots()
    assert plot_history([reg], ax=ax) is ax
    (train,) = [line for line in ax.get_lines() if line.get_marker() != "*"]
    (star,) = _stars(ax)
    assert len(train.get_xdata()) == 7
    assert star.get_ydata()[0] == pytest.approx(reg.history_["train_loss"].min())
    with pytest.raises(ValueError, match="No estimator recorded 'r2'.*validation set"):
        plot_history(reg, metrics="r2")


def test_plot_history_accepts_a_pipeline_and_rejects_other_estimators(fitted, small_network):
    clf, X, y = fitted
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(max_epochs=3, **small_network)).fit(X, y)
    assert len(plot_history(pipe).get_lines()[0].get_xdata()) == 3
    with pytest.raises(TypeError, match="not an sknets network"):
        plot_history(StandardScaler().fit(X))
    with pytest.raises(ValueError, match="2 Axes for 1 metrics"):
        plot_history(clf, ax=plt.subplots(1, 2)[1])


def test_plot_reconstructions_with_pca():
    X = load_digits().data / 16
    pca = PCA(n_components=12).fit(X)
    axes = plot_reconstructions(pca, X, n=6)
    assert axes.shape == (2, 6)
    assert axes[0, 0].get_ylabel() == "original"
    assert axes[1, 0].get_ylabel() == "reconstruction"
    rebuilt = pca.inverse_transform(pca.transform(X[:6]))
    for i in range(6):
        np.testing.assert_allclose(axes[0, i].get_images()[0].get_array(), X[i].reshape(8, 8))
        np.testing.assert_allclose(axes[1, i].get_images()[0].get_array(),
                                   rebuilt[i].reshape(8, 8))
    # both rows use the originals' grey scale
    assert axes[1, 0].get_images()[0].get_clim() == (X[:6].min(), X[:6].max())


def test_plot_reconstructions_shapes():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 12)
    pca = PCA(n_components=3).fit(X)
    with pytest.raises(ValueError, match="not a square.*image_shape"):
        plot_reconstructions(pca, X)
    axes = plot_reconstructions(pca, X, n=50, image_shape=(3, 4))
    assert axes.shape == (2, 30)  # n is capped by the rows of X
    assert axes[0, 0].get_images()[0].get_array().shape == (3, 4)
    with pytest.raises(ValueError, match="holds 10 pixels"):
        plot_reconstructions(pca, X, image_shape=(2, 5))


def test_confusion_matrix_display_on_string_labels(fitted):
    clf, X, y = fitted
    display = ConfusionMatrixDisplay.from_estimator(clf, X, y)
    np.testing.assert_array_equal(display.display_labels, np.sort(np.unique(y)))
    np.testing.assert_array_equal(display.confusion_matrix,
                                  confusion_matrix(y, clf.predict(X), labels=clf.classes_))
    assert display.confusion_matrix.trace() / len(y) == pytest.approx(clf.score(X, y))
    order = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    ordered = ConfusionMatrixDisplay.from_estimator(clf, X, y, labels=order)
    assert [t.get_text() for t in ordered.ax_.get_xticklabels()] == order


def test_plot_history_of_repeated_runs_draws_mean_and_band(small_network):
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    settings = {**small_network, "hidden_layers": (8,), "max_epochs": 4}
    runs = [MLPClassifier(**{**settings, "random_state": seed}).fit(X, y) for seed in (0, 1, 2)]
    ax = plot_history({"8 units": runs})
    (train,) = [line for line in ax.get_lines() if line.get_marker() != "*"]
    mean = np.mean([run.history_["train_loss"] for run in runs], axis=0)
    np.testing.assert_allclose(train.get_ydata(), mean)
    (band,) = ax.collections
    (path,) = band.get_paths()
    lows = np.min([run.history_["train_loss"] for run in runs], axis=0)
    assert np.isclose(path.vertices[:, 1].min(), lows.min())
    (star,) = _stars(ax)
    assert star.get_xdata()[0] == sorted(run.best_epoch_ for run in runs)[1]
    assert "range of the runs" in [t.get_text() for t in ax.get_legend().get_texts()]


FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]


class _Predictor:
    """A classifier stand-in: predicts the true class except for a few errors."""

    classes_ = np.arange(10)

    def predict(self, X):
        predicted = np.asarray(X).copy()
        predicted[::7] = (predicted[::7] + 3) % 10
        return predicted


def _overlaps(labels, renderer):
    """Pairs of neighbouring tick labels whose text boxes overlap.

    Labels drawn level are compared by their window extents. Slanted
    labels are parallel strips as high as their text (its unrotated
    extent); two of them are apart when the distance between their anchors,
    across the text direction, is at least that height.
    """
    labels = [label for label in labels if label.get_text()]
    angle = np.deg2rad(labels[0].get_rotation())
    if angle == 0:
        boxes = [label.get_window_extent(renderer) for label in labels]
        return [(a, b) for a, b in zip(boxes, boxes[1:]) if a.overlaps(b)]
    found = []
    for a, b in zip(labels, labels[1:]):
        height = max(renderer.get_text_width_height_descent(
            label.get_text(), label.get_fontproperties(), ismath=False)[1]
            for label in (a, b))
        (xa, ya), (xb, yb) = (label.get_transform().transform(label.get_position())
                              for label in (a, b))
        across = abs(-(xb - xa) * np.sin(angle) + (yb - ya) * np.cos(angle))
        if across < height:
            found.append((a.get_text(), b.get_text()))
    return found


def test_confusion_matrix_tick_labels_do_not_overlap_for_fashion_mnist():
    from sknets.inspection import plot_confusion_matrix

    y = np.repeat(np.arange(10), 30)
    ax = plot_confusion_matrix(_Predictor(), y, y, display_labels=FASHION_NAMES)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert [t.get_text() for t in ax.get_xticklabels()] == FASHION_NAMES
    assert not _overlaps(ax.get_xticklabels(), renderer)
    assert not _overlaps(ax.get_yticklabels(), renderer)
    # every label lies inside the figure: none is cut off
    frame = fig.bbox
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        box = label.get_window_extent(renderer)
        assert box.x0 >= frame.x0 - 1 and box.y0 >= frame.y0 - 1 and box.x1 <= frame.x1 + 1
    assert fig.get_size_inches()[0] * fig.dpi > 500  # room for ten names


def test_confusion_matrix_shows_errors_and_normalises_rows():
    from sknets.inspection import plot_confusion_matrix

    y = np.repeat(np.arange(10), 30)
    ax = plot_confusion_matrix(_Predictor(), y, y)
    counts = confusion_matrix(y, _Predictor().predict(y))
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert texts == {(i, j): str(counts[i, j]) for i, j in zip(*np.nonzero(counts))}
    diagonal, errors = ax.get_images()
    assert diagonal.get_cmap().name == "Blues" and errors.get_cmap().name == "Reds"
    assert errors.get_array().count() == np.count_nonzero(counts - np.diag(np.diag(counts)))
    ax = plot_confusion_matrix(_Predictor(), y, y, normalize=True)
    rows = np.zeros(10)
    for text in ax.texts:
        rows[round(text.get_position()[1])] += float(text.get_text())
    np.testing.assert_allclose(rows, 1, atol=0.03)
