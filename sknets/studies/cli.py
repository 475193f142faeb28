"""The ``sknets`` command: run a study, or train one network, and write a report.

::

    sknets study architectures                      # bundled 8x8 digits, no download
    sknets study optimizers --dataset mnist --data-home ~/data --out runs/optimizers
    sknets train --dataset fashion-mnist --hidden-layers 256 128 --dropout 0.2 \\
        --epochs 30 --save model.sknets

Both commands write ``report.html`` (self-contained: figures, tables, the
exact parameters, library versions), the figures as PNG and the tables as
CSV plus ``results.json`` (its schema: :mod:`sknets.studies.report`) into
``--out``. ``sknets --version`` prints the version. ``python -m sknets`` is
the same command.
"""

import argparse
import inspect
import shlex
import sys

from .._version import __version__

_DATA_HELP = "data set: the bundled 8x8 digits (default, no download) or a 28x28 set"

# Heavy modules (the studies, MLPClassifier, the report: torch and matplotlib,
# seconds to import) are imported inside the functions that need them, and
# the flags of a command are only built when that command runs, so that
# `sknets --help` and `sknets --version` answer at once.
_COMMANDS = {
    "study": "run a named study and write its report",
    "train": "fit one MLPClassifier, print its log and test score, write a report",
}


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


def _add_study_arguments(study):
    from . import STUDIES
    from .data import DATASETS

    lines = [f"  {name:<14} {entry.title}" for name, entry in STUDIES.items()]
    study.epilog = "studies:\n" + "\n".join(lines)
    study.formatter_class = argparse.RawDescriptionHelpFormatter
    study.add_argument("name", choices=list(STUDIES), metavar="NAME", help="the study to run")
    _add_data_arguments(study, DATASETS)
    study.add_argument("--epochs", type=int, help="max_epochs of every network "
                                                  "(default: the study's)")
    study.add_argument("--lr", type=float, help="learning rate of every network")
    study.add_argument("--batch-size", type=int, help="mini-batch size of every network")
    study.add_argument("--verbose", type=int, default=0,
                       help="1 prints a line per epoch of every network")
    study.set_defaults(handler=_run_study)


def _add_train_arguments(train):
    from .data import DATASETS

    train.description = ("Fit one MLPClassifier (every constructor parameter is a flag), "
                         "print the per-epoch log and the test score, and write a report.")
    _add_data_arguments(train, DATASETS)
    _add_estimator_arguments(train)
    train.add_argument("--save", metavar="PATH",
                       help="save the fitted model (estimator.save; load with sknets.load)")
    train.set_defaults(handler=_run_train)


def _add_data_arguments(parser, datasets):
    parser.add_argument("--dataset", default="digits", choices=datasets, help=_DATA_HELP)
    parser.add_argument("--data-home", metavar="PATH",
                        help="folder of the downloaded data sets (default: $SKNETS_DATA "
                             "or ~/sknets_data)")
    parser.add_argument("--n-train", type=int, metavar="N",
                        help="use N training images only (validation is carved from them)")
    parser.add_argument("--n-test", type=int, metavar="N", help="use N test images only")
    parser.add_argument("--out", metavar="DIR",
                        help="folder of the report (default: sknets-<name>)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the splits and the networks (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--n-threads", type=int, help="torch threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# MLPClassifier parameters that are not flags of `sknets train`, or are under
# another name: --seed, --device, --n-threads, --verbose are set separately.
_NOT_FLAGS = {"random_state", "device", "n_threads", "warm_start"}


def _add_estimator_arguments(parser):
    from .. import _params
    from ..mlp import MLPClassifier

    group = parser.add_argument_group("network (MLPClassifier parameters; see its docstring)")
    constraints = MLPClassifier._parameter_constraints
    for name, param in inspect.signature(MLPClassifier).parameters.items():
        if name in _NOT_FLAGS:
            continue
        flags = ["--" + name.replace("_", "-")] + (["--epochs"] if name == "max_epochs" else [])
        default = param.default
        kwargs = {"dest": name, "default": argparse.SUPPRESS}
        options = [c for c in constraints.get(name, []) if isinstance(c, _params.Options)]
        choices = [o for c in options for o in c.options if isinstance(o, str)]
        if name == "verbose":
            kwargs.update(type=int, default=1, help="0 silent, 1 a line per epoch (default), "
                                                    "2 also a bar per epoch")
        elif isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kwargs.update(type=int, nargs="*", metavar="WIDTH")
        elif choices:
            kwargs.update(choices=choices)
        elif any(None in c.options for c in options):
            number = int if isinstance(default, int) else float
            kwargs.update(type=_or_none(number), metavar="N|none")
        else:
            kwargs["type"] = type(default)
        if "help" not in kwargs:
            kwargs["help"] = f"default: {default!r}"
        group.add_argument(*flags, **kwargs)


def _or_none(number):
    def parse(text):
        return None if text.lower() == "none" else number(text)
    parse.__name__ = f"{number.__name__} or none"
    return parse


def _study_settings(args, **extra):
    from . import StudySettings

    return StudySettings(random_state=args.seed, device=args.device, n_threads=args.n_threads,
                         progress=not args.quiet, **extra)


def _load(args):
    from . import load_study_data

    return load_study_data(args.dataset, data_home=args.data_home, n_train=args.n_train,
                           n_test=args.n_test, random_state=args.seed)


def _run_study(args, command):
    from . import run_study

    data = _load(args)
    settings = _study_settings(args, epochs=args.epochs, lr=args.lr,
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
    fit_and_report(model, data, report)
    status = _finish(report, args, command, "sknets-train")
    if args.save:
        model.save(args.save)
        print(f"model saved to {args.save} (load it with sknets.load)")
    return status


def _finish(report, args, command, default_out):
    report.results["command"] = command
    path = report.write(args.out or default_out)
    table = report.tables.get("test_results")
    if table is not None:
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"report written to {path}")
    return 0


__all__ = ["main"]
