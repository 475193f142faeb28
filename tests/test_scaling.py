"""Scaling out: small pickles, devices, thread budgets, searches on Dask."""

import itertools
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, cross_validate
from threadpoolctl import threadpool_info, threadpool_limits

from sknets import MLPClassifier
from sknets._engine import resources
from sknets._engine.resources import busy_cores, thread_budget, thread_invariant

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device; torch finds none")

needs_invariance = pytest.mark.skipif(
    not thread_invariant(), reason="torch's matrix products here round differently on 1 and "
    "2 threads (no MKL strict reproducibility mode, or fewer than 2 CPUs)")


@pytest.fixture(scope="module")
def digits784():
    """2,000 random 784-pixel 'images' with 10 labels: a 784-100-10 shape."""
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(2000, 784)).astype(np.float32)
    y = rng.randint(0, 10, size=2000)
    return X, y


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _optimizer_state_bytes(net):
    return _nbytes(v for state in net.optimizer_.state.values() for v in state.values()
                   if isinstance(v, torch.Tensor))


@pytest.mark.parametrize("keeps_state", [False, True])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_pickle_holds_weights_once_and_no_data(digits784, early_stopping, keeps_state):
    X, y = digits784
    clf = MLPClassifier((100,), max_epochs=2, early_stopping=early_stopping,
                        warm_start=keeps_state, random_state=0).fit(X, y)
    blob = pickle.dumps(clf)

    weights = _nbytes(clf.module_.parameters())
    assert weights == (784 * 100 + 100 + 100 * 10 + 10) * 4
    state = _optimizer_state_bytes(clf.net_)
    assert state >= 2 * weights  # Adam's two moments
    expected = weights + (state if keeps_state else 0)
    assert expected <= len(blob) < 1.2 * expected

    # Each weight matrix is stored exactly once.
    first_layer = clf.module_[0].weight.detach().numpy().tobytes()
    assert blob.count(first_layer[:4096]) == 1
    # No training or validation sample, no label sequence.
    for row in (0, 1, len(X) // 2, len(X) - 1):
        assert X[row].tobytes() not in blob
    assert np.asarray(y[:200], dtype=np.int64).tobytes() not in blob


def test_unpickled_estimator_shares_one_module_and_predicts_the_same(digits784):
    X, y = digits784
    clf = MLPClassifier((32,), max_epochs=2, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.module_ is loaded.net_.module_
    assert loaded.net_.module is loaded.net_.module_
    assert not loaded.net_.optimizer_.state  # dropped: nothing continues from it
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # The live estimator keeps its optimizer state.
    assert clf.net_.optimizer_.state


def _continue(estimator, X, y, partial):
    return estimator.partial_fit(X, y) if partial else estimator.fit(X, y)


@pytest.mark.parametrize("partial", [False, True], ids=["warm_start", "partial_fit"])
def test_training_continues_identically_after_pickling(digits784, partial):
    X, y = digits784[0][:600], digits784[1][:600]
    clf = MLPClassifier((32,), max_epochs=2, warm_start=not partial, random_state=0)
    _continue(clf, X, y, partial)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.net_.optimizer_.state
    _continue(clf, X, y, partial)
    _continue(loaded, X, y, partial)
    np.testing.assert_array_equal(loaded.history_["train_loss"], clf.history_["train_loss"])
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def _pretend_trained_on_cuda(clf):
    # Only the device recorded in the pickle matters for loading; the
    # tensors themselves are CPU tensors on a machine without CUDA.
    clf.net_.device = "cuda"
    blob = pickle.dumps(clf)
    clf.net_.device = "cpu"
    return blob


def test_model_trained_on_cuda_loads_on_cpu_with_auto(digits784, monkeypatch):
    X, y = digits784
    clf = MLPClassifier((16,), max_epochs=1, device="auto", random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    blob = _pretend_trained_on_cuda(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="trained on 'cuda'.*device='auto' it runs on the CPU"):
        loaded = pickle.loads(blob)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_model_trained_on_cuda_with_device_cuda_needs_cpu_set_explicitly(digits784, monkeypatch):
    X, y = digits784
    clf = MLPClassifier((16,), max_epochs=1, random_state=0).fit(X, y)
    expected = clf.predict(X)
    clf.set_params(device="cuda")
    blob = _pretend_trained_on_cuda(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match=r"set_params\(device='cpu'\)"):
        loaded = pickle.loads(blob)
    with pytest.raises(ValueError, match=r"no CUDA device.*set_params\(device='cpu'\)"):
        loaded.predict(X)
    with pytest.raises(ValueError, match="no CUDA device"):
        loaded.fit(X, y)
    np.testing.assert_array_equal(loaded.set_params(device="cpu").predict(X), expected)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_data_moves_to_the_device_once_per_fit_not_per_batch(device, monkeypatch):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(400, 6)).astype(np.float32), rng.randint(0, 2, 400)
    moves = []
    to = torch.Tensor.to

    def counting_to(tensor, *args, **kwargs):
        moves.append(1)
        return to(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    counts = []
    for batch_size in (100, 10):  # 4 and 40 batches per epoch
        moves.clear()
        MLPClassifier((8,), batch_size=batch_size, max_epochs=3, device=device,
                      random_state=0).fit(X, y)
        counts.append(len(moves))
    assert counts[0] == counts[1]
    # X and y once, the module's 4 parameters once, one batch order per epoch.
    assert counts[0] <= 2 + 4 + 3


@needs_cuda
def test_cuda_end_to_end(digits784):
    X, y = digits784
    clf = MLPClassifier((32,), max_epochs=2, device="cuda", random_state=0).fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    loaded = pickle.loads(pickle.dumps(clf))
    assert next(loaded.module_.parameters()).is_cuda
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    on_cpu = pickle.loads(pickle.dumps(clf)).set_params(device="cpu")
    np.testing.assert_allclose(on_cpu.predict_proba(X), proba, atol=1e-5)


class ThreadRecorder(MLPClassifier):
    """Records the torch and BLAS thread counts in force while it trains."""

    # Only the moment of the call matters: inside the thread limits of training.
    def _criterion(self):
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        self.fit_threads_ = (torch.get_num_threads(), max(blas))
        self.fit_pid_ = os.getpid()
        return super()._criterion()


@pytest.mark.slow  # starts loky worker processes
def test_fits_in_joblib_worker_processes_use_their_share_of_cores(blobs):
    X, y = blobs
    # What loky gives each of n_jobs workers: OMP_NUM_THREADS and friends set
    # to cpu_count // n_jobs, unless the parent's environment already sets them.
    n_jobs = 2
    share = int(os.environ.get("OMP_NUM_THREADS", max(joblib.cpu_count() // n_jobs, 1)))
    share = min(share, joblib.cpu_count())
    with parallel_config(backend="loky"):
        result = cross_validate(ThreadRecorder((8,), max_epochs=2, random_state=0), X, y,
                                cv=2, n_jobs=n_jobs, return_estimator=True)
    # (torch threads, BLAS threads) during each fit.
    assert [est.fit_threads_ for est in result["estimator"]] == [(share, share)] * 2
    # ... in worker processes, not in this one.
    assert all(est.fit_pid_ != os.getpid() for est in result["estimator"])


def test_fits_in_joblib_worker_threads_use_one_torch_thread_each(blobs):
    X, y = blobs
    before = torch.get_num_threads()
    with parallel_config(backend="threading"):
        result = cross_validate(ThreadRecorder((8,), max_epochs=2, random_state=0), X, y,
                                cv=2, n_jobs=2, return_estimator=True)
    assert [est.fit_threads_[0] for est in result["estimator"]] == [1, 1]
    assert torch.get_num_threads() == before


def test_thread_budget_follows_limits_and_is_restored(blobs):
    X, y = blobs
    before = torch.get_num_threads()
    clf = ThreadRecorder((8,), max_epochs=1, random_state=0)
    with threadpool_limits(limits=1):
        assert clf.fit(X, y).fit_threads_ == (1, 1)
    assert clf.set_params(n_threads=2).fit(X, y).fit_threads_ == (2, 2)
    assert thread_budget() == min(before, joblib.cpu_count())
    assert torch.get_num_threads() == before


@pytest.mark.slow  # real MNIST on a Dask cluster of worker processes
def test_grid_search_on_a_dask_cluster_matches_n_jobs_1(mnist_small, dask_client):
    X, y = mnist_small[0][:3000], mnist_small[1][:3000]
    grid = {"hidden_layers": [(16,), (32,), (64, 32)]}

    def search():
        # One thread in both runs: here a fit would get 2, on a worker 1, and
        # matrix products summed in another order differ in the last bits
        # (~1e-7 in the probabilities), which can flip a prediction.
        return GridSearchCV(MLPClassifier(max_epochs=2, lr=3e-3, batch_size=100, n_threads=1,
                                          random_state=0), grid, cv=3, refit=False)

    from dask.distributed import get_task_stream

    local = search().fit(X, y)
    with get_task_stream(dask_client) as stream, parallel_config(backend="dask"):
        on_dask = search().fit(X, y)
    assert {task["worker"] for task in stream.data} == set(dask_client.scheduler_info()["workers"])
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(on_dask.cv_results_["split0_test_score"],
                                  local.cv_results_["split0_test_score"])


def test_small_training_steps_run_on_one_thread_and_large_ones_on_the_budget():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 784)), np.arange(200) % 10
    # 784-100-10 at batch 20: 9.5e6 operations a step; 784-512-256-10 at batch 100: 3.3e8.
    small = ThreadRecorder((100,), batch_size=20, max_epochs=1, random_state=0).fit(X, y)
    large = ThreadRecorder((512, 256), batch_size=100, max_epochs=1, random_state=0).fit(X, y)
    assert small.fit_threads_[0] == 1
    assert large.fit_threads_[0] == thread_budget()
    # An explicit n_threads is always obeyed.
    assert small.set_params(n_threads=2).fit(X, y).fit_threads_[0] == 2
    # Steps on few samples run on one thread, however wide the network.
    thin = ThreadRecorder((512, 256), batch_size=resources.SMALL_BATCH - 1, max_epochs=1,
                          random_state=0).fit(X, y)
    assert thin.fit_threads_[0] == 1
    assert thread_budget(None, work=1e9, batch_size=resources.SMALL_BATCH - 1) == 1
    assert thread_budget(None, work=1e9, batch_size=resources.SMALL_BATCH) == thread_budget()


@pytest.mark.parametrize("onednn", [False, True])
def test_short_steps_take_two_threads_where_onednn_computes_their_products(monkeypatch, onednn):
    from sknets._engine import fused

    if thread_budget() < 2:
        pytest.skip("one thread at most here: nothing to choose")
    monkeypatch.setattr(fused, "onednn_products", lambda: onednn)
    # Where the count could change the results, such steps run on one thread.
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 784)), np.arange(200) % 10
    # 784-100-10 at batch 50: 2.4e7 operations a step, between the two thresholds.
    fit = ThreadRecorder((100,), batch_size=50, max_epochs=1, random_state=0).fit(X, y)
    assert fit.fit_threads_[0] == (min(2, thread_budget()) if onednn else 1)
    # Batch normalisation trains through autograd (MKL's products): one thread.
    normalised = ThreadRecorder((100,), batch_size=50, batch_norm=True, max_epochs=1,
                                random_state=0).fit(X, y)
    assert normalised.fit_threads_[0] == 1
    work = (resources.ONEDNN_SMALL_STEP_FLOPS + resources.SMALL_STEP_FLOPS) / 2
    assert thread_budget(None, work=work, onednn=True) == min(2, thread_budget())
    assert thread_budget(None, work=work) == 1
    assert thread_budget(None, work=resources.ONEDNN_SMALL_STEP_FLOPS / 2, onednn=True) == 1
    assert thread_budget(None, work=resources.SMALL_STEP_FLOPS, onednn=True) == thread_budget()
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): False)
    assert thread_budget(None, work=work, onednn=True) == 1


