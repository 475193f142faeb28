"""Compute resources of a network: its torch device and its CPU threads.

scikit-learn runs a search's fits through joblib, in loky worker processes,
in threads, or on a Dask cluster. A fit must use what its worker was given
and no more: torch computes with OpenMP threads (MKL or OpenBLAS inside torch
follow them), and NumPy/SciPy keep BLAS thread pools of their own. joblib's
loky workers and Dask's nanny limit these pools through ``OMP_NUM_THREADS``
and friends, ``threadpoolctl.threadpool_limits`` limits them in-process, and
:func:`thread_budget` reads those limits.
"""

import contextlib
import functools
import os
import re
import threading
import time

import joblib
import torch
from joblib.parallel import get_active_backend
from threadpoolctl import ThreadpoolController

from .._process import LARGE_BATCH_BYTES, keep_freed_memory


def resolve_device(device):
    """The torch device a network runs on for the ``device`` parameter.

    Parameters
    ----------
    device : str
        "auto" (CUDA when torch finds a CUDA device, else CPU), "cpu",
        "cuda" or any torch device string such as "cuda:1".

    Returns
    -------
    device : str

    Raises
    ------
    ValueError
        If a CUDA device is asked for and torch finds none.

    Examples
    --------
    >>> from sknets._engine.resources import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch finds no CUDA device; "
            "use device='cpu' or device='auto' (set_params(device='cpu') on a "
            "fitted or unpickled estimator)."
        )
    return device


def move_net(net, device):
    """Move a skorch net's module, criterion and optimizer state to ``device``.

    Used when a fitted estimator is asked to run elsewhere than where it was
    trained (``set_params(device=...)``, or a model unpickled on a machine
    without the training device). A no-op when the net is already there.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets import MLPClassifier
    >>> from sknets._engine.resources import move_net
    >>> clf = MLPClassifier((4,), max_epochs=1).fit(np.eye(3), [0, 1, 1])
    >>> move_net(clf.net_, "cpu").device
    'cpu'
    """
    if torch.device(net.device) == torch.device(device):
        return net
    net.device = device
    net.module_.to(device)
    net.criterion_.to(device)
    # load_state_dict casts the state (Adam's moments, ...) to its
    # parameters' device, which module_.to has just changed in place.
    net.optimizer_.load_state_dict(net.optimizer_.state_dict())
    return net


@functools.cache
def _thread_pools():
    # Scanning the loaded libraries costs ~20 ms; the pools that matter
    # (torch's OpenMP, NumPy's BLAS) are loaded once sknets is imported.
    return ThreadpoolController()


@functools.cache
def _cpu_quota():
    # joblib.cpu_count() reads the cgroup files at every call (~40 µs); a
    # container's CPU quota does not change during a process.
    return joblib.cpu_count()


def free_cores(busy):
    """CPUs that ``busy`` threads of other programs (:func:`busy_cores`) leave free.

    The machine's CPUs (``os.cpu_count()``) less ``busy``, not this
    process's (:func:`cpu_count`): Linux counts the running threads of
    ``/proc/loadavg`` over the whole machine, and inside a container whose
    quota allows fewer CPUs than its host has, that is the host's count of
    threads, spread over the host's CPUs. Callers take the least of this
    and their own budget.

    Examples
    --------
    >>> import os
    >>> from sknets._engine.resources import free_cores
    >>> free_cores(1) == (os.cpu_count() or 1) - 1
    True
    """
    return (os.cpu_count() or 1) - busy


def cpu_count():
    """The CPUs this process may run on: ``joblib.cpu_count()`` (CPU affinity, cgroup quotas).

    The quota is read once per process, the affinity at every call.

    Examples
    --------
    >>> import joblib
    >>> from sknets._engine.resources import cpu_count
    >>> cpu_count() == joblib.cpu_count()
    True
    """
    try:
        return max(1, min(_cpu_quota(), len(os.sched_getaffinity(0))))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return _cpu_quota()


def _in_joblib_worker_thread():
    """Whether this is a worker thread of joblib's threading backend."""
    backend, _ = get_active_backend()
    nested = (getattr(backend, "nesting_level", 0) or 0) >= 1
    # loky and multiprocessing run their tasks in the main thread of a
    # worker process; only thread-based workers share one process.
    return nested and threading.current_thread() is not threading.main_thread()


# Below this much arithmetic per training step, a second thread gains
# nothing even on an idle machine: on 2 cores, 784-100-10 at batch 64
# (3.1e7 operations a step) took 1.08 of its one-thread time on two threads.
SMALL_STEP_FLOPS = 4e7

# Where the fused step computes its large products with oneDNN
# (onednn_products: twice MKL's speed there), steps from this much to
# SMALL_STEP_FLOPS run on two threads (at most). On 2 AMD cores with
# AVX-512, fits of such steps forced onto two threads took 0.83-0.96 of
# their one-thread time (784-64-10 at batch 100, 784-32-10 at 256,
# 784-200-10 at 32, 784-100-10 at 48 and 64, 784-40-10 at 128; paired
# medians of 8-10 alternated fits), and of steps below it 0.88-1.06; default
# fits of 784-100-10 at batch 64 took 0.86 of their time under the rule
# before (8 pairs), of 784-64-10 at batch 100 1.00 (the fit's own timing
# of its steps found one and two threads even there).
ONEDNN_SMALL_STEP_FLOPS = 2e7

