"""Input rules every sknets estimator shares: arrays (:mod:`.arrays`) and tables (:mod:`.tables`).

Every rule about what ``X`` and ``y`` may hold lives in this package:
:mod:`sknets._input.arrays` for numeric arrays and targets,
:mod:`sknets._input.tables` for the tables the classifier and the regressor
take as they come (categorical and string columns, missing values,
standardised numeric columns).
"""

from .arrays import (as_float, check_finite_outputs, check_labels, dense_labels, encode_labels,
                     encode_outputs, fit_labels, fit_outputs, indicator_matrix, label_index,
                     output_matrix, stratify_labels, target_kind)
from .tables import TableEncoder

__all__ = [
    "TableEncoder", "as_float", "check_finite_outputs", "check_labels", "dense_labels",
    "encode_labels", "encode_outputs", "fit_labels", "fit_outputs", "indicator_matrix",
    "label_index", "output_matrix", "stratify_labels", "target_kind",
]
