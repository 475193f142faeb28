"""Training speed on one GPU: sknets with and without CUDA graphs, and a hand-written loop.

Trains 784-100-10 and 784-1024-1024-10 (ReLU, Adam, lr 1e-3) on MNIST at
batch 100 and 1,000 with sknets' ``MLPClassifier(device="cuda")`` (its steps
captured as CUDA graphs), the same with ``SKNETS_CUDA_GRAPHS=0`` (eager
steps), and the fastest hand-written eager PyTorch loop with the data on the
GPU. The tools alternate within each repeat; it prints medians, ratios to the
hand-written loop and test accuracy, as a Markdown table for
``docs/benchmarks.md``.

    python benchmarks/bench_gpu.py --data-home ../shared/data

Without a CUDA device it says so and exits (``--device cpu`` runs the same
comparison on the CPU, where no step is captured).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from sknets import MLPClassifier
from sknets.datasets import fetch_mnist

SCENARIOS = [((100,), 100), ((100,), 1000), ((1024, 1024), 100), ((1024, 1024), 1000)]


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def fit_handwritten(X, y, hidden, batch, epochs, seed, device):
    """Device tensors, one index_select per batch, fused Adam, autograd."""
    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    for layer in model:  # sknets' initialisation: Glorot-uniform weights, zero biases
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        for idx in torch.randperm(len(Xt), device=device).split(batch):
            loss = loss_fn(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync(device)
    model.eval()

    def predict(Xq):
        with torch.no_grad():
            return model(torch.from_numpy(Xq).to(device)).argmax(1).cpu().numpy()
    return predict


def fit_sknets(X, y, hidden, batch, epochs, seed, device, graphs=True):
    previous = os.environ.get("SKNETS_CUDA_GRAPHS")
    os.environ["SKNETS_CUDA_GRAPHS"] = "1" if graphs else "0"
    try:
        clf = MLPClassifier(hidden_layers=hidden, batch_size=batch, max_epochs=epochs,
                            patience=None, random_state=seed, device=device).fit(X, y)
    finally:
        if previous is None:
            del os.environ["SKNETS_CUDA_GRAPHS"]
        else:
            os.environ["SKNETS_CUDA_GRAPHS"] = previous
    sync(device)
    return clf.predict


TOOLS = {
    "hand-written torch (eager)": fit_handwritten,
    "sknets (CUDA graphs)": fit_sknets,
    "sknets (eager steps)": lambda *args: fit_sknets(*args, graphs=False),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", default=os.environ.get("SKNETS_DATA"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", nargs="*", type=int, default=range(len(SCENARIOS)),
                        help="indices into the scenario list")
    parser.add_argument("--n-samples", type=int, default=None,
                        help="train on the first N images (default: all 60,000)")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("# no CUDA device: nothing to measure (--device cpu runs on the CPU)")
        return 0
    train = fetch_mnist(subset="train", data_home=args.data_home, download_if_missing=False)
    test = fetch_mnist(subset="test", data_home=args.data_home, download_if_missing=False)
    X, y = train.data[:args.n_samples], train.target[:args.n_samples]
    name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
            else "CPU")
    print(f"# {time.strftime('%Y-%m-%d')}, {name}, torch {torch.__version__}, "
          f"{len(X)} MNIST images, {args.epochs} epochs, median of {args.repeats}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    # One short fit per tool first: CUDA context, cuBLAS handles, kernels loaded.
    for fit in TOOLS.values():
        fit(X[:2000], y[:2000], (100,), 100, 1, 0, args.device)
    print("| network | batch | tool | fit seconds | ratio to hand-written | test accuracy |")
    print("|---|---|---|---|---|---|")
    for index in args.scenarios:
        hidden, batch = SCENARIOS[index]
        times = {tool: [] for tool in TOOLS}
        accuracy = {tool: [] for tool in TOOLS}
        for repeat in range(args.repeats):
            for tool, fit in TOOLS.items():
                start = time.perf_counter()
                predict = fit(X, y, hidden, batch, args.epochs, repeat, args.device)
                times[tool].append(time.perf_counter() - start)
                accuracy[tool].append(float(np.mean(predict(test.data) == test.target)))
        base = statistics.median(times["hand-written torch (eager)"])
        network = "-".join(map(str, [784, *hidden, 10]))
        for tool in TOOLS:
            median = statistics.median(times[tool])
            print(f"| {network} | {batch} | {tool} | {median:.2f} | {median / base:.2f} "
                  f"| {statistics.median(accuracy[tool]):.4f} |")
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
