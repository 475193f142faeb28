"""The ``sknets`` application: named studies, the command line and HTML reports.

The library (``sknets`` without this package) never imports it.
"""

from ._legacy import (DATASETS, STUDIES, Study, StudyData, StudySettings, default_threads, fit_and_report,
                      load_study_data, run_study)

__all__ = ["DATASETS", "STUDIES", "Study", "StudyData", "StudySettings", "default_threads", "fit_and_report",
           "load_study_data", "run_study"]
