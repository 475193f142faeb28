"""Sparse inputs: a CSR matrix whose mini-batches are densified one at a time.

A wide sparse matrix (text, one-hot features by the ten thousand) may not
fit in memory dense. :class:`SparseData` keeps it as a CSR matrix and
serves the training loop the same batches as ``TensorData`` does for the
dense array: the same rows in the same order (the batch order comes from
the same generator), each batch densified into a float32 tensor only when
it is used. Training on it gives the same model as training on the dense
array. Evaluation passes read it in batches of at most
``EVAL_BATCH_BYTES`` once densified; prediction does the same
(:func:`dense_chunks`).

What it costs: one CSR row gather and one ``toarray`` per batch, on the
CPU, instead of an ``index_select`` on the device.
"""

import numpy as np
import torch

from .resources import even_chunk

EVAL_BATCH_BYTES = 64 * 2**20


def rows_per_chunk(n_features, budget=EVAL_BATCH_BYTES):
    """Rows of a float32 batch of ``n_features`` columns that fit in ``budget`` bytes (>= 1).

    Examples
    --------
    >>> from sknets._engine.sparse import rows_per_chunk
    >>> rows_per_chunk(50_000)
    335
    """
    return max(1, budget // (4 * max(1, n_features)))


def dense_chunks(X, device):
    """The rows of the sparse matrix ``X`` as float32 tensors on ``device``, chunk by chunk.

    Each chunk holds at most :data:`EVAL_BATCH_BYTES` once dense; the
    chunks differ by one row at most (:func:`~sknets._engine.resources.even_chunk`).
    """
    size = even_chunk(X.shape[0], rows_per_chunk(X.shape[1]))
    for start in range(0, X.shape[0], size):
        yield _dense(X[start:start + size], device)


def _dense(rows, device):
    return torch.from_numpy(rows.toarray().astype(np.float32, copy=False)).to(device)


class SparseData(torch.utils.data.Dataset):
    """A CSR matrix of inputs with targets and sample weights as device tensors.

    The interface of ``TensorData``: ``len``, :meth:`batch`, ``device`` and
    ``eval_batch_size`` (rows of an evaluation batch, chosen so that a
    densified batch stays within :data:`EVAL_BATCH_BYTES`).

    Parameters
    ----------
    X : scipy.sparse.csr_matrix or csr_array of float32
    y, sample_weight : torch.Tensor or None
    device : torch.device or str

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from sknets._engine.sparse import SparseData
    >>> data = SparseData(sp.eye(4, format="csr", dtype="float32"), torch.arange(4), None, "cpu")
    >>> X, (y, weight) = data.batch(torch.tensor([2, 0]))
    >>> X.tolist(), y.tolist(), weight
    ([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]], [2, 0], None)
    """

    def __init__(self, X, y=None, sample_weight=None, device="cpu"):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self._device = torch.device(device)
        self.eval_batch_size = rows_per_chunk(X.shape[1])

    @property
    def device(self):
        return self._device

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, i):  # for skorch utilities; the training loop never calls it
        return _dense(self.X[i:i + 1], self._device)[0], (None if self.y is None else self.y[i])

    def batch(self, index):
        """The batch at ``index`` (a slice or an index tensor), its inputs densified."""
        if isinstance(index, slice):
            rows = self.X[index]
            take = lambda t: None if t is None else t[index]  # noqa: E731
        else:
            rows = self.X[index.cpu().numpy()]
            take = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return _dense(rows, self._device), (take(self.y), take(self.sample_weight))


__all__ = ["EVAL_BATCH_BYTES", "SparseData", "dense_chunks", "rows_per_chunk"]
