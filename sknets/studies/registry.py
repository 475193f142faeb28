"""The registry of studies: what each one is, its settings, and how to run one.

A study module defines one function ``run(study, data, settings, report)``
that trains the study's models and fills the report, and registers it with
:func:`register`; its docstring is the description users read in the report.
Importing a public name from :mod:`sknets.studies` imports every study
module, and so fills ``STUDIES``.
"""

from dataclasses import dataclass, field

from .report import Report


@dataclass
class StudySettings:
    """What the user may change in every study.

    Attributes
    ----------
    epochs : int or None
        ``max_epochs`` of every network; None keeps the study's default.
    lr : float or None
        Learning rate of every network (in the optimizers study, of every
        optimizer); None keeps the study's default.
    batch_size : int or None
        Mini-batch size of every network; None keeps the study's default.
    random_state : int
        Seed of the first run of every network (the same initial weights
        where the architectures agree); run ``i`` uses ``random_state + i``.
    repeats : int
        Runs of every model, one per seed: the report gives each score's
        mean with a 95% interval, and tests each model against the best.
    device : str
        Torch device of every network.
    n_threads : int or None
        Torch threads of every network.
    verbose : int
        ``verbose`` of every network (1 prints a line per epoch).
    progress : bool
        Show a progress bar over the epochs of every run of the study.
    normalize : bool
        Confusion matrices as fractions of each true class (rows sum to 1).

    Examples
    --------
    >>> from sknets.studies import StudySettings
    >>> StudySettings(epochs=5).overrides()["max_epochs"]
    5
    """

    epochs: int = None
    lr: float = None
    batch_size: int = None
    random_state: int = 0
    repeats: int = 5
    device: str = "cpu"
    n_threads: int = None
    verbose: int = 0
    progress: bool = True
    normalize: bool = False

    def __post_init__(self):
        if int(self.repeats) != self.repeats or self.repeats < 1:
            raise ValueError(f"repeats must be a positive whole number, got {self.repeats!r}.")

    def overrides(self):
        """The estimator parameters these settings fix."""
        given = {"max_epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size}
        fixed = {k: v for k, v in given.items() if v is not None}
        return {**fixed, "random_state": self.random_state, "device": self.device,
                "n_threads": self.n_threads, "verbose": self.verbose}


@dataclass
class Study:
    """A registered study: what it is and the training settings per data size.

    Attributes
    ----------
    name : str
        The name ``sknets study NAME`` takes.
    title : str
        One line, for the report's heading and ``sknets study --help``.
    description : str
        What the study trains and compares (its function's docstring).
    run : callable
        ``run(study, data, settings, report)`` trains the models and fills
        the report.
    small, full : dict
        Estimator parameters on small data (the 8x8 digits) and on the 28x28
        data sets.

    Examples
    --------
    >>> from sknets.studies import STUDIES, StudySettings, load_study_data
    >>> params = STUDIES["architectures"].params(load_study_data(), StudySettings(lr=0.1))
    >>> params["lr"], params["hidden_layers"], params["n_threads"]
    (0.1, (100,), 1)
    """

    name: str
    title: str
    description: str
    run: callable
    small: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)

    def params(self, data, settings, **model_params):
        """Estimator parameters: study defaults < model's own < user settings."""
        defaults = self.small if data.small else self.full
        params = {**defaults, **model_params, **settings.overrides()}
        params["n_threads"] = default_threads(data, params["n_threads"])
        return params


def default_threads(data, n_threads):
    """``n_threads`` for a network trained on ``data``: 1 on small data.

    Networks that small gain nothing from more threads, and lose much when
    the cores are shared; an explicit ``n_threads`` is kept.

    Examples
    --------
    >>> from sknets.studies import default_threads, load_study_data
    >>> data = load_study_data("digits")
    >>> default_threads(data, None), default_threads(data, 4)
    (1, 4)
    """
    return 1 if n_threads is None and data.small else n_threads


#: Name -> Study, in the order ``sknets study --help`` lists them.
STUDIES = {}


def register(name, title, small, full):
    """Register the decorated ``run(study, data, settings, report)`` as a study.

    Its docstring becomes the study's description; ``small`` and ``full``
    are the estimator parameters on small and on 28x28 data (see
    :class:`Study`).

    Examples
    --------
    >>> from sknets.studies.registry import STUDIES, register
    >>> @register("demo", "A demonstration", small={"max_epochs": 1}, full={})
    ... def _demo(study, data, settings, report):
    ...     '''Trains nothing.'''
    >>> STUDIES.pop("demo").description
    'Trains nothing.'
    """
    def decorate(run):
        STUDIES[name] = Study(name, title, " ".join((run.__doc__ or "").split()), run,
                              small, full)
        return run
    return decorate


def run_study(name, data, settings=None, report=None):
    """Run a named study and return its report.

    Parameters
    ----------
    name : str
        A key of ``STUDIES``.
    data : StudyData
        From :func:`load_study_data`.
    settings : StudySettings, default=None
        User overrides; the study's defaults if None.
    report : sknets.studies.report.Report, default=None
        Report to fill; a new one if None.

    Returns
    -------
    sknets.studies.report.Report
        Call its ``write(folder)`` to save the HTML, PNG, CSV and JSON files.

    Raises
    ------
    ValueError
        If ``name`` is not a registered study.

    Examples
    --------
    Training takes seconds even on the digits, so this is not run here:

    >>> from sknets.studies import StudySettings, load_study_data, run_study
    >>> data = load_study_data("digits")
    >>> report = run_study("architectures", data, StudySettings(epochs=2))  # doctest: +SKIP
    >>> report.tables["test_results"].index.tolist()  # doctest: +SKIP
    ['1 layer', '2 layers', '1 layer + L2', '1 layer + dropout']
    """
    if name not in STUDIES:
        raise ValueError(f"Unknown study {name!r}; the studies are {', '.join(STUDIES)}.")
    study = STUDIES[name]
    settings = settings or StudySettings()
    report = report or Report(f"sknets study: {study.title}")
    report.results["study"] = name
    report.section("Study", study.description)
    report.describe_data(data.describe())
    study.run(study, data, settings, report)
    return report


__all__ = ["STUDIES", "Study", "StudySettings", "default_threads", "register", "run_study"]