def test_small_predictions_run_on_one_thread_where_that_changes_no_result(digits784,
                                                                          monkeypatch):
    quiet = thread_budget()
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to choose")
    X, y = digits784
    clf = MLPClassifier((100,), max_epochs=1, random_state=0).fit(X[:300], y[:300])
    seen = []
    clf.module_.register_forward_pre_hook(lambda *args: seen.append(torch.get_num_threads()))
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    monkeypatch.setattr(resources, "busy_cores", _Load([0]))  # an idle machine
    # 784-100-10: 2 x 79,510 operations a row; 4e7 at 252 rows.
    clf.predict_proba(X[:1])
    clf.predict_proba(X[:1000])
    assert seen == [1, quiet]
    # An explicit count is obeyed; where the count could change the results, so is the budget.
    clf.set_params(n_threads=2).predict(X[:1])
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): False)
    clf.set_params(n_threads=None).predict(X[:1])
    assert seen[2:] == [2, quiet]


def test_work_outside_training_leaves_busy_cores_where_the_count_changes_no_result(
        monkeypatch):
    quiet = thread_budget()
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to leave")
    cores = os.cpu_count()  # the machine's CPUs, over which Linux counts busy threads
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    load = _Load([cores])  # every core busy with other programs
    monkeypatch.setattr(resources, "busy_cores", load)
    with resources.ThreadLimit(None) as limit:
        assert limit.n_threads_ == torch.get_num_threads() == 1
    assert load.looks == 1  # one look, not three
    assert thread_budget() == quiet  # the budget itself does not look
    with resources.ThreadLimit(2):  # an explicit count is obeyed
        assert torch.get_num_threads() == 2
    # Where the count could change the results, the load plays no part.
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): False)
    with resources.ThreadLimit(None) as limit:
        assert limit.n_threads_ == quiet
    assert load.looks == 1


