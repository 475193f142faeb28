"""The ``sknets`` command: run a study, or train one network, and write a report.

::

    sknets study architectures                      # bundled 8x8 digits, no download
    sknets study optimizers --dataset mnist --data-home ~/data --out runs/optimizers
    sknets train --dataset fashion-mnist --hidden-layers 256 128 --dropout 0.2 \\
        --epochs 30 --save model.sknets

A study runs each model ``--repeats`` times (5 by default), one seed per
run, and reports each score's mean with a 95% interval and a paired test of
every model against the best.

Both commands write ``report.html`` (self-contained: figures, tables, the
exact parameters, library versions), the figures as PNG and the tables as
CSV plus ``results.json`` (its schema: :mod:`sknets.studies.report`) into
``--out``. ``sknets --version`` prints the version. ``python -m sknets`` is
the same command.
"""

import argparse
import inspect
import pprint
import re
import shlex
import sys
from pathlib import Path

from .._version import __version__

_DATA_HELP = "data set: the bundled 8x8 digits (default, no download) or a 28x28 set"

# Heavy modules (the studies, MLPClassifier, the report: torch, scikit-learn
# and matplotlib, seconds to import) are imported inside the functions that
# need them. The help of every command is built from `_cli_spec.py`, what
# `cli_spec()` derives from the studies and MLPClassifier (its signature,
# constraints and docstring), written once by `write_cli_spec()` and checked
# against them by the tests; so `sknets --help`, `sknets study --help` and
# `sknets train --help` import none of them.
_COMMANDS = {
    "study": "run a named study and write its report",
    "train": "fit one MLPClassifier, print its log and test score, write a report",
}

_SPEC_FILE = Path(__file__).with_name("_cli_spec.py")

def main(argv=None):
    """Run the ``sknets`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``sknets``; ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        0 on success, 1 when the run failed (the reason is printed).

    Examples
    --------
    >>> from sknets.studies.cli import main
    >>> main(["study", "architectures", "--epochs", "2", "--quiet",
    ...       "--out", "/tmp/sknets-doctest"])  # doctest: +SKIP
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    import matplotlib

    matplotlib.use("Agg")  # the command only writes files
    try:
        return args.handler(args, "sknets " + shlex.join(argv))
    except (ValueError, OSError) as exc:
        print(f"sknets: error: {exc}", file=sys.stderr)
        return 1


def _parser(command=None):
    """The argument parser, with the flags of ``command`` only (None: no command's)."""
    parser = argparse.ArgumentParser(
        prog="sknets", description="Train scikit-learn-style neural networks and write "
                                   "reports of what they learned.")
    parser.add_argument("--version", action="version", version=f"sknets {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {name: commands.add_parser(name, help=text, description=text[0].upper()
                                            + text[1:] + ".")
                  for name, text in _COMMANDS.items()}
    if command == "study":
        _add_study_arguments(subparsers["study"])
    elif command == "train":
        _add_train_arguments(subparsers["train"])
    return parser


def _spec():
    from ._cli_spec import SPEC

    return SPEC


def _add_study_arguments(study):
    spec = _spec()
    lines = [f"  {name:<14} {title}" for name, title in spec["studies"]]
    study.epilog = "studies:\n" + "\n".join(lines)
    study.formatter_class = argparse.RawDescriptionHelpFormatter
    study.add_argument("name", choices=[name for name, _ in spec["studies"]], metavar="NAME",
                       help="the study to run")
    _add_data_arguments(study, spec["datasets"])
    study.add_argument("--repeats", type=int, default=5, metavar="N",
                       help="runs of every model, one seed each (--seed, --seed + 1, ...): "
                            "the report gives each score's mean with a 95%% interval and "
                            "tests every model against the best (default: 5)")
    study.add_argument("--epochs", type=int, help="max_epochs of every network "
                                                  "(default: the study's)")
    study.add_argument("--lr", type=float, help="learning rate of every network")
    study.add_argument("--batch-size", type=int, help="mini-batch size of every network")
    study.add_argument("--verbose", type=int, default=0,
                       help="1 prints a line per epoch of every network")
    study.set_defaults(handler=_run_study)


