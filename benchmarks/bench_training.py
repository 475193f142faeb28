"""Training speed of sknets against its peers, measured in one run.

Trains the same network on Fashion-MNIST with sknets' ``MLPClassifier``,
scikit-learn's ``MLPClassifier``, skorch's ``NeuralNetClassifier`` (default
settings), the fastest hand-written PyTorch loop we know and, where they are
installed (``pip install -e ".[bench]"``), Keras 3 on the JAX backend
(``model.fit``) and a jitted JAX epoch, alternating the tools over several
repeats, and prints medians, ratios to the hand-written loop and the test
accuracy of each run. ``--busy N`` keeps N CPU-bound processes running during
the timed fits; with ``--busy-from SECONDS`` they start that many seconds
into each timed fit instead, and stop when it ends (load that arrives while
a fit trains).

With ``--hidden-load`` sknets' look at the load finds no busy core, as
where the load is invisible to it (another tenant of a virtual machine's
host, a container that cannot see its host's load); the tool "sknets, no
step timing" is sknets without the timing of its steps that notices such
load.

sknets runs in this process and, as "sknets, own process", in a fresh
process of its own (``sknets_process.py``), as a user's script runs it.

The hand-written loop runs in this process (after ``import sknets``, under
the settings it makes before torch loads: OpenMP's waiting threads spin
for sknets' 100,000 rounds, then sleep; MKL's strict mode) and, as "own
process", in a fresh process with the environment the benchmark was
launched with, as a plain torch script runs; it times its own fit. The
baseline of the ratios is the fastest of the hand-written variants timed
or, where none is, "sknets, 1 thread", or else "sknets, no step timing".

    python benchmarks/bench_training.py --data-home ../shared/data

Scenarios: 784-100-10 ReLU at batch 100 and at batch 1000, and 784-512-256-10
with dropout 0.2 at batch 100; Adam, lr 1e-3, fixed epochs, no validation.
Also: ``predict_proba`` on the test set against a bare no-grad forward, the
machine's float32 matmul peak and the fraction of it each fit achieves, and
(with ``--memory``) the peak RSS of a fit on the full training set.
"""

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

# OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE once, when numpy is
# imported; a value that does not match the CPU makes numpy's BLAS (and so
# scikit-learn) slower, and would skew the comparison. Re-executing without
# them lets OpenBLAS detect the CPU itself.
if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

# The environment as the user launched the benchmark, before import sknets
# adds its settings: the hand-written loop in its own process runs with it.
USER_ENV = dict(os.environ)

import multiprocessing  # noqa: E402
import shutil
import tempfile
import threading
import warnings  # noqa: E402

# sknets first, as a user's script would: it sets torch's OpenMP wait policy,
# which only takes effect before torch is loaded (the hand-written loop in this
# process runs under the same policy). --torch-first imports torch before
# sknets instead, as many scripts begin: torch's threads then spin, and sknets
# sets MKL's strict mode through MKL's C interface.
if "--torch-first" in sys.argv:
    import torch
from sknets import MLPClassifier  # noqa: E402
from sknets._engine import resources
from sknets.datasets import fetch_fashion_mnist  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from handwritten import fit_handwritten, torch_module
from sknets_process import fit_sknets
from machine import steal_seconds
from threadpoolctl import threadpool_info  # noqa: E402

SCENARIOS = {
    "784-100-10, batch 100": dict(hidden=(100,), batch=100, dropout=0.0),
    "784-100-10, batch 1000": dict(hidden=(100,), batch=1000, dropout=0.0),
    "784-512-256-10 + dropout 0.2, batch 100": dict(hidden=(512, 256), batch=100, dropout=0.2),
}


def fit_sknets_untimed(*args, **kwargs):
    """sknets with its defaults, but without timing its steps on one thread against its count."""
    first = resources.TRIAL_FIRST_SECONDS
    resources.TRIAL_FIRST_SECONDS = math.inf  # no probe ever starts
    try:
        return fit_sknets(*args, **kwargs)
    finally:
        resources.TRIAL_FIRST_SECONDS = first


