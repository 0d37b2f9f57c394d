"""The seeded experiments by name: one entry for the CLI and the lab.

Each experiment of :data:`~keras_resnet_lab.catalog.COMPARISONS` tests one or more of the
papers' findings (:mod:`keras_resnet_lab.findings`). Its function runs ONE seed (a training
comparison on the embedded 8x8 digits, or an exact computation on one seeded task) and returns
a result whose ``statistics()`` gives ``{finding key: {criterion key: value}}`` in the
registry's units. :func:`run_comparison` runs the function once per seed (through
:func:`keras_resnet_lab.parallel.run_jobs`, in worker processes if asked) and returns a
:class:`SeededComparison`: every statistic over the seeds (:func:`~keras_resnet_lab.findings.
over_seeds`, a t interval; or :func:`~keras_resnet_lab.findings.over_range` for exact
computations), judged by :func:`keras_resnet_lab.findings.assess` against the registry.

Settings: :data:`DEFAULTS` are the settings where the findings can show, as fast as that
allows; :data:`SMOKE` (``smoke=True``, the lab's ``--quick``) are runs of a few seconds per
seed that exercise everything, where the findings need not show.
"""

import dataclasses
import importlib
import math

import numpy as np

from keras_resnet_lab._checks import boolean, integer, one_of, positive_int, sequence
from keras_resnet_lab.analysis.results import Result, new_figure
from keras_resnet_lab.catalog import COMPARISONS

#: Multi-residual at equal parameters on the 8x8 digits: 2 stages of 16 channels, 8 blocks of
#: k = 1 against 2 blocks of k = 4 (benchmarks/multires_abdi.py --quick; at 8 channels the
#: deeper net generalizes better, the paper's depth threshold).
MULTIRES = dict(total_branches=4, branches=(1, 4), widths=(16, 16), batch_size=128,
                learning_rate=0.1, jit_compile=False, epochs=6)

#: The settings of each experiment (keyword arguments of its function, over the function's
#: own defaults), where its findings can show.
DEFAULTS = {
    "highway": {},
    "scaling": {},
    "sharing": {},
    "looks_linear": {},
    "multires": MULTIRES,
    "depth": {},
    # 12 blocks = 24 rectifier layers, where the paper's feedforward nets reach white noise.
    "shattering": dict(kinds=("plain_bn", "residual_bn", "looks_linear"),
                       depths=(1, 2, 4, 8, 12)),
    "hessian": {},
}

#: The settings of ``smoke=True`` runs (the lab's ``--quick``): seconds per seed.
SMOKE = {
    "highway": dict(depths=(5, 20), epochs=6),
    "scaling": dict(blocks=20, epochs=2),
    "sharing": dict(epochs=2),
    "looks_linear": dict(blocks=10, epochs=3),
    "multires": dict(MULTIRES, epochs=3),
    "depth": dict(depths=(8, 14), epochs=2),
    "shattering": dict(kinds=("plain_bn", "residual_bn"), depths=(1, 12), width=64),
    "hessian": dict(max_depth=9),
}

#: Experiments whose function takes ``seeds=[seed]`` rather than ``seed=seed``.
_SEED_LISTS = ("multires", "shattering")


def comparison_data(name):
    """``(train, test)`` digits arrays of experiment ``name`` (8x8, as its script's quick
    mode), or None for an experiment that builds its own inputs."""
    from keras_resnet_lab.analysis._training import training_digits

    entry = COMPARISONS[one_of("name", name, tuple(COMPARISONS))]
    if not entry.channels:
        return None
    return training_digits(8, channels=entry.channels,
                           batch_size=64 if entry.whole_batches else None,
                           flatten=entry.flatten)


def settings_of(name, *, epochs=None, smoke=False):
    """The keyword arguments :func:`run_comparison` passes to experiment ``name``'s function:
    :data:`DEFAULTS` (or :data:`SMOKE`), with ``epochs`` where given (training only)."""
    name = one_of("name", name, tuple(COMPARISONS))
    settings = dict((SMOKE if boolean("smoke", smoke) else DEFAULTS)[name])
    if epochs is not None:
        if not COMPARISONS[name].channels:
            raise ValueError(f"`epochs` applies to the training comparisons; {name!r} trains "
                             "nothing (give None).")
        settings["epochs"] = positive_int("epochs", epochs)
    return settings


def run_seed(name, seed, settings=None, progress_bar=False):
    """Experiment ``name`` for one ``seed`` with ``settings`` (its function's keyword
    arguments): the per-seed result (what a job of :func:`run_comparison` runs)."""
    entry = COMPARISONS[one_of("name", name, tuple(COMPARISONS))]
    compare = getattr(importlib.import_module(f"keras_resnet_lab.analysis.{entry.module}"),
                      entry.function)
    kwargs = dict(settings or {}, progress_bar=progress_bar)
    kwargs.update({"seeds": (seed,)} if name in _SEED_LISTS else {"seed": seed})
    data = comparison_data(name)
    if data is None:
        return compare(**kwargs)
    train, test = data
    return compare(train, test, **kwargs)


