"""The version of sknets and of the libraries it computes with."""

__version__ = "0.2.0.dev0"


def library_versions():
    """Versions of sknets and of the libraries that shape its results.

    Written into saved models and reports so that a result can be traced to
    the software that produced it.

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> from sknets._version import library_versions
    >>> sorted(library_versions())[:3]
    ['numpy', 'pandas', 'safetensors']
    """
    import numpy
    import pandas
    import safetensors
    import sklearn
    import skorch
    import torch

    return {"sknets": __version__, "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "skorch": skorch.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__,
            "safetensors": safetensors.__version__}
