"""The docs stay in step with the code: every Python example runs, every parameter is documented.

Each ```python block of README.md and docs/*.md runs, page by page in one
namespace, in the order the page shows them. ``EXAMPLES`` says what a page
needs (data, files, variables the prose defines) and what its output must
show; a page with examples that is missing from it fails
``test_every_page_with_examples_is_covered``. Blocks that quote the code
(docs/backpropagation.md) are compared with the source instead, and the few
blocks that cannot run on a test machine are listed in ``NOT_RUN`` with the
reason, and are at least compiled.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def python_blocks(path):
    """The ```python blocks of a Markdown file, in order, as source text."""
    return re.findall(r"^```python\n(.*?)^```", Path(path).read_text(), re.S | re.M)


def _name(path):
    return path.relative_to(ROOT).as_posix()


# --- what each page needs and shows ------------------------------------------


def _real_mnist(request, monkeypatch, tmp_path):
    # The fetchers' default folder, pointed at the real files.
    monkeypatch.setenv("SKNETS_DATA", str(request.getfixturevalue("real_data_home")))
    return {}


def _digits(request, monkeypatch, tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return {"X": X[:360] / 16, "y": y[:360]}


def _saved_fashion_model(request, monkeypatch, tmp_path):
    """The ``fashion.sknets`` that docs/cli.md's ``sknets train`` writes, in small."""
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(60, 784)).astype(np.float32)
    MLPClassifier((8,), max_epochs=1, random_state=0).fit(X, np.arange(60) % 10).save(
        tmp_path / "fashion.sknets")
    return {"X": X}


def _real_mnist_and_photos(request, monkeypatch, tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    for label in ("cat", "dog"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(20):
            pixels = rng.randint(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / label / f"{i:03d}.png")
    return _real_mnist(request, monkeypatch, tmp_path)


def _tables(request, monkeypatch, tmp_path):
    """The real tables the page reads, in the folder it runs in."""
    folder = request.getfixturevalue("tabular_data_home")
    for name in ("diamonds.csv", "default.csv"):
        (tmp_path / name).symlink_to(folder / name)
    return {}


def _tables_learned(namespace, out, tmp_path):
    r2, auc, shape = out.strip().splitlines()
    assert float(r2) >= 0.985
    assert float(auc.split()[1]) >= 0.94
    assert shape == "(5,)"


def _last_line_above_090(namespace, out, tmp_path):
    assert float(out.strip().splitlines()[-1]) > 0.9


def _first_number_above_090(namespace, out, tmp_path):
    assert float(out.split()[0]) > 0.9


def _stacked_search_done(namespace, out, tmp_path):
    search = namespace["search"]
    assert (search.n_stacked_groups_, search.n_stacked_fits_) == (1, 24)
    assert search.best_score_ > 0.85


def _backpropagation_agrees(namespace, out, tmp_path):
    difference = float(re.search(r"largest relative difference: (\S+)", out).group(1))
    assert difference < 1e-5  # the page says about 1e-7


def _insight_outputs(namespace, out, tmp_path):
    assert "Total params: 17,610" in out and "76042 75914 128" in out
    assert "Total params: 17,610\nTrainable params: 17,610" in (DOCS / "insight.md").read_text()
    for name in ("curves.png", "confusion.png", "reconstructions.png",
                 "my-report/report.html", "my-report/test_results.csv"):
        assert (tmp_path / name).is_file(), name


def _saved(name):
    def check(namespace, out, tmp_path):
        assert (tmp_path / name).is_file()
    return check


def _prediction_made(namespace, out, tmp_path):
    assert namespace["model"].predict(namespace["X"]).shape == (len(namespace["X"]),)


def _autoencoder_fitted(namespace, out, tmp_path):
    assert namespace["codes"].shape == (10_000, 32)
    assert namespace["search"].best_params_["code_size"] in (16, 64)


def _datasets_loaded(namespace, out, tmp_path):
    assert namespace["train"].data.shape == (60_000, 784)
    assert list(namespace["y"][:3]) == ["cat"] * 3
    assert len(namespace["X_train"]) + len(namespace["X_val"]) + len(namespace["X_test"]) == 40


def _search_done(namespace, out, tmp_path):
    assert "hidden_layers" in namespace["search"].best_params_
    assert "{'hidden_layers': " in out  # printed by the Dask example


@dataclass
class Page:
    """How to run a page's examples: ``setup`` returns the namespace the prose
    assumes (``(request, monkeypatch, tmp_path) -> dict``), ``check`` asserts
    on the namespace, stdout and the files written, ``slow`` marks pages that
    need real data, worker processes or a Dask cluster."""

    check: Callable
    setup: Callable = None
    slow: bool = False
    quotes: str = None  # a folder whose source the def/for blocks quote


EXAMPLES = {
    "README.md": Page(_last_line_above_090),
    "docs/autoencoder.md": Page(_autoencoder_fitted, _real_mnist, slow=True),
    "docs/backpropagation.md": Page(_backpropagation_agrees, quotes="sknets/reference"),
    "docs/cli.md": Page(_prediction_made, _saved_fashion_model),
    "docs/datasets.md": Page(_datasets_loaded, _real_mnist_and_photos, slow=True),
    "docs/insight.md": Page(_insight_outputs),
    "docs/persistence.md": Page(_saved("digits.sknets")),
    "docs/scaling.md": Page(_search_done, _digits, slow=True),  # n_jobs=2, LocalCluster
    "docs/stacked-search.md": Page(_stacked_search_done),
    "docs/tabular.md": Page(_tables_learned, _tables, slow=True),  # real tables
    "docs/user-guide.md": Page(_first_number_above_090),
}

# (page, block index) -> why the block does not run here.
NOT_RUN = {
    ("docs/datasets.md", 1): "reads a machine's own folder (/data/shared)",
    ("docs/scaling.md", 2): "needs CUDA GPUs and dask-cuda",
}


def _quoted(page, block):
    return EXAMPLES[page].quotes is not None and block.startswith(("def ", "for "))


def test_every_page_with_examples_is_covered():
    with_examples = {_name(path) for path in PAGES if python_blocks(path)}
    assert with_examples == set(EXAMPLES)
    for page, index in NOT_RUN:
        blocks = python_blocks(ROOT / page)
        assert index < len(blocks), f"NOT_RUN names block {index} of {page}, which has none"
        compile(blocks[index], page, "exec")


@pytest.mark.parametrize("page", [
    pytest.param(page, marks=pytest.mark.slow) if spec.slow else page
    for page, spec in EXAMPLES.items()
])
def test_page_examples_run(page, request, monkeypatch, tmp_path, capsys):
    spec = EXAMPLES[page]
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}  # runs the `if __name__ == "__main__":` examples
    if spec.setup is not None:
        namespace.update(spec.setup(request, monkeypatch, tmp_path))
    blocks = python_blocks(ROOT / page)
    threads = torch.get_num_threads()
    # One thread: these networks are small, and a second thread only adds
    # synchronisation on a busy machine.
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            for index, block in enumerate(blocks):
                if (page, index) not in NOT_RUN and not _quoted(page, block):
                    exec(compile(block, page, "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    spec.check(namespace, capsys.readouterr().out, tmp_path)


@pytest.mark.parametrize("page", [page for page, spec in EXAMPLES.items() if spec.quotes])
def test_quoted_code_is_the_code(page):
    spec = EXAMPLES[page]
    source = "".join(path.read_text() for path in (ROOT / spec.quotes).glob("*.py"))
    quoted = [block for block in python_blocks(ROOT / page) if _quoted(page, block)]
    assert len(quoted) >= 4
    for block in quoted:  # excerpts of the code, line for line
        missing = [line for line in block.splitlines() if line.strip() not in source]
        assert not missing, f"{page} quotes lines not in {spec.quotes}: {missing}"


# --- the parameter reference ---------------------------------------------------

GUIDE = DOCS / "user-guide.md"
AUTOENCODER_SECTION = "### AutoencoderTransformer parameters"


def _documented_defaults(text):
    """``{name: default}`` of the reference entries ``**`name`** : type, default=value``."""
    entries = re.findall(r"^\*\*`(\w+)`\*\* : .*default=(.+?)\s*$", text, re.M)
    return {name: ast.literal_eval(value) for name, value in entries}


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor, AutoencoderTransformer])
def test_user_guide_documents_every_parameter(estimator):
    guide = GUIDE.read_text()
    for name in estimator().get_params():
        assert f"`{name}`" in guide, f"docs/user-guide.md does not document {name}"


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor, AutoencoderTransformer])
def test_user_guide_states_the_defaults(estimator):
    shared, own = GUIDE.read_text().split(AUTOENCODER_SECTION)
    documented = _documented_defaults(shared)
    if estimator is AutoencoderTransformer:
        # The shared entry's hidden_layers default is the MLPs'; the
        # autoencoder's section states its own in its prose.
        documented.pop("hidden_layers")
        assert f"default ({AutoencoderTransformer().hidden_layers[0]},)" in own
        documented.update(_documented_defaults(own))
    params = estimator().get_params()
    wrong = {name: (documented[name], params[name]) for name in documented.keys() & params.keys()
             if documented[name] != params[name]}
    assert not wrong, f"docs/user-guide.md states other defaults (docs, code): {wrong}"
    assert len(documented.keys() & params.keys()) >= 20