def test_short_steps_use_threads_only_where_the_fit_can_follow_the_load(monkeypatch):
    quiet = thread_budget()
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to choose")
    short = (resources.SMALL_STEP_FLOPS + resources.SHORT_STEP_FLOPS) / 2
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    assert thread_budget(None, work=short) == quiet
    # Where the thread count could change the results the load cannot be
    # followed, and a core taken mid-fit costs a short step much: one thread.
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): False)
    assert thread_budget(None, work=short) == 1
    assert thread_budget(None, work=resources.SHORT_STEP_FLOPS) == quiet


class _Load:
    """A stand-in for ``busy_cores``: the counts it returns, look after look."""

    def __init__(self, counts):
        self.counts, self.looks = list(counts), 0
        self.threads = []  # torch's thread count at each look

    def __call__(self, *args, **kwargs):
        count = self.counts[min(self.looks, len(self.counts) - 1)]
        self.looks += 1
        self.threads.append(torch.get_num_threads())
        return count


def test_threads_follow_the_load_during_a_fit(monkeypatch):
    quiet = thread_budget()
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to follow")
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    monkeypatch.setattr(resources, "LOAD_LOOK_SECONDS", 0.0)  # a look at every step
    cores = os.cpu_count()  # the machine's CPUs, over which Linux counts busy threads
    # Idle at the start, then a program that only passes by (one look), then
    # all cores busy for three looks, then idle again.
    load = _Load([0, 0, cores, 0, cores, cores, cores, 0, 0, 0])
    monkeypatch.setattr(resources, "busy_cores", load)
    seen = []
    with resources.ThreadLimit(None, work=1e9) as limit:
        assert limit.n_threads_ == quiet
        for _ in range(9):
            resources.follow_load()
            seen.append(torch.get_num_threads())
    # Two looks in a row must agree before the count changes.
    assert seen == [quiet, quiet, quiet, quiet, 1, 1, 1, quiet, quiet]
    assert torch.get_num_threads() == thread_budget()  # restored on leaving
    # Outside such a block, and under an explicit count, nothing changes.
    monkeypatch.setattr(resources, "busy_cores", _Load([cores]))
    before = torch.get_num_threads()
    resources.follow_load()
    with resources.ThreadLimit(2, work=1e9):
        resources.follow_load()
        resources.follow_load()
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