def _add_train_arguments(train):
    spec = _spec()
    train.description = ("Fit one MLPClassifier (its constructor parameters are flags), "
                         "print the per-epoch log and the test score, and write a report.")
    _add_data_arguments(train, spec["datasets"])
    _add_estimator_arguments(train, spec["train_flags"])
    train.add_argument("--save", metavar="PATH",
                       help="save the fitted model (estimator.save; load with sknets.load)")
    train.set_defaults(handler=_run_train)


def _add_data_arguments(parser, datasets):
    parser.add_argument("--dataset", default="digits", choices=datasets, help=_DATA_HELP)
    parser.add_argument("--data-home", metavar="PATH",
                        help="folder of the downloaded data sets (default: $SKNETS_DATA "
                             "or ~/sknets_data)")
    parser.add_argument("--n-train", type=int, metavar="N",
                        help="use N training and validation images together (1/6 of them "
                             "for validation)")
    parser.add_argument("--n-test", type=int, metavar="N", help="use N test images only")
    parser.add_argument("--out", metavar="DIR",
                        help="folder of the report (default: sknets-<name>)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the splits and the networks (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--n-threads", type=int, help="torch threads")
    parser.add_argument("--normalize", action="store_true",
                        help="confusion matrices as fractions of each true class")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# MLPClassifier parameters that are not flags of `sknets train`: --seed,
# --device, --n-threads are set by the data options; the validation set is
# the data's (1/6 of --n-train), so validation_fraction has nothing to split.
_NOT_FLAGS = {"random_state", "device", "n_threads", "warm_start", "validation_fraction",
              "callbacks"}

_TYPES = {"int": int, "float": float, "str": str}


def _add_estimator_arguments(parser, flags):
    group = parser.add_argument_group("network (MLPClassifier parameters)")
    for flag in flags:
        name, kind = flag["name"], flag["kind"]
        kwargs = {"dest": name, "default": 1 if name == "verbose" else argparse.SUPPRESS,
                  "help": flag["help"].replace("%", "%%")}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind == "widths":
            kwargs.update(type=int, nargs="*", metavar="WIDTH")
        elif kind == "choice":
            kwargs.update(choices=flag["choices"])
        elif kind.endswith("_or_none"):
            kwargs.update(type=_or_none(_TYPES[kind.split("_")[0]]), metavar="N|none")
        else:
            kwargs["type"] = _TYPES[kind]
        names = ["--" + name.replace("_", "-")] + (["--epochs"] if name == "max_epochs" else [])
        group.add_argument(*names, **kwargs)


def _or_none(number):
    def parse(text):
        return None if text.lower() == "none" else number(text)
    parse.__name__ = f"{number.__name__} or none"
    return parse


def cli_spec():
    """What the command's help needs, derived from the studies and MLPClassifier.

    The studies' names and titles, the data sets, and one entry per flag of
    ``sknets train``: the parameter's name, its kind (how the flag parses),
    its choices and its help, the first sentence of the parameter's entry
    in the ``Parameters`` section of MLPClassifier's docstring, with the
    default. Building it imports torch, so the command reads it from
    ``_cli_spec.py`` (see :func:`write_cli_spec`).

    Examples
    --------
    >>> from sknets.studies.cli import cli_spec
    >>> spec = cli_spec()  # doctest: +SKIP
    >>> spec["train_flags"][0]["help"]  # doctest: +SKIP
    'Width of each hidden layer; `()` trains a network with no hidden layer (a linear model). \
(default: (100,))'
    """
    from sklearn.externals._numpydoc.docscrape import NumpyDocString

    from .. import _params
    from ..mlp import MLPClassifier
    from . import STUDIES
    from .data import DATASETS

    meanings = {p.name: _first_sentence(" ".join(p.desc))
                for p in NumpyDocString(MLPClassifier.__doc__)["Parameters"]}
    constraints = MLPClassifier._parameter_constraints
    flags = []
    for name, param in inspect.signature(MLPClassifier).parameters.items():
        if name in _NOT_FLAGS:
            continue
        default = param.default
        options = [c for c in constraints.get(name, []) if isinstance(c, _params.Options)]
        choices = [o for c in options for o in c.options if isinstance(o, str)]
        if isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, tuple):
            kind = "widths"
        elif choices:
            kind = "choice"
        elif any(None in c.options for c in options):
            kind = ("int" if isinstance(default, int) else "float") + "_or_none"
        else:
            kind = type(default).__name__
        if name not in meanings:
            raise ValueError(f"MLPClassifier's docstring does not describe {name!r}; add it "
                             "to its Parameters section.")
        # `sknets train` prints its per-epoch log unless told otherwise.
        shown = 1 if name == "verbose" else "none" if default is None else default
        flags.append({"name": name, "kind": kind, "choices": choices or None,
                      "help": f"{meanings[name]} (default: {shown})"})
    return {"studies": [(name, study.title) for name, study in STUDIES.items()],
            "datasets": list(DATASETS), "train_flags": flags}


