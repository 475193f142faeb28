"""Looking at fitted networks: summaries, comparisons and plots."""

from .compare import compare
from .plotting import plot_confusion_matrix, plot_history, plot_reconstructions
from .summary import count_parameters, summary

__all__ = ["compare", "count_parameters", "plot_confusion_matrix", "plot_history",
           "plot_reconstructions", "summary"]