class _Clock:
    """A stand-in for the ``time`` module: a clock that steps advance by their cost."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _train(clock, steps, cost, timed=True):
    """``steps`` calls of follow_load, each after a step of ``cost[threads]`` seconds."""
    seen = []
    for _ in range(steps):
        clock.now += cost[torch.get_num_threads()]
        resources.follow_load(timed)
        seen.append(torch.get_num_threads())
    return seen


@pytest.fixture
def quiet_clock(monkeypatch):
    """An idle machine whose fits may follow the load, on a fake clock."""
    if thread_budget() < 2:
        pytest.skip("one thread at most here: nothing to time")
    clock = _Clock()
    monkeypatch.setattr(resources, "time", clock)
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    monkeypatch.setattr(resources, "busy_cores", lambda *args, **kwargs: 0)
    return clock


def test_a_fit_keeps_its_threads_where_they_are_faster_after_one_short_probe(quiet_clock):
    many = thread_budget()
    with resources.ThreadLimit(None, work=1e9):
        # Steps of 1 ms on the budget, 1.6 ms on one thread (a quiet machine).
        seen = _train(quiet_clock, 400, {1: 1.6e-3, many: 1e-3})
    # Probes of one thread: one step left out, then TRIAL_EARLY_STEPS clearly
    # slower ones, and far apart (TRIAL_SPACING times their own duration).
    runs = [len(list(run)) for threads, run in itertools.groupby(seen) if threads == 1]
    assert runs and set(runs) == {1 + resources.TRIAL_EARLY_STEPS}
    assert seen.count(1) / len(seen) < 0.05
    assert seen[-1] == many


def test_a_fit_moves_to_one_thread_where_its_threads_are_slower_than_one(quiet_clock):
    # A core slow with nothing in /proc to show it: two threads take 3 ms a
    # step, one 1 ms. After the first probe the fit trains on one thread,
    # and when the cores are fast again a later probe brings the threads back.
    many = thread_budget()
    with resources.ThreadLimit(None, work=1e9):
        seen = _train(quiet_clock, 300, {1: 1e-3, many: 3e-3})
        first = seen.index(1)
        assert first * 3e-3 < 0.1  # the first probe, early in training
        assert set(seen[first:]) == {1}
        seen = _train(quiet_clock, 3000, {1: 1e-3, many: 0.5e-3})
        assert seen[-1] == many
    assert torch.get_num_threads() == thread_budget()  # restored on leaving


def test_validation_batches_are_not_timed_as_training_steps(quiet_clock):
    # Validation batches of 50 ms on one thread, 5 ms on the budget: were
    # they timed, one thread would look ten times slower than it is.
    many = thread_budget()
    with resources.ThreadLimit(None, work=1e9):
        seen = []
        for _ in range(40):
            seen += _train(quiet_clock, 20, {1: 1e-3, many: 3e-3})
            _train(quiet_clock, 3, {1: 50e-3, many: 5e-3}, timed=False)
    assert seen[-1] == 1


@needs_invariance
@pytest.mark.parametrize("search", [False, True], ids=["fit", "stacked search"])
def test_a_fit_that_follows_the_load_gives_the_results_of_a_fit_on_one_thread(
        digits784, monkeypatch, search):
    from sknets.model_selection import GridSearchCV

    X, y = digits784
    X, y = X[:1000], y[:1000]
    monkeypatch.setattr(resources, "LOAD_LOOK_SECONDS", 0.0)
    cores = os.cpu_count()  # the machine's CPUs, over which Linux counts busy threads
    # Idle, busy, idle, busy ... every few steps: the count moves during training.
    load = _Load(([0] * 3 + [cores] * 3) * 40)

    if search:  # MKL's products: where fits use oneDNN, batched groups train the exact way
        from sknets._engine import fused, stacked

        for module in (resources, fused, stacked):
            monkeypatch.setattr(module, "onednn_products", lambda: False)

    def fit(n_threads):
        monkeypatch.setattr(resources, "busy_cores", load)
        base = MLPClassifier((100,), batch_size=100, max_epochs=2, dropout=0.1,
                             random_state=0, n_threads=n_threads)
        if not search:
            return base.fit(X, y).predict_proba(X)
        grid = GridSearchCV(base, {"lr": [1e-3, 3e-3]}, cv=2, refit=False,
                            stacking="batched")
        return grid.fit(X, y).cv_results_["mean_test_score"]

    followed = fit(None)
    assert {1, thread_budget()} <= set(load.threads[1:])  # it did change its count
    np.testing.assert_array_equal(followed, fit(1))


def _fresh_python(code, without=(), **env):
    """The standard output of ``code`` run by a fresh interpreter, in this
    process's environment less the variables ``without``, plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if k not in without}
    return subprocess.run([sys.executable, "-c", code], env={**environment, **env},
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.slow  # fresh interpreters: the wait policy is read when torch loads
def test_importing_sknets_first_makes_openmp_threads_spin_briefly_then_sleep():
    names = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_CBWR")

    def policy(code, **env):
        code += f"; import os; print(*(str(os.environ.get(name)) for name in {names!r}))"
        return _fresh_python(code, names, **env).split()[-3:]

    assert policy("import sknets, torch") == ["PASSIVE", "100000", "AUTO,STRICT"]
    # Too late for OpenMP's policy; MKL's mode is set through its C interface
    # where torch carries MKL and it has computed nothing yet.
    strict = "AUTO,STRICT" if torch.backends.mkl.is_available() else "None"
    assert policy("import torch, sknets") == ["None", "None", strict]
    # MKL has computed already: left alone.
    assert policy("import torch; torch.rand(4, 4) @ torch.rand(4, 4); import sknets") == [
        "None", "None", "None"]
    # The user's choice is left alone.
    assert policy("import sknets", OMP_WAIT_POLICY="ACTIVE", MKL_CBWR="AUTO") == [
        "ACTIVE", "None", "AUTO"]
    assert policy("import sknets", GOMP_SPINCOUNT="0") == ["None", "0", "AUTO,STRICT"]


@pytest.mark.slow  # fresh interpreters: the wait policy is read when torch loads
@pytest.mark.skipif(not any("libgomp" in pool["filepath"] for pool in threadpool_info()
                            if pool["user_api"] == "openmp"),
                    reason="GOMP_SPINCOUNT is GNU OpenMP's; torch runs another OpenMP here")
def test_waiting_threads_go_to_sleep_after_their_spin():
    # The CPU time the process takes while its main thread sleeps for 0.3 s
    # right after a two-thread product: what the idle OpenMP thread spins.
    code = """
import time
import sknets, torch
torch.set_num_threads(2)
a = torch.rand(1000, 784)
b = torch.rand(784, 784)
spins = []
for _ in range(5):
    a @ b
    start = time.process_time()
    time.sleep(0.3)
    spins.append(time.process_time() - start)
print(sorted(spins)[2])
"""
    def spin_seconds(**env):
        out = _fresh_python(code, ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"), **env)
        return float(out.split()[-1])

    # The default spins a few milliseconds (2.5-5 ms measured on 2 cores);
    # threads that never sleep take the whole 0.3 s, which the same measure sees.
    assert spin_seconds() < 0.1
    assert spin_seconds(OMP_WAIT_POLICY="ACTIVE") > 0.2


@pytest.mark.slow  # a fresh interpreter: MKL's mode can change only before it computes
@needs_invariance
def test_results_do_not_depend_on_the_thread_count_when_torch_is_imported_first():
    code = """
import torch  # before sknets, as many scripts begin
import numpy as np
import sknets
from sknets import MLPClassifier
from sknets._engine.resources import thread_invariant

from sknets._engine.resources import step_products

rng = np.random.default_rng(0)
X, y = rng.random((300, 784), dtype=np.float32), rng.integers(0, 10, 300)
fits = [MLPClassifier((100,), batch_size=100, max_epochs=2, random_state=0,
                      n_threads=n).fit(X, y) for n in (1, 2)]
print(thread_invariant(step_products(fits[0].module_, 100, 300)),
      np.array_equal(*(fit.predict_proba(X) for fit in fits)))
"""
    assert _fresh_python(code, ("MKL_CBWR",)).split() == ["True", "True"]


@pytest.mark.parametrize("n_classes, batch_norm", [(3, False), (10, False), (10, True)])
def test_a_default_fit_gives_the_same_results_whatever_the_load(digits784, monkeypatch,
                                                                 n_classes, batch_norm):
    # The load may change a default fit's thread count only where that
    # changes no result: with three classes, the output layer's products
    # have three rows, which on some CPUs round otherwise on two threads;
    # batch normalisation sums its statistics otherwise on two threads.
    if joblib.cpu_count() < 2:
        pytest.skip("one CPU: the load cannot change the thread count")
    X, y = digits784
    X, y = X[:500], y[:500] % n_classes
    fits = []
    for busy in (0, 1):
        monkeypatch.setattr(resources, "busy_cores", lambda *args, busy=busy, **kwargs: busy)
        fits.append(MLPClassifier((100,), batch_norm=batch_norm, batch_size=300, max_epochs=2,
                                  random_state=0).fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(*fits)


def test_a_fit_checks_its_validation_passes_products_too(digits784, monkeypatch):
    # A validation set of five samples: products of five rows, which on some
    # CPUs round otherwise on two threads (its losses steer early stopping).
    import sknets._base

    checked = []

    def products(*args, **kwargs):
        checked.append(resources.step_products(*args, **kwargs))
        return checked[-1]

    monkeypatch.setattr(sknets._base, "step_products", products)
    X, y = digits784
    MLPClassifier((100,), batch_size=300, max_epochs=1, random_state=0).fit(
        X[:500], y[:500], validation_data=(X[-5:], y[-5:]))
    assert {(5, 784, 100), (5, 100, 10)} <= set(checked[-1])


def test_evaluation_passes_leave_no_small_remainder():
    sizes = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            sizes.append(len(x))
            return x

    from sknets._engine.net import TensorNet
    TensorNet.forward_all(None, torch.zeros(23, 2), module=Recorder(), batch_size=10)
    assert sizes == [8, 8, 7]
    module = torch.nn.Linear(20, 8)
    assert (5, 20, 8) in resources.step_products(module, 32, 100, eval_rows=5)
    assert {(35_000, 20, 8), (34_999, 20, 8)} <= set(
        resources.step_products(module, 32, 100, eval_rows=69_999))


@needs_invariance
def test_results_do_not_depend_on_the_thread_count(digits784):
    X, y = digits784
    # 784-100-10 at batch 100: a first-layer product MKL splits between two
    # threads in another order, unless in its strict mode.
    fits = [MLPClassifier((100,), batch_size=100, max_epochs=2, dropout=0.1, l2=1e-4,
                          random_state=0, n_threads=threads).fit(X, y) for threads in (1, 2)]
    for one, two in zip(fits[0].module_.parameters(), fits[1].module_.parameters()):
        torch.testing.assert_close(one, two, rtol=0, atol=0)
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_large_fits_leave_the_cores_other_programs_keep_busy(monkeypatch):
    quiet = thread_budget(None, work=1e9)
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to give up")
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    monkeypatch.setattr(resources, "busy_cores", lambda *args, **kwargs: 1)
    assert thread_budget(None, work=1e9) == min(quiet, os.cpu_count() - 1)
    monkeypatch.setattr(resources, "busy_cores", lambda *args, **kwargs: os.cpu_count())
    assert thread_budget(None, work=1e9) == 1
    # Small steps run on one thread anyway; predictions (no work given) and
    # an explicit n_threads keep their budgets.
    assert thread_budget(None, work=1e6) == 1
    assert thread_budget(None) == quiet
    assert thread_budget(2, work=1e9) == 2
    # Where the thread count could change the results, the load is not read.
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): False)
    assert thread_budget(None, work=1e9) == quiet


def test_busy_threads_count_against_the_machines_cpus_not_the_quota(monkeypatch):
    # A container allowed 2 CPUs of a 64-CPU host: /proc/loadavg counts the
    # host's running threads. Ten of them leave the host 54 CPUs, so the fit
    # keeps its 2; only a host with fewer than 2 free CPUs takes one away.
    monkeypatch.setattr(resources, "thread_invariant", lambda products=(): True)
    monkeypatch.setattr(resources, "cpu_count", lambda: 2)
    monkeypatch.setattr(resources.torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(resources, "_thread_pools", lambda: _NoPools())
    monkeypatch.setattr(resources.os, "cpu_count", lambda: 64)
    for busy, expected in ((10, 2), (62, 2), (63, 1), (200, 1)):
        monkeypatch.setattr(resources, "busy_cores", lambda *args, busy=busy, **kwargs: busy)
        assert thread_budget(None, work=1e9) == expected, busy
        assert resources._budgets(None, None, look=True)[0] == expected, busy


class _NoPools:
    """A thread-pool controller that finds no OpenMP or BLAS pool."""

    def info(self):
        return []


def test_products_that_round_otherwise_on_two_threads_keep_the_load_out(monkeypatch):
    # Strict mode, but products of at most 8 rows round otherwise on two
    # threads (as on an AMD EPYC host with AVX-512): a fit computing one
    # takes a thread count that no program running beside it can change.
    quiet = thread_budget(None, work=1e9)
    if quiet < 2:
        pytest.skip("one thread at most here: nothing to give up")
    monkeypatch.setattr(resources, "_strict_products", lambda: True)
    monkeypatch.setattr(resources, "_same_on_two_threads", lambda m, k, n, **kw: m > 8)
    monkeypatch.setattr(resources, "busy_cores", lambda *args, **kwargs: 1)
    wide = resources.step_products(torch.nn.Linear(784, 100), 100, 1000)
    narrow = resources.step_products(torch.nn.Linear(784, 3), 100, 1000)
    assert thread_invariant(wide) and not thread_invariant(narrow)
    assert thread_budget(None, work=1e9, products=wide) == min(quiet, os.cpu_count() - 1)
    assert thread_budget(None, work=1e9, products=narrow) == quiet
    assert thread_budget(None, work=5e7, products=narrow) == 1  # a short step: one thread


def test_step_products_cover_the_last_smaller_batch():
    module = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    shapes = resources.step_products(module, 32, n_samples=100)  # 3 batches of 32, one of 4
    assert (4, 20, 8) in shapes and (32, 20, 8) in shapes
    assert (3, 8, 4) in shapes and (4, 3, 8) in shapes  # the output layer transposed; a gradient
    assert (32, 8, 20) not in shapes  # the data's gradient is never computed
    normalised = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.BatchNorm1d(8))
    assert ("batch_norm", 4, 8) in resources.step_products(normalised, 32, n_samples=100)
    # A last batch of one sample, alone or (batch norm) joined to the one before.
    assert {(1, 20, 8), (33, 20, 8)} <= set(resources.step_products(module, 32, n_samples=97))


def test_busy_cores_subtracts_this_process_running_threads(monkeypatch):
    # /proc as Linux writes it: 4 threads running machine-wide, two of them
    # this process's (the command name may hold spaces and parentheses).
    files = {"/proc/loadavg": b"1.52 0.91 0.40 4/211 9876\n"}
    for task, state in (("100", "R"), ("101", "S"), ("102", "R")):
        files[f"/proc/self/task/{task}/stat"] = f"{task} (pt main (x)) {state} 1 2 3\n".encode()
    monkeypatch.setattr(resources.os, "listdir", lambda path: ["100", "101", "102"])
    monkeypatch.setattr(resources, "_read_proc", files.__getitem__)
    assert busy_cores(looks=1) == 2
    files["/proc/loadavg"] = b"0.10 0.20 0.30 1/211 9876\n"  # only the looking thread
    assert busy_cores(looks=1) == 0


def test_busy_cores_takes_the_least_look_and_stops_at_none(monkeypatch):
    # Three other threads running, then one, then none: the least of the
    # looks; a look that finds none ends them (no later look can be less).
    running = iter([4, 2, 1, 3])
    reads = []

    def read(path):
        reads.append(path)
        return f"1.0 1.0 1.0 {next(running)}/211 9876\n".encode()

    monkeypatch.setattr(resources, "_read_proc", read)
    monkeypatch.setattr(resources.os, "listdir", lambda path: ["100"])
    monkeypatch.setattr(resources, "_task_running", lambda task: True)  # the looking thread
    monkeypatch.setattr(resources.time, "sleep", lambda seconds: None)
    assert busy_cores(looks=2) == 1  # 3 busy, then 1
    reads.clear()
    assert busy_cores(looks=3) == 0  # 0 at the first look: no second one
    assert reads == ["/proc/loadavg"]


def test_busy_cores_counts_other_programs_running():
    # The real count (the fixture of every test replaces it by 0).
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # Wait until the spinner runs Python code (its start-up reads files).
        for _ in range(200):
            if busy_cores() >= 1:
                break
        assert busy_cores(looks=3) >= 1
    finally:
        spinner.kill()
        spinner.wait()
