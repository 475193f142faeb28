"""Figure and table of docs/autoencoder.md: MNIST reconstructions, autoencoder vs PCA.

Trains AutoencoderTransformer on the first ``--n-train`` MNIST training
images for each code size, measures the mean squared reconstruction error on
the 10,000 test images next to PCA with as many components, prints a
Markdown table, and saves test digits above their reconstructions.

Run from the repository root::

    python docs/scripts/autoencoder_figure.py --data-home ../shared/data

``--data-home`` defaults to the environment variable ``SKNETS_DATA`` (see
``sknets.datasets.get_data_home``); the MNIST files must be there already.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.decomposition import PCA

from sknets import AutoencoderTransformer
from sknets.datasets import fetch_mnist
from sknets.studies.steps import pca_reconstruction_error

FIGURE = Path(__file__).resolve().parent.parent / "figures" / "autoencoder_reconstructions.png"

# The settings of the table's rows after the code-size sweep, at code 32:
# the Keras-style ReLU code layer, the cross-entropy loss, and the
# autoencoder study's network on 28x28 data, with a ReLU output (784 -> 64
# ReLU -> 784 ReLU, dropout 0.1, batches of 1000, 15 epochs).
VARIANTS = {
    "ReLU code layer": dict(code_activation="relu"),
    "loss='bce'": dict(loss="bce"),
    "denoising, masking 0.2": dict(noise=0.2, noise_type="masking"),
}
SHALLOW = dict(hidden_layers=(), code_size=64, code_activation="relu",
                   output_activation="relu", dropout=0.1, batch_size=1000, max_epochs=15,
                   lr=1e-3)


def fit_autoencoder(X, **params):
    start = time.perf_counter()
    ae = AutoencoderTransformer(**params).fit(X)
    return ae, time.perf_counter() - start


def pca_error(X, X_test, n_components):
    """PCA's test reconstruction error, and the seconds to fit and apply it."""
    start = time.perf_counter()
    error = pca_reconstruction_error(X, X_test, n_components)
    return error, time.perf_counter() - start


def plot_rows(rows, n_images, path):
    """Save one row of 28x28 images per ``(label, images)`` pair."""
    fig, axes = plt.subplots(len(rows), n_images, figsize=(n_images, 1.1 * len(rows)))
    for row, (label, images) in zip(axes, rows):
        for ax, image in zip(row, images):
            ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None,
                        help="folder holding mnist/ (default: $SKNETS_DATA)")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--code-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--n-threads", type=int, default=1)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args(argv)

    X, _ = fetch_mnist(subset="train", data_home=args.data_home, download_if_missing=False,
                       return_X_y=True)
    X_test, _ = fetch_mnist(subset="test", data_home=args.data_home,
                            download_if_missing=False, return_X_y=True)
    X = X[:args.n_train]
    base = dict(hidden_layers=(128,), output_activation="sigmoid", lr=1e-2,
                max_epochs=args.epochs, patience=None, random_state=0,
                n_threads=args.n_threads)

    print(f"{args.n_train} training images, {len(X_test)} test images, "
          f"{args.epochs} epochs\n")
    print("| model | code size | autoencoder test MSE | PCA test MSE | autoencoder s | PCA s |")
    print("|---|---:|---:|---:|---:|---:|")
    models = {}
    for code_size in args.code_sizes:
        ae, ae_seconds = fit_autoencoder(X, **base, code_size=code_size)
        pca_mse, pca_seconds = pca_error(X, X_test, code_size)
        models[code_size] = ae
        print(f"| 784-128-{code_size}-128-784 | {code_size} | {-ae.score(X_test):.4f} | "
              f"{pca_mse:.4f} | {ae_seconds:.1f} | {pca_seconds:.1f} |")
    for name, variant in VARIANTS.items():
        ae, seconds = fit_autoencoder(X, **{**base, "code_size": 32, **variant})
        print(f"| {name} | 32 | {-ae.score(X_test):.4f} | | {seconds:.1f} | |")
    ae, seconds = fit_autoencoder(X, **{**SHALLOW, "random_state": 0,
                                        "n_threads": args.n_threads})
    print(f"| 784-64-784, ReLU code, 15 epochs | 64 | {-ae.score(X_test):.4f} | | {seconds:.1f} | |")

    code_size = 32 if 32 in models else args.code_sizes[0]
    ae = models[code_size]
    pca = PCA(code_size, random_state=0).fit(X)
    digits = X_test[:10]
    plot_rows([("original", digits),
               (f"autoencoder\n(code {code_size})", ae.inverse_transform(ae.transform(digits))),
               (f"PCA ({code_size})", pca.inverse_transform(pca.transform(digits)))],
              len(digits), args.figure)
    print(f"\nsaved {args.figure}")


if __name__ == "__main__":
    main()
