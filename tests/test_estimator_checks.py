"""scikit-learn's own API checks over every sknets estimator."""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor

# Small, fast networks: the checks fit hundreds of times.
ESTIMATORS = [
    MLPClassifier(hidden_layers=(16,), lr=1e-2, max_epochs=30, random_state=0),
    MLPRegressor(hidden_layers=(16,), lr=1e-2, max_epochs=30, random_state=0),
    AutoencoderTransformer(hidden_layers=(8,), code_size=2, lr=1e-2, max_epochs=10,
                           random_state=0, n_threads=1),
]

# Mini-batch training cannot pass this one check: a sample of weight 2 is
# not the same as the sample repeated, because repeating it changes which
# samples share a mini-batch and the number of steps per epoch. The
# weighted loss itself is exact (see test_sample_weight_*).
_WEIGHT_REASON = ("stochastic mini-batches: repeating a sample changes batches and steps, "
                  "so weight 2 cannot equal a duplicated sample")
_WEIGHT_EQUIVALENCE = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHT_REASON,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHT_REASON,  # the same, sparse X
}
# Networks compute in float32, and a BLAS may compute one row of a product
# with another kernel than many rows (a matrix-vector product, say), which
# rounds otherwise: predicting a subset can then differ from the full batch
# in the last float32 bit (~2e-7 relative), above this check's rtol=1e-7. In
# MKL's strict mode (which import sknets sets) rows agree on some CPUs, not on
# all (an AMD EPYC host with AVX-512): the check is expected to fail where
# they do not.


def _rows_invariant():
    """Whether each row of ``bias + X @ W.T`` has the same bits computed alone."""
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(20, 16, generator=generator)
    for width in (1, 16):  # a regressor's output, a hidden layer
        weight = torch.rand(width, 16, generator=generator)
        bias = torch.rand(width, generator=generator)
        full = torch.addmm(bias, X, weight.t())
        if not all(torch.equal(full[i:i + 1], torch.addmm(bias, X[i:i + 1], weight.t()))
                   for i in range(len(X))):
            return False
    return True


_FLOAT32 = {} if _rows_invariant() else {
    "check_methods_subset_invariance": (
        "float32 matmuls: the BLAS computes one row with another kernel than many, "
        "which differs in the last bit"
    ),
}
EXPECTED_FAILURES = {
    "MLPClassifier": {**_WEIGHT_EQUIVALENCE, **_FLOAT32},
    "MLPRegressor": {**_WEIGHT_EQUIVALENCE, **_FLOAT32},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