def _seeds(seeds):
    values = sequence("seeds", seeds)
    values = [integer("seeds", s, 0, 2 ** 31 - 1, what="a seed") for s in values]
    if len(set(values)) != len(values):
        raise ValueError(f"`seeds` must not repeat a seed, got {values}.")
    return values


def run_comparison(name, *, seeds=(0, 1, 2), epochs=None, smoke=False, progress_bar=True,
                   processes=1):
    """Run experiment ``name`` once per seed and judge its findings over the seeds.

    Args:
        name: one of :data:`~keras_resnet_lab.catalog.COMPARISONS` (``"highway"``,
            ``"scaling"``, ``"sharing"``, ``"looks_linear"``, ``"multires"``, ``"depth"``,
            ``"shattering"``, ``"hessian"``).
        seeds: the seeds (a list of distinct integers >= 0): each trains its own networks
            (or draws its own task) with that seed. At least 2 give an interval; the
            registry's verdicts need 3 or more to be decisive.
        epochs: training epochs of every network (default: the experiment's own; training
            comparisons only).
        smoke: the :data:`SMOKE` settings: seconds per seed; the findings need not show.
        progress_bar: show progress (per seed in this process; over the seeds with workers).
        processes: worker processes (1: one seed after the other, here; see
            :func:`keras_resnet_lab.parallel.run_jobs`).

    Returns:
        :class:`SeededComparison`.

    Example:
        >>> result = run_comparison("scaling", seeds=(0, 1, 2))  # doctest: +SKIP
        >>> print(result.assessments()[0].describe())  # doctest: +SKIP
    """
    from keras_resnet_lab.analysis._common import progress
    from keras_resnet_lab.parallel import Job, run_jobs

    name = one_of("name", name, tuple(COMPARISONS))
    seeds = _seeds(seeds)
    settings = settings_of(name, epochs=epochs, smoke=smoke)
    progress_bar = boolean("progress_bar", progress_bar)
    processes = positive_int("processes", processes)
    inner = progress_bar and processes == 1
    jobs = [Job(f"{__name__}:run_seed", dict(name=name, seed=s, settings=settings,
                                             progress_bar=inner), f"{name} seed {s}")
            for s in seeds]
    bar = progress(total=len(jobs), desc=f"{name} x{len(jobs)} seeds", enabled=progress_bar)
    try:
        runs = run_jobs(jobs, processes=processes,
                        progress=lambda job, done, total: bar.update(1))
    finally:
        bar.close()
    return SeededComparison.from_runs(name, seeds, runs, settings)