def fit_sklearn(X, y, hidden, batch, dropout, epochs, seed):
    from sklearn.neural_network import MLPClassifier as SkMLP

    clf = SkMLP(hidden_layer_sizes=hidden, batch_size=batch, max_iter=epochs,
                learning_rate_init=1e-3, alpha=0.0, tol=0, n_iter_no_change=epochs + 1,
                random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: we stop after fixed epochs
        clf.fit(X, y)
    return clf.predict


def fit_skorch(X, y, hidden, batch, dropout, epochs, seed):
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    net = NeuralNetClassifier(torch_module(hidden, 10, dropout),
                              criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                              lr=1e-3, batch_size=batch, max_epochs=epochs, train_split=None,
                              verbose=0)
    net.fit(X, y)
    return net.predict


def fit_keras(X, y, hidden, batch, dropout, epochs, seed):
    """Keras 3 on the JAX backend: ``model.fit`` with its default settings."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((X.shape[1],))]
    for width in hidden:
        layers.append(keras.layers.Dense(width, activation="relu"))  # Glorot-uniform, zeros
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    return lambda Xq: np.asarray(model.predict(Xq, batch_size=4096, verbose=0)).argmax(1)


def fit_jax(X, y, hidden, batch, dropout, epochs, seed):
    """A jitted JAX epoch: ``lax.scan`` over the batches, Adam written out.

    The compilation (once per network shape and data size) is part of the
    timed fit, as it is of a user's first fit.
    """
    import jax
    import jax.numpy as jnp

    widths = [X.shape[1], *hidden, 10]
    key = jax.random.PRNGKey(seed)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, sub = jax.random.split(key)
        limit = np.sqrt(6 / (fan_in + fan_out))
        params.append((jax.random.uniform(sub, (fan_in, fan_out), jnp.float32, -limit, limit),
                       jnp.zeros(fan_out, jnp.float32)))

    def forward(params, x, key, train):
        for i, (w, b) in enumerate(params[:-1]):
            x = jax.nn.relu(x @ w + b)
            if train and dropout:
                key, sub = jax.random.split(key)
                keep = jax.random.bernoulli(sub, 1 - dropout, x.shape)
                x = jnp.where(keep, x / (1 - dropout), 0)
        w, b = params[-1]
        return x @ w + b

    def loss_fn(params, x, t, key):
        logits = forward(params, x, key, True)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), t[:, None], 1))

    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    n_batches = len(X) // batch

    @jax.jit
    def epoch(state, data, key):
        Xd, yd = data
        key, sub = jax.random.split(key)
        order = jax.random.permutation(sub, len(Xd))[:n_batches * batch]
        xs = Xd[order].reshape(n_batches, batch, -1)
        ts = yd[order].reshape(n_batches, batch)

        def step(state, inputs):
            params, m, v, t = state
            x, target, k = inputs
            grads = jax.grad(loss_fn)(params, x, target, k)
            t = t + 1
            m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
            v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
            scale = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps),
                                  params, m, v)
            return (params, m, v, t), None

        keys = jax.random.split(key, n_batches)
        state, _ = jax.lax.scan(step, state, (xs, ts, keys))
        return state, key

    zeros = jax.tree.map(jnp.zeros_like, params)
    state = (params, zeros, zeros, jnp.float32(0))
    data = (jnp.asarray(X), jnp.asarray(y.astype(np.int32)))
    for _ in range(epochs):
        state, key = epoch(state, data, key)
    trained = jax.block_until_ready(state[0])
    predict = jax.jit(lambda x: forward(trained, x, None, False).argmax(1))
    return lambda Xq: np.asarray(predict(jnp.asarray(Xq)))


# Optional peers (pip install -e ".[bench]"): timed only where installed.
OPTIONAL = {"keras (jax)": "keras", "jax (jitted epoch)": "jax"}

def one_thread(fit):
    """``fit`` run with one torch thread (the thread count restored afterwards)."""
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fit(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return run


def own_process(threads=0, script="handwritten.py"):
    """The hand-written loop (or ``script``'s fit) in a fresh process with the user's environment.

    In this process torch runs under the settings ``import sknets`` made
    before it loaded (sknets' OpenMP spin count, MKL's strict mode), which a
    plain torch script does not have. The child process times its own fit
    (not its start); the tool returns ``(predict, seconds, cpu_seconds)``.
    ``sknets_process.py`` fits sknets there, as a user's script would: a
    fresh process, whose memory has not held the fits before.
    """
    def run(X, y, hidden, batch, dropout, epochs, seed):
        folder = DATA_FOLDER.get("path")
        if folder is None:
            folder = DATA_FOLDER["path"] = tempfile.mkdtemp(prefix="sknets-bench-")
            for name, array in (("X", X), ("y", y), ("X_test", DATA_FOLDER["X_test"])):
                np.save(os.path.join(folder, f"{name}.npy"), array)
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
        subprocess.run([sys.executable, path, folder, ",".join(map(str, hidden)), str(batch),
                        str(dropout), str(epochs), str(seed), str(threads)],
                       check=True, env=USER_ENV)
        with open(os.path.join(folder, "result.json")) as file:
            result = json.load(file)
        predicted = np.asarray(result["predicted"])
        return (lambda Xq: predicted[:len(Xq)]), result["seconds"], result["cpu_seconds"]
    return run


# The arrays the own-process tool hands to its child (saved once per run).
DATA_FOLDER = {}

TOOLS = {
    "hand-written torch": fit_handwritten,
    "hand-written torch, 1 thread": one_thread(fit_handwritten),
    "hand-written torch, own process": own_process(),
    "hand-written torch, own process, 1 thread": own_process(threads=1),
    "sknets": fit_sknets,
    "sknets, own process": own_process(script="sknets_process.py"),
    "sknets, 1 thread": lambda *args, **kwargs: fit_sknets(*args, n_threads=1, **kwargs),
    "sknets, no step timing": fit_sknets_untimed,
    "scikit-learn": fit_sklearn,
    "skorch (default)": fit_skorch,
    "keras (jax)": fit_keras,
    "jax (jitted epoch)": fit_jax,
}


def matmul_peak_gflops(n=1024, repeats=20):
    """The fastest float32 product of two n x n matrices: torch's (MKL) or, where
    sknets' fits use it, oneDNN's (``resources.onednn_products``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    products = [lambda: a @ b]
    if resources.onednn_products():
        products.append(lambda: resources.linear(a, b))
    times = []
    for product in products:
        product()
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def train_flops(hidden, n_samples, epochs):
    """Multiply-adds of forward + backward (x2 for flops, x3 for fwd+bwd)."""
    widths = [784, *hidden, 10]
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    # forward, grad of weights, grad of inputs (not for the first layer)
    first = 784 * widths[1]
    return 2 * n_samples * epochs * (3 * macs - first)


def bench_predict(X_train, y_train, X_test, repeats):
    clf = MLPClassifier(hidden_layers=(100,), batch_size=100, max_epochs=1, patience=None,
                        random_state=0).fit(X_train, y_train)
    module = clf.module_
    times = {"bare forward": [], "sknets predict_proba": []}
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            torch.softmax(module(torch.from_numpy(X_test)), 1).numpy()
        times["bare forward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        clf.predict_proba(X_test)
        times["sknets predict_proba"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


MEMORY_CHILD = """
import sys, numpy as np, torch
from sknets import MLPClassifier
from sknets.datasets import fetch_fashion_mnist

def peak_kb():  # VmHWM: peak RSS of this process image (ru_maxrss survives exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

base = peak_kb()
data = fetch_fashion_mnist(subset="train", data_home=sys.argv[1])
X, y = data.data, data.target
del data
loaded = peak_kb()
MLPClassifier(hidden_layers=(100,), batch_size=100, max_epochs=1, patience=None,
              random_state=0).fit(X, y)
print(base, loaded, peak_kb(), X.nbytes)
"""


def bench_memory(data_home):
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, data_home], check=True,
                         capture_output=True, text=True).stdout.split()
    base, loaded, peak, nbytes = (int(v) for v in out)
    return {"torch imported (MB)": base / 1024, "data loaded (MB)": loaded / 1024,
            "peak after fit (MB)": peak / 1024, "float32 data (MB)": nbytes / 2**20,
            "limit: base + 2.5 x data (MB)": base / 1024 + 2.5 * nbytes / 2**20}


def _spin():
    while True:
        pass


@contextlib.contextmanager
def busy_during(n, after=None):
    """``n`` CPU-bound processes during the block: from its start, or ``after`` seconds into it.

    They stop when the block ends.
    """
    processes = []

    def start():
        processes.extend(multiprocessing.Process(target=_spin, daemon=True) for _ in range(n))
        for process in processes:
            process.start()

    timer = None
    if n and after is None:
        start()
    elif n:
        timer = threading.Timer(after, start)
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()  # a start under way finishes before the processes stop
        for process in processes:
            process.terminate()
            process.join()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", default=os.environ.get("SKNETS_DATA"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", nargs="*", default=[t for t in TOOLS if "1 thread" not in t],
                        help="tools to time (default: all but 'sknets, 1 thread'); Keras and "
                             "JAX only where installed (pip install -e '.[bench]')")
    parser.add_argument("--scenarios", nargs="*", type=int, default=[0, 1, 2],
                        help="indices into the scenario list")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS too")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS threads for every tool (default: the libraries' own)")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="keep N other CPU-bound processes running during the timed fits "
                             "(a busy machine)")
    parser.add_argument("--hidden-load", action="store_true",
                        help="sknets' look at the load finds no busy core (as on a virtual "
                             "machine whose host runs other tenants on the same cores, or in "
                             "a container that cannot see its host's load): with --busy, "
                             "load that only the step timing can notice")
    parser.add_argument("--torch-first", action="store_true",
                        help="import torch before sknets, as many scripts begin (torch's "
                             "threads then spin)")
    parser.add_argument("--busy-from", type=float, default=None, metavar="SECONDS",
                        help="start the --busy processes this many seconds into each timed "
                             "fit, and stop them when it ends (load arriving mid-training; "
                             "an own-process tool's clock starts with its process)")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if args.threads == 1:
        # XLA's CPU client runs its own thread pool; this keeps it to one thread.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
    for tool in [t for t in args.tools if t in OPTIONAL]:
        if importlib.util.find_spec(OPTIONAL[tool]) is None:
            print(f"# skipping {tool!r}: {OPTIONAL[tool]} is not installed "
                  "(pip install -e '.[bench]')")
            args.tools.remove(tool)
    # --busy: the processes run through every scenario's timed fits; with
    # --busy-from they start anew within each timed fit.
    throughout, per_fit = (args.busy, 0) if args.busy_from is None else (0, args.busy)
    if args.hidden_load:
        resources.busy_cores = lambda *args, **kwargs: 0

    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    train = fetch_fashion_mnist(subset="train", data_home=args.data_home,
                                download_if_missing=False)
    test = fetch_fashion_mnist(subset="test", data_home=args.data_home,
                               download_if_missing=False)
    X, y, X_test, y_test = train.data, train.target, test.data, test.target
    DATA_FOLDER["X_test"] = X_test

    print(f"# load average at start: {os.getloadavg()[0]:.1f}")
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for info in threadpool_info():
        print(f"#   {info['internal_api']:9s} {str(info.get('architecture')):10s} "
              f"threads={info['num_threads']}  {os.path.basename(info['filepath'])}")
    peak = matmul_peak_gflops()
    print(f"# float32 matmul peak: {peak:.1f} GFLOP/s")
    print(f"# torch imported {'before' if args.torch_first else 'after'} sknets; "
          f"MKL_CBWR={os.environ.get('MKL_CBWR')}")
    print(f"# OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}; "
          f"{args.busy} other CPU-bound processes during the fits"
          + (", hidden from sknets' load look" if args.hidden_load else "")
          + ("" if args.busy_from is None else f", from {args.busy_from:g} s into each fit"))
    # One short untimed fit per tool: the first torch optimizer of a process
    # imports torch._dynamo (1-1.5 s), which would land on whichever tool
    # happens to run first. (JAX and Keras compile again for the real shapes.)
    for tool in args.tools:
        if "own process" not in tool:  # which warms up its own process
            TOOLS[tool](X[:1000], y[:1000], (100,), 100, 0.0, 1, seed=0)
    running = contextlib.ExitStack()
    running.enter_context(busy_during(throughout))
    results = {"peak_gflops": peak, "scenarios": {}}
    names = list(SCENARIOS)
    for index in args.scenarios:
        name = names[index]
        config = SCENARIOS[name]
        times = {tool: [] for tool in args.tools}
        cpu_times = {tool: [] for tool in args.tools}
        accuracy = {tool: [] for tool in args.tools}
        stolen = steal_seconds()
        for repeat in range(args.repeats):
            for tool in args.tools:  # alternate the tools within each repeat
                with busy_during(per_fit, args.busy_from):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    predict = TOOLS[tool](X, y, config["hidden"], config["batch"],
                                          config["dropout"], args.epochs, seed=repeat)
                    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                if isinstance(predict, tuple):  # timed by the tool itself (own process)
                    predict, seconds, cpu = predict
                times[tool].append(seconds)
                cpu_times[tool].append(cpu)
                with torch.no_grad():
                    accuracy[tool].append(float(np.mean(predict(X_test) == y_test)))
        # The baseline: the hand-written loop at its best thread count among those timed.
        # Without it (a busy-machine run, say), sknets on one thread.
        handwritten = ([t for t in args.tools if t.startswith("hand-written")]
                       or [t for t in args.tools if t == "sknets, 1 thread"]
                       or [t for t in args.tools if t == "sknets, no step timing"])
        baseline = min(handwritten, key=lambda t: statistics.median(times[t]), default=None)
        base = statistics.median(times[baseline]) if baseline else None
        cpu_base = statistics.median(cpu_times[baseline]) if baseline else None
        flops = train_flops(config["hidden"], len(X), args.epochs)
        stolen = steal_seconds() - stolen
        print(f"\n## {name}, {args.epochs} epochs, median of {args.repeats}; ratios to "
              f"{baseline!r}")
        # On a virtual machine: CPU time the host took from it during these fits.
        print(f"# CPU seconds stolen by the host during this scenario's fits: {stolen:.2f}")
        print("| tool | fit seconds | ratio to baseline | paired ratio | CPU seconds "
              "| CPU ratio | test accuracy | % of matmul peak |")
        print("|---|---|---|---|---|---|---|---|")
        rows = {}
        for tool in args.tools:
            median = statistics.median(times[tool])
            ratio = median / base if base else float("nan")
            # The median of each repeat's ratio to the baseline's fit in the same
            # repeat, seconds apart: a slow drift of the machine's speed over the
            # run cancels in it, as it does not in a ratio of medians.
            paired = (statistics.median(t / b for t, b in zip(times[tool], times[baseline]))
                      if baseline else float("nan"))
            cpu = statistics.median(cpu_times[tool])
            cpu_ratio = cpu / cpu_base if cpu_base else float("nan")
            acc = statistics.median(accuracy[tool])
            share = 100 * flops / median / 1e9 / peak
            rows[tool] = dict(seconds=median, ratio=ratio, paired_ratio=paired,
                              cpu_seconds=cpu, cpu_ratio=cpu_ratio,
                              accuracy=acc, peak_share=share, all_seconds=times[tool])
            print(f"| {tool} | {median:.2f} | {ratio:.2f} | {paired:.2f} | {cpu:.2f} "
                  f"| {cpu_ratio:.2f} | {acc:.4f} | {share:.1f} |")
        # Medians hide a rare stalled fit; on a busy machine that is what matters.
        print("# fastest and slowest fit: " + "; ".join(
            f"{tool} {min(times[tool]):.2f}-{max(times[tool]):.2f} s" for tool in args.tools))
        results["scenarios"][name] = dict(rows, stolen_cpu_seconds=stolen)

    running.close()
    if "path" in DATA_FOLDER:
        shutil.rmtree(DATA_FOLDER.pop("path"), ignore_errors=True)
    pred = bench_predict(X, y, X_test, max(5, args.repeats))
    ratio = pred["sknets predict_proba"] / pred["bare forward"]
    print(f"\n## predict_proba on {len(X_test)} test images (median)")
    print(f"bare no-grad forward {1000 * pred['bare forward']:.1f} ms, sknets predict_proba "
          f"{1000 * pred['sknets predict_proba']:.1f} ms, ratio {ratio:.2f}")
    results["predict"] = dict(pred, ratio=ratio)
    if args.memory:
        memory = bench_memory(args.data_home)
        print("\n## peak RSS, 784-100-10 fit on the full training set (fresh process)")
        for key, value in memory.items():
            print(f"{key}: {value:.0f}")
        results["memory"] = memory
    print(f"\n# load average at end: {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
