"""A fit's training step on a GPU, captured once as a CUDA graph and replayed.

On a GPU, the step of a small MLP is bound by kernel launches, not by
arithmetic: a 784-100-10 step at batch 100 is some 30 kernels of a few
microseconds each, each launched from Python. :class:`CapturedStep` records
the whole step — the fused forward and backward pass
(:class:`~sknets._engine.fused.FusedStep`), gradient clipping and the Adam
update (:class:`~sknets._engine.net.AdamKernel`) — once as a CUDA graph, and
then launches it as one graph per batch. The batch is copied into the
graph's input buffers on the device; the data never leaves the device.

A step is captured only where replaying it does exactly what the eager step
does:

* the fit trains on CUDA (the current CUDA device), through the fused step,
  with Adam or AdamW;
* no callback listens per batch (per-batch learning rates, warm-up and
  "one_cycle", change the rate within an epoch; a user's callback may keep
  the batch);
* the environment variable ``SKNETS_CUDA_GRAPHS`` is not ``"0"``.

The first :data:`WARMUP_STEPS` steps run eagerly on a side stream, as torch
asks before a capture: they create Adam's state and let the libraries
allocate their workspaces. A batch of another size (the last of an epoch)
runs eagerly. A new learning rate (an epoch's schedule) changes the update's
arguments: the next step runs eagerly and the one after is captured again.
A capture that fails warns once and the fit trains eagerly from there.

Dropout masks come from the device's default generator, which torch
advances on every replay as on every eager step.
"""

import contextlib
import os
import warnings

import torch

WARMUP_STEPS = 3


class CudaGraph:
    """``torch.cuda.CUDAGraph`` with the three operations :class:`CapturedStep` uses."""

    def __init__(self):
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, body):
        """Record the kernels ``body()`` launches; none of them runs."""
        with torch.cuda.graph(self.graph):
            body()

    def replay(self):
        """Launch the recorded kernels."""
        self.graph.replay()

    @staticmethod
    @contextlib.contextmanager
    def warmup():
        """Run the enclosed (eager) steps on a side stream, as torch asks before a capture."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            yield
        torch.cuda.current_stream().wait_stream(stream)


# The graph type of each device type whose steps are captured.
GRAPHS = {"cuda": CudaGraph}


def enabled():
    """Whether steps are captured at all: ``SKNETS_CUDA_GRAPHS`` is not ``"0"``."""
    return os.environ.get("SKNETS_CUDA_GRAPHS", "1").strip() != "0"


class CapturedStep:
    """One fit's training step, replayed from a captured graph where it can be.

    Parameters
    ----------
    eager : callable
        ``eager(X, target, weight) -> loss``: one training step (gradients,
        clipping, update), as the fit runs it without a graph; the graph
        records the kernels one call of it launches.
    update : AdamKernel
        The fit's optimizer step; :meth:`AdamKernel.current` says whether its
        calls of the last step still hold.
    graph_type : type
        :class:`CudaGraph`, or a stand-in with the same three operations.
    batch_size : int
        The fit's batch size: the batches the graph takes (others run eagerly).

    Attributes
    ----------
    captures, replays : int
        How many times the step was captured, and replayed.
    """

    def __init__(self, eager, update, graph_type, batch_size):
        self.eager, self.update = eager, update
        self.graph_type, self.batch_size = graph_type, batch_size
        self.graph = self.calls = None
        self.inputs = self.loss = None
        self.warmed = self.captures = self.replays = 0
        self.disabled = False

    @classmethod
    def build(cls, device, eager, fused, update, batch_callbacks, batch_size):
        """A ``CapturedStep`` where the fit's steps can be captured, else None.

        ``device``: the parameters' torch device; ``fused``: the fit's
        :class:`~sknets._engine.fused.FusedStep` or None; ``update``: its
        :class:`~sknets._engine.net.AdamKernel` or None; ``batch_callbacks``:
        the callbacks that listen per batch.
        """
        device = torch.device(device)
        graph_type = GRAPHS.get(device.type)
        if (graph_type is None or not enabled() or fused is None or update is None
                or batch_callbacks):
            return None
        if device.type == "cuda" and device.index not in (None, torch.cuda.current_device()):
            return None  # a graph replays on the current device's stream
        return cls(eager, update, graph_type, batch_size)

    def __call__(self, X, target, weight=None):
        if self.disabled:
            return self.eager(X, target, weight)
        if self.warmed < WARMUP_STEPS:
            self.warmed += 1
            with self.graph_type.warmup():
                return self.eager(X, target, weight)
        if len(X) != self.batch_size:  # the last batch of an epoch
            return self.eager(X, target, weight)
        calls = self.update.current()
        if calls is None:  # the update's arguments changed: rebuilt by an eager step
            return self.eager(X, target, weight)
        if self.inputs is None:
            self._allocate(X, target, weight)
        if not self._holds(X, target, weight):
            return self.eager(X, target, weight)
        if calls is not self.calls and not self._capture(calls):
            return self.eager(X, target, weight)
        for buffer, value in zip(self.inputs, (X, target, weight)):
            if buffer is not None:
                buffer.copy_(value)
        self.graph.replay()
        self.replays += 1
        self.update.optimizer._opt_called = True  # what a learning-rate scheduler checks
        return self.loss.clone()

    def _allocate(self, X, target, weight):
        self.inputs = tuple(None if t is None else torch.empty_like(t)
                            for t in (X, target, weight))
        self.loss = torch.zeros((), device=X.device)

    def _holds(self, X, target, weight):
        """Whether the batch fits the graph's input buffers."""
        return all((buffer is None) == (value is None)
                   and (buffer is None or buffer.shape == value.shape)
                   for buffer, value in zip(self.inputs, (X, target, weight)))

    def _capture(self, calls):
        """Capture the step with the update's ``calls``; False (and a warning) if it fails.

        The eager step's update reuses ``calls`` (:meth:`AdamKernel.current`
        has just said they hold), so the graph replays them as they are.
        """
        inputs = self.inputs

        def body():
            self.loss.copy_(self.eager(*inputs))

        graph = self.graph_type()
        try:
            graph.capture(body)
        except Exception as error:  # noqa: BLE001 - any failure: train without graphs
            self.disabled = True
            self.graph = self.calls = None
            warnings.warn(f"The training step could not be captured as a CUDA graph "
                          f"({type(error).__name__}: {error}); this fit trains without one. "
                          "Set SKNETS_CUDA_GRAPHS=0 to skip the attempt.",
                          RuntimeWarning, stacklevel=2)
            return False
        self.graph, self.calls = graph, calls
        self.captures += 1
        return True
