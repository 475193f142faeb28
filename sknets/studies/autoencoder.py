"""Study ``autoencoder``: code sizes of an autoencoder, next to PCA."""

import matplotlib.pyplot as plt

from ..autoencoder import AutoencoderTransformer
from ..inspection import compare, plot_history, plot_reconstructions
from .registry import register
from .steps import (display_table, first_runs, fit_all, pca_reconstruction_error,
                    report_comparison, report_models)


@register("autoencoder", "Autoencoder code sizes",
          small=dict(hidden_layers=(), lr=1e-2, batch_size=64, max_epochs=60, dropout=0.0),
          full=dict(hidden_layers=(), lr=1e-3, batch_size=1000, max_epochs=15, dropout=0.1))
def run(study, data, settings, report):
    """Autoencoders input → code (ReLU) → input (sigmoid) trained with Adam on
    the mean squared reconstruction error, for several code sizes: training and
    validation loss, reconstructions of test images, and the test error next to
    PCA with as many components."""
    sizes = (4, 8, 16, 32) if data.small else (64, 128, 256, 512)
    models = {f"code {size}": AutoencoderTransformer(
        **study.params(data, settings, code_size=size, code_activation="relu",
                       output_activation="sigmoid"))
        for size in sizes}
    runs = fit_all(models, data, settings, "autoencoder")
    models = first_runs(runs)

    report.section("Training curves", "Mean squared reconstruction error by epoch.")
    axis = plot_history(runs, "loss")
    axis.set_ylabel("loss (mean squared error)")
    band = (" Lines are the mean of the runs; the band spans the lowest to the highest."
            if settings.repeats > 1 else "")
    report.figure("curves", axis.figure, "Solid: training, dashed: validation; a star marks "
                                         "the epoch whose weights each model kept." + band)

    table = compare(runs, data.X_test)
    table["pca_test_mse"] = [
        pca_reconstruction_error(data.X_train, data.X_test, size, settings.random_state)
        for size in sizes]
    repeated = (f"; mean over {settings.repeats} runs (seeds), 95% confidence interval in "
                "brackets" if settings.repeats > 1 else "")
    report.section("Test results", "Mean squared reconstruction error of the test images, "
                                   "next to PCA with as many components (fitted on the "
                                   f"same training images){repeated}.")
    report.table("test_results", table, display=display_table(table))
    report.section("Comparison")
    report_comparison(report, table, what="code size")
    report.histories(models)

    n = 10
    fig, axes = plt.subplots(1 + len(models), n, figsize=(1.1 * n, 1.2 * (1 + len(models))),
                             squeeze=False, layout="constrained")
    for row, (name, model) in enumerate(models.items(), start=1):
        plot_reconstructions(model, data.X_test, n=n, axes=axes[[0, row]])
        axes[row, 0].set_ylabel(name)
    report.section("Reconstructions", "Test images (top row) and their reconstructions "
                                      "(first run of each code size).")
    report.figure("reconstructions", fig, "Top: originals; below: one row per code size.")
    report_models(report, models)
