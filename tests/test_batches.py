"""Mini-batches: one gather each, the inputs taken once where they are the targets."""

import torch

from sknets._engine.net import BatchIterator, TensorData


def test_the_inputs_as_targets_are_gathered_once():
    X = torch.rand(50, 8)
    index = torch.tensor([3, 1, 4])
    inputs, (targets, weight) = TensorData(X, X).batch(index)
    assert targets is inputs and weight is None
    assert torch.equal(inputs, X[index])
    inputs, (targets, _) = TensorData(X, X.clone()).batch(index)  # equal, not the same
    assert targets is not inputs and torch.equal(targets, inputs)


def test_shuffled_batches_cover_every_row_once_per_epoch():
    X = torch.arange(97.0).unsqueeze(1)
    data = TensorData(X, torch.arange(97))
    iterator = BatchIterator(data, 8, shuffle=True, generator=torch.Generator().manual_seed(0),
                             no_single=True)
    batches = list(iterator)
    assert len(batches) == len(iterator) == 12  # the last row joins the batch before
    assert len(batches[-1][0]) == 9
    rows = torch.cat([X_batch[:, 0] for X_batch, _ in batches])
    assert sorted(rows.tolist()) == list(range(97))
    assert all(torch.equal(X_batch[:, 0].long(), y) for X_batch, (y, _) in batches)