@dataclasses.dataclass
class SeededComparison(Result):
    """An experiment run once per seed, and its findings judged over the seeds.

    Attributes:
        name: the experiment (:data:`~keras_resnet_lab.catalog.COMPARISONS`).
        seeds: the seeds, in the order of ``runs``.
        runs: the per-seed results (or their dicts, for a result read back from JSON).
        settings: the keyword arguments of the experiment's function.
        per_seed: ``statistics()`` of each run: ``{finding key: {criterion key: value}}``.
        interval: ``"seeds"`` (mean and t interval over the seeds) or ``"range"`` (median and
            ``[min, max]``: exact computations, where every seed's task must satisfy the
            claim).
        notes: ``{finding key: text}``: what a reader needs about the measurement (which
            statistics it used ...).
    """

    name: str
    seeds: list
    runs: list
    settings: dict
    per_seed: list
    interval: str = "seeds"
    notes: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_runs(cls, name, seeds, runs, settings=None):
        """The comparison of per-seed result objects: each has ``statistics()``, and may have
        ``notes()`` (``{finding: text}``, the same for every seed), ``descriptive()``
        (``{finding: {label: number}}``: numbers reported per seed in the notes, not judged)
        and an ``interval`` class attribute (``"seeds"`` by default)."""
        runs = list(runs)
        seeds = [int(s) for s in seeds]
        if not runs or len(runs) != len(seeds):
            raise ValueError(f"`runs` must hold one result per seed ({len(seeds)}), got "
                             f"{len(runs)}.")
        first = runs[0]
        notes = dict(first.notes()) if hasattr(first, "notes") else {}
        if hasattr(first, "descriptive"):
            described = [r.descriptive() for r in runs]
            for key, numbers in described[0].items():
                parts = "; ".join(f"{label}: " + ", ".join(
                    f"{d[key][label]:.3g}" for d in described) for label in numbers)
                which = ", ".join(str(s) for s in seeds)
                text = f"Descriptive, seed by seed ({which}): {parts}."
                notes[key] = f"{notes[key]} {text}" if notes.get(key) else text
        return cls(name=name, seeds=seeds, runs=runs, settings=dict(settings or {}),
                   per_seed=[r.statistics() for r in runs],
                   interval=getattr(first, "interval", "seeds"), notes=notes)

    @classmethod
    def from_dict(cls, data):
        """A comparison read back from :meth:`to_dict` (its runs stay dicts)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @property
    def findings(self):
        """The finding keys measured, in order."""
        keys = []
        for stats in self.per_seed:
            keys += [k for k in stats if k not in keys]
        return keys

    def values(self, finding, criterion):
        """The per-seed values of one statistic (NaN where a seed has none)."""
        out = []
        for stats in self.per_seed:
            value = stats.get(finding, {}).get(criterion)
            out.append(float("nan") if value is None else float(value))
        return out

    def estimate(self, finding, criterion):
        """One statistic over the seeds: :func:`~keras_resnet_lab.findings.over_seeds`, or
        :func:`~keras_resnet_lab.findings.over_range` for ``interval="range"``."""
        from keras_resnet_lab.findings import over_range, over_seeds

        values = self.values(finding, criterion)
        if self.interval == "range":
            return over_range(values, unit="tasks")
        return over_seeds(values)

    def assessments(self):
        """Every finding of the experiment judged over the seeds
        (:func:`keras_resnet_lab.findings.assess`), a list of ``Assessment``."""
        from keras_resnet_lab.findings import assess, finding

        out = []
        for key in self.findings:
            entry = finding(key)
            estimates = {c.key: self.estimate(key, c.key) for c in entry.criteria}
            out.append(assess(key, estimates, seeds=self.seeds, notes=self.notes.get(key, "")))
        return out

    def describe(self):
        """A paragraph: what ran, then each finding's :meth:`Assessment.describe`."""
        entry = COMPARISONS.get(self.name)
        what = entry.description if entry is not None else self.name
        unit = "regression tasks (seeds)" if self.interval == "range" else "seeds"
        head = (f"{what[0].upper()}{what[1:]}, over {len(self.seeds)} {unit} "
                f"({', '.join(str(s) for s in self.seeds)}).")
        return " ".join([head] + [a.describe() for a in self.assessments()])

    def to_dict(self):
        """The per-seed results' dicts, their statistics, the settings, each finding's
        ``Assessment.to_dict()`` and the paragraph: enough to report without the objects."""
        out = super().to_dict()
        out["assessments"] = [a.to_dict() for a in self.assessments()]
        out["description"] = self.describe()
        return out

    def figure(self):
        """The first seed's figure (when its result object is at hand) and, below it, every
        criterion: the per-seed values, the estimate with its interval and the threshold."""
        first = self.runs[0] if hasattr(self.runs[0], "draw") else None
        criteria = [(a, c) for a in self.assessments() for c in a.finding.criteria]
        top = getattr(first, "figure_columns", 0) if first is not None else 0
        ncols = max(top, len(criteria), 1)
        nrows = 2 if top else 1
        figure, axes = new_figure(ncols, nrows, width=4.5, height=3.8)
        if top:
            first.draw(axes[:top])
            for ax in axes[top:ncols]:
                ax.set_axis_off()
        bottom = axes[ncols:] if top else axes
        for ax, (assessment, criterion) in zip(bottom, criteria):
            self._draw_criterion(ax, assessment, criterion)
        for ax in bottom[len(criteria):]:
            ax.set_axis_off()
        return figure

    def _draw_criterion(self, ax, assessment, criterion):
        values = np.asarray(self.values(assessment.key, criterion.key), dtype=float)
        x = np.arange(len(values))
        ax.plot(x, values, "o", color="C0", label="per seed")
        e = assessment.estimates[criterion.key]
        if math.isfinite(e.value):
            at = len(values)
            if e.has_interval:
                ax.errorbar([at], [e.value], yerr=[[e.value - e.low], [e.high - e.value]],
                            fmt="s", color="C3", capsize=4, label=e.method)
            else:
                ax.plot([at], [e.value], "s", color="C3", label=e.method)
        ax.axhline(criterion.threshold, color="gray", ls="--",
                   label=f"{criterion.comparison} {criterion.threshold:g}")
        ax.set_xticks(list(x) + [len(values)], [str(s) for s in self.seeds] + ["all"])
        ax.set(xlabel="seed", ylabel=criterion.unit,
               title=f"{assessment.key}\n{criterion.key}: {assessment.verdicts[criterion.key]}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
