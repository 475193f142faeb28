"""The package's shape: import layers, no imports of the package root, shared signatures.

The layers themselves are written down once, as import-linter contracts in
``pyproject.toml`` (``[tool.importlinter]``); ``lint-imports`` checks them
from the command line and the first test here checks them in the test run.
"""

import ast
import inspect
import sys
from pathlib import Path

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor
from sknets._params import Options
from sknets.reference import NumpyMLPClassifier, NumpyMLPRegressor

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "sknets"


# --- layers --------------------------------------------------------------------


def test_import_contracts_are_kept(capfd, monkeypatch):
    from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

    monkeypatch.setattr(sys, "path", list(sys.path))  # lint_imports prepends the cwd
    # In-process and without a cache: grimp parses the sources, it does not
    # import them, and no cache folder is left in the checkout.
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                          no_logo=True)
    report = capfd.readouterr().out
    assert "Contracts:" in report  # the contracts were read and checked
    assert status == EXIT_STATUS_SUCCESS, report


def _modules():
    """``(dotted name, path)`` of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _is_submodule(name):
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file()


def _root_imports(module, path):
    """The statements of a module that import the package root ``sknets`` itself."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name == "sknets"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            if source == "sknets":
                found += [f"line {node.lineno}: from {'.' * node.level or 'sknets'} import "
                          f"{a.name}" for a in node.names if not _is_submodule(a.name)]
    return found


def test_no_module_imports_the_package_root():
    # The root re-exports the public API; a module that imports it depends on
    # every other module and closes an import circle.
    offenders = {module: found for module, path in _modules()
                 if (found := _root_imports(module, path))}
    assert not offenders


def test_root_import_finder_sees_every_spelling(tmp_path):
    lines = ["import sknets", "from sknets import MLPClassifier", "from . import __version__",
             "from . import mlp", "from sknets import datasets", "import sknets.mlp",
             "def f():\n    from sknets import load"]
    path = tmp_path / "module.py"
    path.write_text("\n".join(lines))
    assert len(_root_imports("sknets.module", path)) == 4
    path.write_text("from .. import __version__\nfrom ..mlp import MLPClassifier")
    assert len(_root_imports("sknets.inspection.module", path)) == 1


def test_few_modules_at_the_top_level():
    # The layers stay visible from the file names: the rest lives in
    # _engine/, inspection/, reference/, datasets/ and studies/.
    assert len(list(PACKAGE.glob("*.py"))) <= 12


# --- shared signatures ---------------------------------------------------------

# Where the three estimators' signatures differ on purpose.
AUTOENCODER_ONLY = {"code_size", "code_activation", "output_activation", "loss", "noise",
                    "noise_type"}
CLASSIFIER_ONLY = {"class_weight", "label_smoothing"}
# The regressor's loss is its own; the autoencoder has a loss of its own too.
REGRESSOR_ONLY = {"loss", "huber_delta"}
MLP_ONLY = {"warm_start", "scoring", "categorical_features", "one_hot_max_categories",
            "standardize", "missing_values"}
# hidden_layers is the encoder's for the autoencoder: default (128,), not (100,).
DIFFERENT_DEFAULTS = {"hidden_layers"}
# The NumPy reference implements fewer choices than torch offers.
NARROWED_CHOICES = {"activation", "optimizer", "lr_schedule"}


def _parameters(estimator):
    return inspect.signature(estimator).parameters


def test_estimators_share_their_parameters_and_defaults():
    classifier, regressor, autoencoder = (
        _parameters(e) for e in (MLPClassifier, MLPRegressor, AutoencoderTransformer))
    assert classifier.keys() - regressor.keys() == CLASSIFIER_ONLY
    assert regressor.keys() - classifier.keys() == REGRESSOR_ONLY
    assert classifier.keys() - autoencoder.keys() == CLASSIFIER_ONLY | MLP_ONLY
    assert autoencoder.keys() - classifier.keys() == AUTOENCODER_ONLY
    shared = classifier.keys() & regressor.keys() & autoencoder.keys()
    assert len(shared) == 29
    for name in regressor.keys() & classifier.keys():
        assert regressor[name].default == classifier[name].default, name
    differing = {name for name in shared
                 if autoencoder[name].default != classifier[name].default}
    assert differing == DIFFERENT_DEFAULTS
    # Positional or keyword-only alike: hidden_layers is positional in all three.
    assert {name: autoencoder[name].kind for name in shared} == {
        name: classifier[name].kind for name in shared}


def test_reference_estimators_agree_with_the_torch_ones():
    for numpy_estimator, torch_estimator in ((NumpyMLPClassifier, MLPClassifier),
                                             (NumpyMLPRegressor, MLPRegressor)):
        numpy_params, torch_params = _parameters(numpy_estimator), _parameters(torch_estimator)
        shared = numpy_params.keys() & torch_params.keys()
        assert numpy_params.keys() - shared == {"init_weights", "dtype"}
        assert {n: numpy_params[n].default for n in shared} == {
            n: torch_params[n].default for n in shared}
        for name in shared:
            numpy_rule = numpy_estimator._parameter_constraints[name]
            torch_rule = torch_estimator._parameter_constraints[name]
            if name in NARROWED_CHOICES:
                (numpy_options,), (torch_options,) = numpy_rule, torch_rule
                assert isinstance(numpy_options, Options), name
                assert set(numpy_options.options) < set(torch_options.options), name
            else:
                assert [str(c) for c in numpy_rule] == [str(c) for c in torch_rule], name
