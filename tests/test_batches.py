"""Mini-batches: gathered a chunk at a time, the same batches as one gather each."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor
from sknets._engine import net
from sknets._engine.net import BatchIterator, TensorData
from sknets._engine.sparse import SparseData


def _batches(data, batch_size, seed, **kwargs):
    iterator = BatchIterator(data, batch_size, shuffle=True,
                             generator=torch.Generator().manual_seed(seed), **kwargs)
    return [(X.clone(), tuple(None if t is None else t.clone() for t in targets))
            for X, targets in iterator]


@pytest.mark.parametrize("n_samples, batch_size, no_single", [(1000, 32, False), (97, 8, True),
                                                              (64, 64, False)])
def test_chunks_give_the_batches_of_one_gather_each(monkeypatch, n_samples, batch_size,
                                                   no_single):
    generator = torch.Generator().manual_seed(0)
    data = TensorData(torch.rand(n_samples, 16, generator=generator),
                      torch.randint(0, 3, (n_samples,), generator=generator),
                      torch.rand(n_samples, generator=generator))
    monkeypatch.setattr(net, "CHUNK_BYTES", 0)  # one gather per batch
    alone = _batches(data, batch_size, seed=1, no_single=no_single)
    monkeypatch.setattr(net, "CHUNK_BYTES", 5 * batch_size * 16 * 4)  # five batches a gather
    assert BatchIterator(data, batch_size)._batches_per_chunk() == 5
    chunked = _batches(data, batch_size, seed=1, no_single=no_single)
    assert len(chunked) == len(alone)
    for (X1, (y1, w1)), (X2, (y2, w2)) in zip(chunked, alone):
        assert torch.equal(X1, X2) and torch.equal(y1, y2) and torch.equal(w1, w2)


def test_chunks_only_where_every_batch_starts_aligned(monkeypatch):
    monkeypatch.setattr(net, "CHUNK_BYTES", 2 ** 20)
    aligned = TensorData(torch.zeros(100, 784))  # 100 rows: 313,600 bytes, 64 x 4,900
    assert BatchIterator(aligned, 100)._batches_per_chunk() == 3
    assert BatchIterator(aligned, 10_000)._batches_per_chunk() == 1  # larger than a chunk
    # 100 rows of 13 floats: 5,200 bytes, so the second batch would start
    # 16 bytes past a multiple of 64.
    unaligned = TensorData(torch.zeros(100, 13))
    assert BatchIterator(unaligned, 100)._batches_per_chunk() == 1
    assert BatchIterator(unaligned, 16)._batches_per_chunk() > 1  # 832 bytes: 13 x 64
    # Sparse rows are densified batch by batch: no chunks.
    sparse = SparseData(sp.random(100, 784, density=0.1, format="csr", dtype=np.float32))
    assert BatchIterator(sparse, 100)._batches_per_chunk() == 1


def test_every_batch_of_a_chunk_is_aligned_as_a_tensor_of_its_own(monkeypatch):
    monkeypatch.setattr(net, "CHUNK_BYTES", 2 ** 20)
    data = TensorData(torch.rand(1000, 784), torch.zeros(1000, dtype=torch.long))
    batches = list(BatchIterator(data, 100, shuffle=True, generator=torch.Generator()))
    assert batches[0][0]._base is batches[1][0]._base  # slices of one chunk
    assert all(X.data_ptr() % 64 == 0 and X.is_contiguous() for X, _ in batches)


def test_the_inputs_as_targets_are_gathered_once():
    X = torch.rand(50, 8)
    index = torch.tensor([3, 1, 4])
    inputs, (targets, weight) = TensorData(X, X).batch(index)
    assert targets is inputs and weight is None
    assert torch.equal(inputs, X[index])


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier((24,), batch_size=20, max_epochs=3, random_state=0),
    lambda: MLPClassifier((24,), batch_size=20, max_epochs=3, dropout=0.2, random_state=0),
    lambda: MLPRegressor((24,), batch_size=20, max_epochs=3, random_state=0),
    lambda: AutoencoderTransformer(hidden_layers=(24,), code_size=4, batch_size=20,
                                   max_epochs=3, noise=0.1, random_state=0),
])
def test_fits_are_bit_for_bit_those_of_one_gather_per_batch(monkeypatch, make):
    rng = np.random.RandomState(0)
    X = rng.rand(300, 32).astype(np.float32)  # batches of 20 x 32 floats: 40 x 64 bytes
    y = (X[:, :3].sum(1) > 1.5).astype(int)
    weight = rng.uniform(0.5, 2.0, len(X))
    fit_params = {} if isinstance(make(), AutoencoderTransformer) else {"sample_weight": weight}
    target = () if isinstance(make(), AutoencoderTransformer) else (
        y if isinstance(make(), MLPClassifier) else X[:, :3] @ [1.0, -2.0, 0.5],)
    fitted = {}
    for chunk_bytes in (0, 4 * 20 * 32 * 4):
        monkeypatch.setattr(net, "CHUNK_BYTES", chunk_bytes)
        estimator = make().fit(X, *target, **fit_params)
        fitted[chunk_bytes] = [p.detach().clone() for p in estimator.net_.module_.parameters()]
        history = estimator.history_.drop(columns="seconds")
        fitted[chunk_bytes].append(history)
    (*first, first_history), (*second, second_history) = fitted.values()
    assert all(map(torch.equal, first, second))
    assert first_history.equals(second_history)