# Below this many samples a step, its operations are too thin to share,
# however wide the network: on 2 cores, two threads took 1.09-1.23 of the
# one-thread time for 784-512-256-10 at batch 16 (5e7 operations a step)
# and 1.12 for 784-1024-1024-10 at batch 16 (1.8e8), against 0.83 and 0.67
# at batch 32.
SMALL_BATCH = 32

# Between SMALL_STEP_FLOPS and this, a step is short enough (about a
# millisecond) that its threads wait for each other several times per
# millisecond: a core another program takes costs it much. On 2 cores,
# 784-100-10 at batch 100 (4.8e7 operations a step) took 0.81-0.90 of its
# one-thread time on two idle cores, and 1.5 times it when two CPU-bound
# programs started 0.2 s into the fit and its threads did not follow them.
# Such a step runs on several threads only where the thread count cannot
# change the results, so that the fit can follow the load (follow_load).
SHORT_STEP_FLOPS = 1e8

# A matrix product of a training step below this many floating-point
# operations runs on one thread (small_product), whatever the step's
# budget: waking a second thread costs more than it saves. On 2 cores
# (AVX-512), a 10 x 100 by 100 x 100 product (the transposed output layer
# of 784-100-10 at batch 100, 2e5 operations) took 3.5 us on one thread
# against 8.3 on two, and 100 x 50 by 50 x 50 (5e5) 6.3 against 8.9; at
# 2e6 the two counts were even, and 32 x 784 by 784 x 100 (5e6) took 51
# against 45 us.
SMALL_PRODUCT_FLOPS = 2e6

# Rows of an evaluation pass's chunk at most (a prediction, a validation pass).
EVAL_CHUNK = 65_536

# How often a fit that follows the load looks at it (seconds).
LOAD_LOOK_SECONDS = 0.01

# A fit that follows the load also times its steps, since a core can be
# slow with nothing in /proc to say so: a virtual machine whose host runs
# another tenant on the same physical core, a container that cannot see its
# host's load. It times them in windows of at least TRIAL_STEPS steps and
# TRIAL_PHASE_SECONDS, or TRIAL_PHASE_LIMIT seconds (the first step after a
# change left out), and keeps a recent mean step per thread count (each
# window halves the weight of those before). Now and then one window runs
# on the count it is not using (one thread, or the count the load allows):
# a probe, ended after TRIAL_EARLY_STEPS steps where it is already clearly
# the slower (by TRIAL_MARGIN). One thread is used while its mean step is
# below TRIAL_MARGIN times the other count's. The first probe starts
# TRIAL_FIRST_SECONDS into training; each later one TRIAL_SPACING times the
# last probe's duration after it, or TRIAL_RETRY times where the steps have
# become slower than the margin allows since.
TRIAL_STEPS = 8
TRIAL_EARLY_STEPS = 2
TRIAL_PHASE_SECONDS = 0.05
TRIAL_PHASE_LIMIT = 0.2
TRIAL_MARGIN = 0.9
TRIAL_FIRST_SECONDS = 0.05
TRIAL_RETRY = 10
TRIAL_SPACING = 50


def training_flops(module, batch_size):
    """Floating-point operations of one training step of ``module`` on ``batch_size`` samples.

    About 6 per parameter and sample: 2 for the forward pass, 4 for the
    backward pass (the gradients of the inputs and of the weights).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import training_flops
    >>> training_flops(torch.nn.Linear(784, 100), batch_size=100)
    47100000
    """
    return 6 * batch_size * sum(p.numel() for p in module.parameters())


def small_product(threads, product, *args, flops, **kwargs):
    """``product(*args, **kwargs)``, on one thread if ``flops`` is below ``SMALL_PRODUCT_FLOPS``.

    ``threads`` is the calling thread's torch thread count
    (``torch.get_num_threads()``), read once per step by the caller; the
    count is restored after the product. ``flops``: the product's
    floating-point operations, ``2 * m * k * n`` for an ``m x k`` by
    ``k x n`` product. For CPU tensors; on another device pass
    ``threads=1``, which changes nothing.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import small_product
    >>> a, b = torch.ones(10, 100), torch.ones(100, 100)
    >>> small_product(torch.get_num_threads(), torch.mm, a, b, flops=2 * 10 * 100 * 100)[0, 0]
    tensor(100.)
    """
    if not small_on_one_thread(threads, flops):
        return product(*args, **kwargs)
    return on_one_thread(threads, product, *args, **kwargs)


