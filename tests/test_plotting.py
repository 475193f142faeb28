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
