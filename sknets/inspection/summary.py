"""Model summaries in the layout Keras users know: layers, shapes, parameters."""

import numbers

import pandas as pd
import torch
from torch import nn

from ._fitted import fitted_network

COLUMNS = ["layer", "type", "output_shape", "parameters", "trainable"]


class ModelSummary(pd.DataFrame):
    """A :func:`summary` table: one row per layer, printed as Keras prints it.

    The columns are ``layer`` (the module's name inside the network),
    ``type`` (its class), ``output_shape`` (``(None, ...)``, ``None`` for
    the batch), ``parameters`` (every value the layer holds, trainable or
    not) and ``trainable`` (how many of them the optimizer updates).
    ``str()`` gives the Keras-style text with the totals; the totals count
    each parameter once, even if layers share it.

    Derived frames (slices, sorts) are plain DataFrames.
    """

    _metadata = ["title", "total_params", "trainable_params"]

    @property
    def _constructor(self):
        return pd.DataFrame

    @property
    def non_trainable_params(self):
        """Values that are not trained: frozen weights, batch-norm statistics."""
        return self.total_params - self.trainable_params

    def to_text(self):
        """The Keras-style text table with the totals."""
        rows = [(f"{layer} ({kind})", _shape_text(shape), f"{params:,}")
                for layer, kind, shape, params in
                zip(self["layer"], self["type"], self["output_shape"], self["parameters"])]
        head = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
                  for i in range(3)]
        rule = "=" * (sum(widths) + 6)

        def line(cells):
            return (f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   "
                    f"{cells[2]:>{widths[2]}}")

        text = [f'Model: "{self.title}"', rule, line(head), rule]
        text += [line(row) for row in rows]
        text += [rule, f"Total params: {self.total_params:,}",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.non_trainable_params:,}", rule]
        return "\n".join(text)

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return self.to_text()

    def _repr_html_(self):
        totals = (f"<p>Total params: {self.total_params:,} &middot; Trainable params: "
                  f"{self.trainable_params:,} &middot; Non-trainable params: "
                  f"{self.non_trainable_params:,}</p>")
        frame = pd.DataFrame(self).assign(output_shape=self["output_shape"].map(_shape_text))
        return f"<p>Model: {self.title}</p>" + frame.to_html(index=False) + totals


def summary(estimator_or_module, input_size=None):
    """Layers, output shapes and parameter counts of a network, with totals.

    Parameter counts follow Keras: a layer's count includes its
    floating-point buffers (batch normalisation's running mean and
    variance), which are not trainable; integer bookkeeping buffers
    (``num_batches_tracked``) are not counted.

    Parameters
    ----------
    estimator_or_module : fitted sknets estimator, Pipeline or torch.nn.Module
        A fitted network (its ``module_`` is summarised), a pipeline ending
        in one, or any torch module.
    input_size : int or tuple of int, default=None
        Shape of one input sample (without the batch dimension), used to
        find each layer's output shape by running one batch of zeros
        through the network in eval mode. By default a fitted estimator's
        ``n_features_in_``, or a module's first linear layer's
        ``in_features``; when neither is known the output shapes are left
        empty.

    Returns
    -------
    ModelSummary
        A DataFrame with columns ``layer``, ``type``, ``output_shape``,
        ``parameters``, ``trainable``; ``print()`` shows the Keras-style text
        and the attributes ``total_params``, ``trainable_params`` and
        ``non_trainable_params`` hold the totals.

    Examples
    --------
    >>> import torch
    >>> from sknets import summary
    >>> table = summary(torch.nn.Sequential(
    ...     torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)))
    >>> table.total_params
    79510
    >>> print(table)  # doctest: +NORMALIZE_WHITESPACE
    Model: "Sequential"
    =====================================
    Layer (type)   Output Shape   Param #
    =====================================
    0 (Linear)     (None, 100)     78,500
    1 (ReLU)       (None, 100)          0
    2 (Linear)     (None, 10)       1,010
    =====================================
    Total params: 79,510
    Trainable params: 79,510
    Non-trainable params: 0
    =====================================
    """
    if isinstance(estimator_or_module, nn.Module):
        module, title = estimator_or_module, type(estimator_or_module).__name__
    else:
        network = fitted_network(estimator_or_module)
        module, title = network.module_, type(network).__name__
        if input_size is None:
            input_size = network._input_width()
    if input_size is None:
        input_size = _first_in_features(module)
    layers = [(name, layer) for name, layer in module.named_modules()
              if not any(True for _ in layer.children()) or _holds_values(layer)]
    shapes = _output_shapes(module, [layer for _, layer in layers], input_size)
    rows = []
    for name, layer in layers:
        values = _layer_values(layer, recurse=False)
        rows.append((name or title, type(layer).__name__, shapes.get(id(layer)),
                     sum(v.numel() for v, _ in values),
                     sum(v.numel() for v, trainable in values if trainable)))
    table = ModelSummary(pd.DataFrame(rows, columns=COLUMNS))
    table.title = title
    unique = {id(v): (v, t) for v, t in _layer_values(module, recurse=True)}
    table.total_params = int(sum(v.numel() for v, _ in unique.values()))
    table.trainable_params = int(sum(v.numel() for v, t in unique.values() if t))
    return table


def count_parameters(estimator_or_module):
    """Total number of values in a network, counted as :func:`summary` does.

    Examples
    --------
    >>> import torch
    >>> from sknets.inspection.summary import count_parameters
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    if not isinstance(estimator_or_module, nn.Module):
        estimator_or_module = fitted_network(estimator_or_module).module_
    unique = {id(v): v for v, _ in _layer_values(estimator_or_module, recurse=True)}
    return int(sum(v.numel() for v in unique.values()))


def _layer_values(layer, recurse):
    """(tensor, trainable) of a layer's parameters and floating-point buffers."""
    values = [(p, p.requires_grad) for p in layer.parameters(recurse=recurse)]
    values += [(b, False) for b in layer.buffers(recurse=recurse) if b.is_floating_point()]
    return values


def _holds_values(layer):
    return bool(_layer_values(layer, recurse=False))


def _first_in_features(module):
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            return layer.in_features
    return None


def _output_shapes(module, layers, input_size):
    """``{id(layer): output shape with None for the batch}`` from one dry run."""
    if input_size is None:
        return {}
    size = (input_size,) if isinstance(input_size, numbers.Integral) else tuple(input_size)
    shapes = {}

    def record(layer, inputs, output):
        shapes[id(layer)] = _batchless_shape(output)

    hooks = [layer.register_forward_hook(record) for layer in layers]
    modes = {layer: layer.training for layer in module.modules()}
    reference = next(iter(module.parameters()), None)
    device = reference.device if reference is not None else "cpu"
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((2, *size), device=device))
    finally:
        for hook in hooks:
            hook.remove()
        for layer, mode in modes.items():
            layer.training = mode
    return shapes


def _batchless_shape(output):
    if isinstance(output, torch.Tensor):
        return (None, *output.shape[1:])
    if isinstance(output, (tuple, list)):
        return [_batchless_shape(item) for item in output]
    return None


def _shape_text(shape):
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


__all__ = ["ModelSummary", "count_parameters", "summary"]
