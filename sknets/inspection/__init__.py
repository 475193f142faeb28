"""Looking at networks: summaries, comparisons, plots and the learning-rate range test."""

from .compare import compare
from .lr_find import LRFindResult, lr_find
from .plotting import plot_confusion_matrix, plot_history, plot_reconstructions
from .summary import count_parameters, summary

__all__ = ["LRFindResult", "compare", "count_parameters", "lr_find", "plot_confusion_matrix",
           "plot_history", "plot_reconstructions", "summary"]