def _first_sentence(text):
    text = text.replace("``", "`")
    match = re.match(r"(.+?(?<!e\.g)(?<!i\.e)\.)(\s|$)", text)
    return match.group(1) if match else text


def write_cli_spec(path=_SPEC_FILE):
    """Write :func:`cli_spec` to ``_cli_spec.py``, the help the command prints.

    Run it after changing a study's title, a data set or a parameter of
    MLPClassifier (the tests say when)::

        python -c "from sknets.studies.cli import write_cli_spec; write_cli_spec()"
    """
    text = ('"""What the `sknets` command\'s help shows, from `sknets.studies.cli.cli_spec()`.\n\n'
            "Written by `sknets.studies.cli.write_cli_spec()`; do not edit by hand.\n"
            '"""\n\nSPEC = ' + pprint.pformat(cli_spec(), width=96, sort_dicts=False) + "\n")
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def _study_settings(args, **extra):
    from . import StudySettings

    return StudySettings(random_state=args.seed, device=args.device, n_threads=args.n_threads,
                         progress=not args.quiet, normalize=args.normalize, **extra)


def _load(args):
    from . import load_study_data

    return load_study_data(args.dataset, data_home=args.data_home, n_train=args.n_train,
                           n_test=args.n_test, random_state=args.seed)


def _run_study(args, command):
    from . import run_study

    data = _load(args)
    settings = _study_settings(args, epochs=args.epochs, lr=args.lr, repeats=args.repeats,
                               batch_size=args.batch_size, verbose=args.verbose)
    report = run_study(args.name, data, settings)
    return _finish(report, args, command, f"sknets-{args.name}")


def _run_train(args, command):
    """``sknets train``: one MLPClassifier from the flags, fitted and reported."""
    from ..mlp import MLPClassifier
    from . import default_threads, fit_and_report
    from .report import Report

    data = _load(args)
    params = {name: value for name, value in vars(args).items()
              if name in inspect.signature(MLPClassifier).parameters and name not in _NOT_FLAGS}
    if "hidden_layers" in params:
        params["hidden_layers"] = tuple(params["hidden_layers"])
    model = MLPClassifier(random_state=args.seed, device=args.device,
                          n_threads=default_threads(data, args.n_threads), **params)
    report = Report(f"sknets train: MLPClassifier on {data.name}")
    fit_and_report(model, data, report, normalize=args.normalize)
    status = _finish(report, args, command, "sknets-train")
    if args.save:
        model.save(args.save)
        print(f"model saved to {args.save} (load it with sknets.load; it predicts class "
              "numbers, as the sknets.datasets fetchers' targets)")
    return status


def _finish(report, args, command, default_out):
    report.results["command"] = command
    path = report.write(args.out or default_out)
    table = report.displays.get("test_results", report.tables.get("test_results"))
    if table is not None:
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    comparison = report.results.get("comparison")
    if comparison and comparison.get("sentences"):
        print("\n".join([comparison["verdict"], *comparison["sentences"]]))
    print(f"report written to {path}")
    return 0


__all__ = ["cli_spec", "main", "write_cli_spec"]