def small_on_one_thread(threads, flops):
    """Whether a step on ``threads`` threads computes a product of ``flops`` operations on one.

    The products of fewer than ``SMALL_PRODUCT_FLOPS`` operations, where
    the step runs on several threads: the rule of :func:`small_product`.

    Examples
    --------
    >>> from sknets._engine.resources import small_on_one_thread
    >>> small_on_one_thread(2, 2 * 100 * 100 * 10), small_on_one_thread(2, 2 * 100 * 784 * 100)
    (True, False)
    """
    return threads > 1 and flops < SMALL_PRODUCT_FLOPS


def on_one_thread(threads, function, *args, **kwargs):
    """``function(*args, **kwargs)`` on one torch thread, then ``threads`` threads again.

    ``threads``: the calling thread's torch thread count, read by the
    caller (once per step, in a training step).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import on_one_thread
    >>> on_one_thread(torch.get_num_threads(), torch.get_num_threads)
    1
    """
    torch.set_num_threads(1)
    try:
        return function(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


@functools.cache
def onednn_products():
    """Whether training steps compute their large matrix products with oneDNN instead of MKL.

    True on AMD CPUs where torch carries oneDNN (``torch.ops.mkldnn``):
    there, torch's MKL runs float32 products at about half the speed of
    oneDNN's, which torch also ships (a 1000 x 784 by 784 x 100 product on
    two AVX-512 cores: 748 against 373 us; on one core 1464 against
    680 us). Elsewhere MKL stays. Decided once per process from the CPU and
    torch's build, never from a timing, so a machine always trains the same
    way; the fused step uses it (:func:`linear`) for products of at least
    ``SMALL_PRODUCT_FLOPS`` operations on CPU tensors.

    Examples
    --------
    >>> from sknets._engine.resources import onednn_products
    >>> onednn_products() in (True, False)
    True
    """
    if (_LINEAR_POINTWISE is None or not torch.backends.mkldnn.is_available()
            or _cpu_vendor() != "AuthenticAMD"):
        return False
    generator = torch.Generator().manual_seed(0)
    x, weight = torch.rand(8, 16, generator=generator), torch.rand(4, 16, generator=generator)
    try:
        return torch.allclose(linear(x, weight), x @ weight.t())
    except (AttributeError, RuntimeError):  # a build without the operator
        return False


def _cpu_vendor():
    """The CPU's vendor as Linux names it (``AuthenticAMD``, ``GenuineIntel``), or None."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read()
    except OSError:  # not Linux
        return None
    match = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` with oneDNN (:func:`onednn_products`); any strides.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import linear
    >>> linear(torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4)).shape
    torch.Size([2, 4])
    """
    return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")


# oneDNN's linear operator, resolved once (None in a build without it).
_LINEAR_POINTWISE = getattr(getattr(torch.ops.mkldnn, "_linear_pointwise", None), "default",
                            None)


def onednn_computes(onednn, flops):
    """Whether a training step computes a product of ``flops`` operations with oneDNN.

    Where ``onednn`` (:func:`onednn_products`, for CPU tensors) and the
    product takes at least ``SMALL_PRODUCT_FLOPS`` operations: the rule of
    :func:`step_product`, which batched stacked groups follow too.

    Examples
    --------
    >>> from sknets._engine.resources import onednn_computes
    >>> onednn_computes(True, 2 * 100 * 784 * 100), onednn_computes(True, 2 * 100 * 100 * 10)
    (True, False)
    """
    return onednn and flops >= SMALL_PRODUCT_FLOPS


def step_product(threads, x, weight, bias=None, *, out=None, onednn=False):
    """``x @ weight.T (+ bias)`` as a training step computes it; into ``out`` if given.

    With oneDNN (:func:`linear`) where ``onednn`` (:func:`onednn_products`,
    for CPU tensors) and the product takes at least ``SMALL_PRODUCT_FLOPS``
    operations; elsewhere with torch's ``addmm`` or ``mm`` (MKL), on one
    thread if it is small (:func:`small_product`, whose ``threads`` this is).
    ``out`` is returned, holding the product; oneDNN's product, which has
    no ``out=``, is put in it by :func:`holding`.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import step_product
    >>> step_product(1, torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4))[0, 0]
    tensor(3.)
    """
    flops = 2 * x.shape[0] * x.shape[1] * weight.shape[0]
    if onednn_computes(onednn, flops):
        result = linear(x, weight, bias)
        return result if out is None else holding(out, result)
    if bias is None:
        return small_product(threads, torch.mm, x, weight.t(), out=out, flops=flops)
    return small_product(threads, torch.addmm, bias, x, weight.t(), out=out, flops=flops)


def holding(out, result):
    """``out``, holding ``result`` (of its shape): a product computed without ``out=``.

    oneDNN's products have no ``out=``: ``out``, where it is a tensor of
    its own (not a view) with the result's strides and dtype, takes the
    result's memory instead of a copy of it (``Tensor.set_``); otherwise
    the result is copied into it. Either way ``out`` stays the same tensor
    object, so lists holding it (an optimizer kernel's) read the new
    values; views taken of it before no longer share its memory.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import holding
    >>> out = torch.empty(2, 3)
    >>> holding(out, torch.ones(2, 3)) is out, out.sum().item()
    (True, 6.0)
    """
    if out._base is None and out.stride() == result.stride() and out.dtype == result.dtype:
        return out.set_(result)
    return out.copy_(result)


def keep_memory_for(data, batch_size):
    """Let glibc reuse freed memory where ``data``'s batches are large; whether it does now.

    The first training on batches of at least ``LARGE_BATCH_BYTES`` of
    inputs (a ``TensorData`` on the CPU) sets glibc's allocator thresholds
    for the process (:func:`sknets._process.keep_freed_memory`, which may
    decline: another C library, the user's own tuning); later calls do
    nothing. Smaller batches leave glibc as it is.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.net import TensorData
    >>> from sknets._engine.resources import keep_memory_for
    >>> keep_memory_for(TensorData(torch.zeros(100, 784)), batch_size=100)
    False
    """
    global _memory_kept
    X = getattr(data, "X", None)
    if _memory_kept is not None or not isinstance(X, torch.Tensor) or X.device.type != "cpu":
        return bool(_memory_kept)
    if min(batch_size, len(X)) * X[:1].numel() * X.element_size() >= LARGE_BATCH_BYTES:
        _memory_kept = keep_freed_memory()
    return bool(_memory_kept)


_memory_kept = None  # not tried yet; then whether glibc took the thresholds


def prediction_threads(n_threads, module, n_samples):
    """The ``n_threads`` of a prediction of ``module`` on ``n_samples`` rows.

    ``n_threads`` as given, except 1 where ``n_threads`` is None, the
    forward pass needs less than ``SMALL_STEP_FLOPS`` floating-point
    operations (about 2 per weight and row: 250 rows of a 784-100-10
    network) and the thread count cannot change the results
    (:func:`thread_invariant`): a second thread only slows such a pass
    down (a row of 784-100-10: 0.86 against 0.56 ms). A larger prediction
    keeps None, the whole budget (:func:`thread_budget`).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import prediction_threads
    >>> prediction_threads(2, torch.nn.Linear(784, 100), n_samples=1)
    2
    """
    forward = training_flops(module, n_samples) / 3  # 2 of a training step's 6 per weight
    if n_threads is not None or forward >= SMALL_STEP_FLOPS or not thread_invariant():
        return n_threads
    return 1


def thread_budget(n_threads=None, work=None, batch_size=None, products=(), onednn=False):
    """Number of CPU threads a fit or a prediction in the calling thread may use.

    Parameters
    ----------
    n_threads : int or None, default=None
        An explicit count, returned as it is. ``None`` takes the most
        restrictive of: torch's own setting (``torch.get_num_threads()``),
        the OpenMP limits in force in this thread (``OMP_NUM_THREADS``, which
        joblib's loky workers set to ``cpu_count // n_jobs`` and Dask's
        nanny to 1, or ``threadpoolctl.threadpool_limits``), and the CPUs
        this process may run on (``joblib.cpu_count()``, which honours CPU
        affinity and cgroup quotas). In a worker thread of joblib's
        "threading" backend, where fits share one process, it is 1.
    work : float, default=None
        Floating-point operations of one training step (see
        :func:`training_flops`). With ``n_threads=None``, a step of less
        than ``SMALL_STEP_FLOPS`` runs on one thread (with ``onednn``, of
        less than ``ONEDNN_SMALL_STEP_FLOPS``, and up to
        ``SMALL_STEP_FLOPS`` on at most two). A larger one takes
        the budget above, or the CPUs that other programs leave free at
        that moment if fewer (:func:`free_cores`), but only where the thread count
        cannot change the results (:func:`thread_invariant` of
        ``products``); such a fit then follows the load as it trains
        (:func:`follow_load`). Elsewhere
        the choice depends on the problem and the CPUs only, so that the
        same ``random_state`` gives the same results either way, and a
        step of less than ``SHORT_STEP_FLOPS`` runs on one thread.
    batch_size : int, default=None
        Samples of one training step. With ``n_threads=None``, a step on
        fewer than ``SMALL_BATCH`` samples runs on one thread, whatever
        its work.
    products : sequence of (int, int, int), default=()
        The ``(m, k, n)`` shapes of the step's matrix products
        (:func:`step_products`), each of which must give the same bits on
        one thread and on two before the load may choose the threads.
    onednn : bool, default=False
        Whether the step computes its large products with oneDNN
        (:func:`onednn_products`; the fused step of a plain MLP on a CPU:
        ``sknets._engine.fused.onednn_step``).

    Returns
    -------
    n_threads : int

    Examples
    --------
    >>> from threadpoolctl import threadpool_limits
    >>> from sknets._engine.resources import thread_budget
    >>> with threadpool_limits(limits=1):
    ...     thread_budget()
    1
    >>> thread_budget(3)
    3
    """
    return _budgets(n_threads, work, batch_size, products=products, onednn=onednn)[0]


def _budgets(n_threads, work, batch_size=None, look=False, products=(), onednn=False):
    """``(threads now, threads on an idle machine or None)``: the second where the load is followed.

    ``look``: without ``work``, count the busy cores too (a :class:`ThreadLimit`).
    ``products``: the step's matrix products (:func:`step_products`);
    ``onednn``: whether the step computes its large ones with oneDNN.
    """
    if n_threads is not None:
        return int(n_threads), None  # a NumPy int trips threadpoolctl
    small = ONEDNN_SMALL_STEP_FLOPS if onednn else SMALL_STEP_FLOPS
    if (_in_joblib_worker_thread() or (work is not None and work < small)
            or (batch_size is not None and batch_size < SMALL_BATCH)):
        return 1, None
    openmp = [pool["num_threads"] for pool in _thread_pools().info()
              if pool["user_api"] == "openmp"]
    budget = max(1, min([torch.get_num_threads(), cpu_count(), *openmp]))
    if work is not None and work < SMALL_STEP_FLOPS:
        budget = min(budget, 2)  # measured on two cores: no step this short gains from more
    if budget == 1:
        return 1, None
    if work is None:
        # Work outside a training loop (the input check, a prediction): where
        # the count cannot change the results, a block of work leaves the
        # cores that other programs keep busy to them, from one look at the load.
        if not look or not thread_invariant():
            return budget, None
        return max(1, min(budget, free_cores(busy_cores(looks=1)))), None
    if not thread_invariant(products):
        return (1 if work < SHORT_STEP_FLOPS else budget), None
    # Threads of a fit that share a core with a busy program wait for it at
    # every operation: a busy machine trains faster on fewer threads.
    return max(1, min(budget, free_cores(busy_cores()))), budget


def thread_invariant(products=()):
    """Whether torch's CPU matrix products give the same bits on one thread and on two.

    True where MKL runs in its strict reproducibility mode
    (``MKL_CBWR=AUTO,STRICT``, which ``import sknets`` sets when torch is not
    loaded yet), a product that rounds differently on two threads without
    it gives the same bits (checked once per process, a few milliseconds),
    and so does each of ``products``: a fit whose step computes those
    products then gives results that do not depend on its thread count.
    The mode does not cover every shape on every CPU: on an AMD EPYC host
    with AVX-512, products of 2 to 9 rows (a layer of a few units, a
    batch of a few samples) split between two threads round otherwise.
    Nor does it cover torch's own kernels: batch normalisation sums its
    batch's statistics in another order on two threads.

    Parameters
    ----------
    products : iterable of tuple, default=()
        What a step computes (:func:`step_products`), each checked once per
        process on random numbers: ``(m, k, n)``, a product of an ``m x k``
        by a ``k x n`` matrix, in its four memory layouts;
        ``("batch_norm", rows, width)``, batch normalisation in training
        (outputs, gradients, running statistics).

    Examples
    --------
    >>> from sknets._engine.resources import thread_invariant
    >>> thread_invariant() in (True, False)
    True
    >>> thread_invariant([(100, 784, 100)]) == thread_invariant()
    True
    """
    return _strict_products() and all(
        _batch_norm_same_on_two_threads(*entry[1:]) if entry[0] == "batch_norm"
        else _same_on_two_threads(*entry) for entry in products)


@functools.cache
def _strict_products():
    if "STRICT" not in os.environ.get("MKL_CBWR", "").upper() or cpu_count() < 2:
        return False
    # A shape whose product MKL splits between threads in another order
    # without the mode (100 x 784 by 784 x 100, the first layer of a small MLP).
    return _same_on_two_threads(100, 784, 100, layouts=((False, True),), depth=784)


# The inner dimension of a product checked for a step is cut to this (the
# product of a batch of 1,000 by 784 inputs would take 40 ms to check): the
# mode keeps a long sum's order (the check above), and what it does not
# cover on some CPUs depends on the result's shape.
_CHECKED_DEPTH = 64
_LAYOUTS = ((False, False), (False, True), (True, False), (True, True))


@functools.lru_cache(maxsize=4096)
def _same_on_two_threads(m, k, n, layouts=_LAYOUTS, depth=_CHECKED_DEPTH):
    """Whether ``A @ B`` (``m x k`` by ``k x n``, each maybe transposed) has the same bits on 1 and 2 threads."""
    generator = torch.Generator().manual_seed(0)
    k = min(k, depth)
    before = torch.get_num_threads()
    try:
        for a_transposed, b_transposed in layouts:
            a = (torch.rand(k, m, generator=generator).t() if a_transposed
                 else torch.rand(m, k, generator=generator))
            b = (torch.rand(n, k, generator=generator).t() if b_transposed
                 else torch.rand(k, n, generator=generator))
            products, fused = [], []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                products.append(torch.mm(a, b))
                if onednn_products():  # the fused step's large products
                    fused.append(linear(a, b.t()))
            if not torch.equal(*products) or fused and not torch.equal(*fused):
                return False
    finally:
        torch.set_num_threads(before)
    return True


@functools.lru_cache(maxsize=256)
def _batch_norm_same_on_two_threads(rows, width):
    """Whether training batch normalisation of ``rows x width`` gives the same bits on 1 and 2 threads."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(rows, width, generator=generator, requires_grad=True)
    grad_out = torch.rand(rows, width, generator=generator)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            layer = torch.nn.BatchNorm1d(width)
            out = layer(x)
            grads = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad_out)
            results.append((out.detach(), *grads, layer.running_mean, layer.running_var))
    finally:
        torch.set_num_threads(before)
    return all(map(torch.equal, *results))


def even_chunk(n_rows, limit):
    """Rows per chunk of a pass over ``n_rows`` rows in chunks of at most ``limit``, evened out.

    ``ceil(n_rows / ceil(n_rows / limit))``: the chunks differ by one row at
    most, so that none is a remainder of a few rows, whose products some
    CPUs round otherwise on another thread count (:func:`thread_invariant`).

    Examples
    --------
    >>> from sknets._engine.resources import even_chunk
    >>> even_chunk(65_540, limit=65_536), even_chunk(1_000, limit=65_536)
    (32770, 1000)
    """
    return -(-n_rows // max(1, -(-n_rows // limit)))


def step_products(module, batch_size, n_samples=None, eval_rows=None, eval_limit=None):
    """The ``(m, k, n)`` shapes of the matrix products of a training step of ``module``.

    For each linear layer of ``in`` inputs and ``out`` outputs, on a batch
    of ``rows``: the forward product (``rows x in`` by ``in x out``, or
    transposed, ``out x in`` by ``in x rows``, as the fused step computes
    narrow outputs), the weights' gradient (``out x rows`` by
    ``rows x in``) and the inputs' gradient (``rows x out`` by
    ``out x in``, except in the first layer), for ``rows`` the batch size
    and, where ``n_samples`` leaves a smaller last batch, its size too
    (and, for a last batch of one sample, the batch it joins under batch
    normalisation). With ``eval_rows``, the rows of an evaluation pass (a
    validation set, in chunks of at most ``eval_limit`` rows, default
    ``EVAL_CHUNK``, evened out by :func:`even_chunk`), the forward products
    of its chunks too. Each batch normalisation layer adds
    ``("batch_norm", rows, width)``: its statistics are sums over the batch.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import step_products
    >>> step_products(torch.nn.Linear(784, 10), batch_size=100)
    ((10, 100, 784), (10, 784, 100), (100, 784, 10))
    """
    rows = {batch_size}
    if n_samples is not None and n_samples % batch_size:
        rows.add(n_samples % batch_size)
        if n_samples % batch_size == 1 and n_samples > batch_size:
            rows.add(batch_size + 1)  # batch norm's loop joins it to the batch before
    shapes, norms = set(), set()
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm1d):
            norms |= {("batch_norm", r, layer.num_features) for r in rows}
    linears = [layer for layer in module.modules() if isinstance(layer, torch.nn.Linear)]
    for depth, layer in enumerate(linears):
        i, o = layer.in_features, layer.out_features
        for r in rows:
            shapes |= {(r, i, o), (o, i, r), (o, r, i)}
            if depth:  # the data needs no gradient
                shapes.add((r, o, i))
        if eval_rows:
            chunk = even_chunk(eval_rows, eval_limit or EVAL_CHUNK)
            shapes |= {(chunk, i, o), (chunk - 1, i, o)} if eval_rows % chunk else {(chunk, i, o)}
    return tuple(sorted(shapes)) + tuple(sorted(norms))


@functools.cache
def split_invariant():
    """Whether a matrix product's columns have the same bits computed together or apart.

    True where :func:`thread_invariant` holds and, on one thread, the
    product of a matrix by 200 columns gives, in each half, the bits of
    the product by those 100 columns alone: then networks stacked into one
    wide product (``stacking="batched"`` searches) compute what each
    network computes alone. MKL's strict reproducibility mode gives both.
    Checked once per process; a stacked group also checks its own first
    layers' widths, since some CPUs compute narrow products with another
    kernel (``sknets._engine.stacked._wide_product_exact``).

    Examples
    --------
    >>> from sknets._engine.resources import split_invariant
    >>> split_invariant() in (True, False)
    True
    """
    if not thread_invariant():
        return False
    generator = torch.Generator().manual_seed(1)
    a, b = torch.rand(100, 784, generator=generator), torch.rand(200, 784, generator=generator)
    with ThreadLimit(1):
        wide = torch.mm(a, b.t())
        return all(torch.equal(wide[:, half], torch.mm(a, b[half].t()))
                   for half in (slice(0, 100), slice(100, 200)))


def busy_cores(looks=3, pause=5e-4):
    """How many cores other processes keep busy now, as far as Linux tells.

    The threads that are running or ready to run (``/proc/loadavg``), less
    those of this process (``/proc/self/task``): the least of ``looks``
    looks ``pause`` seconds apart, so that a program that only passes by
    does not count (a look that finds none ends the count: 0 is the
    least). 0 where the system does not say (not Linux).

    Examples
    --------
    >>> from sknets._engine.resources import busy_cores
    >>> busy_cores() >= 0
    True
    """
    counts = []
    for look in range(looks):
        if look:
            time.sleep(pause)
        try:
            running = int(_read_proc("/proc/loadavg").split()[3].split(b"/")[0])
            # This thread is running: one means no other (the usual look, ~5 µs).
            own = running if running <= 1 else sum(
                _task_running(task) for task in os.listdir("/proc/self/task"))
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - own))
        if not counts[-1]:
            return 0  # the least a later look could give
    return min(counts)


def _read_proc(path):
    # os-level calls: a look during training reads up to five of these files,
    # and Python's open() takes 20 µs a file against 5-8 µs for these.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _task_running(task):
    try:
        # The state follows the command name, which is in parentheses.
        return _read_proc(f"/proc/self/task/{task}/stat").rpartition(b")")[2].split()[0] == b"R"
    except (OSError, IndexError):
        return False  # a thread that ended meanwhile


class _LoadFollower:
    """Sets torch's thread count of a training fit as other programs come and go.

    ``budget``: the fit's threads on an idle machine; ``threads``: those it
    starts on. Every ``LOAD_LOOK_SECONDS`` it counts the busy cores (one
    look), and changes the count when two looks in a row ask for the same
    new one, so that a program that only passes by changes nothing. Where
    the load allows several threads, it also times the training steps on
    that count and, in probes, on one thread (``TRIAL_STEPS``), and uses
    one thread while that is the faster by ``TRIAL_MARGIN``.
    """

    def __init__(self, budget, threads):
        self.budget, self.threads, self.wanted = budget, threads, threads
        self.allowed = threads  # what the load allows; self.threads is what runs
        now = time.perf_counter()
        self.next_look = now + LOAD_LOOK_SECONDS
        self._restart(now)

    def _restart(self, now):
        """Forget the step times (a new load): probe again soon."""
        self.step_seconds = {}  # threads -> recent mean step
        self.reference = None  # the mean step of the count chosen after the last probe
        self.probe_start = None  # when the running probe started, if one runs
        self.steps = _Steps(now)
        self.next_probe = self.retry = now + TRIAL_FIRST_SECONDS

    def __call__(self, timed=True):
        now = time.perf_counter()
        probing = self.probe_start is not None
        mean = self.steps.record(now, timed, self.step_seconds.get(self._other()) if probing
                                 else None)
        if mean is not None:
            self._window(now, mean)
        if now < self.next_look:
            return
        self.next_look = now + LOAD_LOOK_SECONDS
        wanted = max(1, min(self.budget, free_cores(busy_cores(looks=1))))
        if wanted != self.allowed and wanted == self.wanted:
            self.allowed = wanted
            self._restart(now)
            self._set(wanted)
        self.wanted = wanted

    def _other(self):
        return 1 if self.threads > 1 else self.allowed

    def _window(self, now, mean):
        """A window of steps on the running count ended at ``now`` with ``mean`` seconds a step."""
        known = self.step_seconds.get(self.threads)
        probe = self.probe_start is not None
        self.step_seconds[self.threads] = mean if known is None or probe else (known + mean) / 2
        self.steps = _Steps(now)
        if probe:
            self.probe_start, duration = None, now - self.probe_start
            self.next_probe = now + TRIAL_SPACING * duration
            self.retry = now + TRIAL_RETRY * duration
        elif self.allowed > 1 and (now >= self.next_probe or (
                now >= self.retry and self.reference is not None
                and TRIAL_MARGIN * self.step_seconds[self.threads] > self.reference)):
            self.probe_start = now
            self._set(self._other())
            return
        one, many = self.step_seconds.get(1), self.step_seconds.get(self.allowed)
        self._set(1 if one is not None and many is not None and one < TRIAL_MARGIN * many
                  else self.allowed)
        if probe:
            self.reference = self.step_seconds.get(self.threads)

    def _set(self, threads):
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads
            self.steps = _Steps(time.perf_counter())


class _Steps:
    """The training steps timed since ``start``, the first one left out."""

    def __init__(self, start):
        self.last, self.begin, self.count = start, None, 0

    def record(self, now, timed, other=None):
        """Count the step that ended at ``now``; the mean step once there are enough, else None.

        Enough: ``TRIAL_STEPS`` steps and ``TRIAL_PHASE_SECONDS``,
        ``TRIAL_PHASE_LIMIT`` seconds of steps, or ``TRIAL_EARLY_STEPS``
        steps slower than ``other`` (a mean step) by ``TRIAL_MARGIN``. A
        call that is not ``timed`` (a validation batch) ends no step: the
        timing starts again after it.
        """
        if not timed:
            self.last, self.begin, self.count = None, None, 0
            return None
        if self.begin is None:  # the first step after a change or a pause is left out
            self.begin = now if self.last is not None else None
            self.last = now
            return None
        self.count += 1
        seconds = now - self.begin
        mean = seconds / self.count
        if (self.count >= TRIAL_STEPS and seconds >= TRIAL_PHASE_SECONDS
                or seconds >= TRIAL_PHASE_LIMIT
                or other is not None and self.count >= TRIAL_EARLY_STEPS
                and TRIAL_MARGIN * mean > other):
            return mean
        return None


# The follower of the fit training in this thread, if its threads follow the load.
_following = threading.local()


def follow_load(training=True):
    """Let the fit training in this thread change its thread count as the load changes.

    Training loops call it at every step, and validation passes at every
    batch with ``training=False`` (not timed by trials); it costs a clock
    read, and a look at the load every ``LOAD_LOOK_SECONDS``. Inside a :class:`ThreadLimit`
    whose count was chosen by the load (``n_threads=None``, a training
    step's ``work`` given, and a thread count that cannot change the
    results: :func:`thread_invariant`), the count drops when other programs
    start keeping cores busy and rises again when they stop: threads that
    share a core with a busy program wait for it at every operation. Where
    the load allows several threads, the fit also times its steps on one
    thread against them now and then, and keeps one thread while that is
    faster (a core can be slow without a program on this machine to show
    it). A no-op everywhere else.

    Examples
    --------
    >>> from sknets._engine.resources import ThreadLimit, follow_load
    >>> with ThreadLimit(1):
    ...     follow_load()  # an explicit count: nothing to follow
    """
    follower = getattr(_following, "follower", None)
    if follower is not None:
        follower(training)


class ThreadLimit:
    """Context manager running torch and the BLAS/OpenMP pools on a thread budget.

    On entry, torch's intra-op threads in the calling thread are set to
    ``thread_budget(n_threads, work, batch_size)``, and without ``work``
    (work that is not a training loop: an input check, a prediction) to
    that less the cores other programs keep busy (one look at
    :func:`busy_cores`) where the count cannot change the results
    (:func:`thread_invariant`); in the main thread of the
    process, so are the BLAS and OpenMP thread pools that threadpoolctl finds. Those pools
    are process-wide: other threads leave them alone, since concurrent fits
    changing and restoring them would race. On exit everything is restored.

    Parameters
    ----------
    n_threads : int or None
        As in :func:`thread_budget`.
    work : float, default=None
        As in :func:`thread_budget`.
    batch_size : int, default=None
        As in :func:`thread_budget`.
    products : sequence of tuple, default=()
        As in :func:`thread_budget`.
    onednn : bool, default=False
        As in :func:`thread_budget`.

    Attributes
    ----------
    n_threads_ : int
        The budget in force on entry. Where it was chosen by the load, the
        training loop inside the block may change torch's count as the load
        changes (:func:`follow_load`).

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import ThreadLimit
    >>> with ThreadLimit(1):
    ...     torch.get_num_threads()
    1
    """

    def __init__(self, n_threads, work=None, batch_size=None, products=(), onednn=False):
        self.n_threads, self.work, self.batch_size = n_threads, work, batch_size
        self.products, self.onednn = products, onednn

    def __enter__(self):
        self.n_threads_, quiet = _budgets(self.n_threads, self.work, self.batch_size, look=True,
                                          products=self.products, onednn=self.onednn)
        # Read before limiting the pools: torch's threads are OpenMP's.
        self._torch_threads = torch.get_num_threads()
        self._pools = None
        if threading.current_thread() is threading.main_thread():
            self._pools = _thread_pools().limit(limits=self.n_threads_)
        # Set last: nothing after it can fail and leave torch's count changed.
        torch.set_num_threads(self.n_threads_)
        self._outer = getattr(_following, "follower", None)
        _following.follower = None if quiet is None else _LoadFollower(quiet, self.n_threads_)
        return self

    def __exit__(self, *exc):
        _following.follower = self._outer
        if self._pools is not None:
            self._pools.restore_original_limits()
        torch.set_num_threads(self._torch_threads)


def _flushing_denormals():
    """Whether this thread flushes subnormal floats to zero (torch offers no getter)."""
    return bool(torch.tensor(1e-39) * 1.0 == 0)


@contextlib.contextmanager
def flush_denormals():
    """Flush subnormal (denormal) floats to zero on this thread, as before on leaving.

    Adam's first moment of a weight whose gradient is always 0 (the weights
    of MNIST's blank border pixels, say) decays by ``beta1`` every step into
    the subnormal range below 1.2e-38 after about 800 steps, where x86 CPUs
    compute up to 100 times slower: the optimizer's step then costs several
    times the forward and backward passes. Flushing those values to 0
    changes nothing a float32 network can tell. torch sets the flag of the
    calling thread only, so with several threads the other threads' share of
    the work keeps the slow path. A no-op where the CPU has no such mode.

    Examples
    --------
    >>> import torch
    >>> from sknets._engine.resources import flush_denormals
    >>> with flush_denormals():
    ...     float(torch.tensor(1e-39) * 1.0)
    0.0
    """
    if _flushing_denormals() or not torch.set_flush_denormal(True):
        yield  # already flushing (the caller's setting stays), or not supported
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
