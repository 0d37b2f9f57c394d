"""Unrolled iterative estimation (Greff, Srivastava & Schmidhuber, arXiv 1612.07771).

Greff et al. read the blocks of one stage of a highway or residual network as successive
estimates of the *same* features: block ``i`` outputs ``h_i``, an estimate of the stage's final
representation ``h_end``. If the estimates are unbiased, the estimation error ``h_i - h_end``
has mean 0 (their equation 5), and if every block refines the estimate, its spread shrinks
with depth inside the stage. They measured both on a ResNet-50 (ImageNet): the mean stays near
0 in every stage while the standard deviation falls block after block.

:func:`estimation_errors` measures, for every block of every stage of a chain model (ResNet,
plain twin, highway, multi-residual), the mean and standard deviation over examples and units
of ``h_i - h_end`` and the same divided by the RMS of ``h_end`` (so "near 0" is read against
the scale of the representation). The last block of a stage *is* ``h_end``: its error is 0 by
definition and it is not a measurement. A stage with a single block has nothing to measure.
:meth:`EstimationResult.assessments` tests the claim (``greff_estimation`` in
:mod:`keras_resnet_lab.findings.registry`) with bootstrap intervals over the examples.
"""

import dataclasses
import math

import numpy as np

from keras_resnet_lab._checks import boolean, positive_int
from keras_resnet_lab.analysis._common import batches, check_data, images_or_pair, progress
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap, missing
from keras_resnet_lab.findings.verdict import RESAMPLES
from keras_resnet_lab.models.surgery import chain_steps, run_plan


@dataclasses.dataclass
class EstimationResult(Result):
    """Estimation error ``h_i - h_end`` of every block against the end of its stage.

    Per block (chain order; ``stages[i]`` its stage, ``is_stage_end[i]`` whether it is the
    stage's last block): ``mean[i]`` and ``std[i]`` are the mean and (population) standard
    deviation of ``h_i - h_end`` over all examples and units; ``normalized_mean`` and
    ``normalized_std`` are those divided by ``rms_end[i]``, the root mean square of ``h_end``
    of the block's stage; ``relative_error[i]`` is the mean over examples of
    ``||h_i - h_end|| / ||h_end||``; ``unit_bias[i]`` is the RMS over units of each unit's
    mean error (over examples), divided by ``rms_end`` (0 when every unit is unbiased, which
    the pooled mean alone cannot tell).

    A stage's last block has error 0 by definition (``measured[i]`` is False). Blocks of a
    stage with a single block (listed in ``single_block_stages``), and blocks whose output
    shape differs from their stage's end (e.g. converted ResNetV2, which strides in the last
    block) are not measured either: their statistics are None.

    Kept for intervals (not in the JSON), so that the statistics can be recomputed on any
    resample of the examples: ``error_sum`` and ``error_squares`` (examples x blocks), per
    example the sum over units of ``h_i - h_end`` and of its square (0 where a block is not
    measured); ``block_units``, the units per example of each block; ``end_squares``
    (examples x stages, stages in the order of ``end_stages``), per example the sum of
    squares of ``h_end``, and ``end_units``, its units per example.
    """

    model_name: str
    n_examples: int
    block_names: list
    stages: list
    is_stage_end: list
    measured: list
    mean: list
    std: list
    rms_end: list
    normalized_mean: list
    normalized_std: list
    relative_error: list
    unit_bias: list
    single_block_stages: list
    error_sum: np.ndarray = array_field()
    error_squares: np.ndarray = array_field()
    block_units: np.ndarray = array_field()
    end_squares: np.ndarray = array_field()
    end_units: np.ndarray = array_field()
    end_stages: list = array_field()

    figure_columns = 2

    def stage_indices(self, stage):
        """Chain indices of the blocks of ``stage``, in order."""
        return [i for i, s in enumerate(self.stages) if s == stage]

    def measured_stages(self):
        """The stages with at least one measured block."""
        return sorted({s for s, m in zip(self.stages, self.measured) if m})

    def std_decrease_fraction(self):
        """Fraction of consecutive measured blocks of a stage whose normalized std is lower
        than the previous block's (1.0: it shrinks at every step; None: nothing to compare)."""
        steps = []
        for stage in self.measured_stages():
            values = [self.normalized_std[i] for i in self.stage_indices(stage)
                      if self.measured[i]]
            steps.extend(b < a for a, b in zip(values, values[1:]))
        return float(np.mean(steps)) if steps else None

    def moments(self, examples=None):
        """Pooled mean and (population) standard deviation over examples and units of
        ``h_i - h_end`` of every measured block (NaN elsewhere), on all the examples or on
        ``examples`` (indices, repeats allowed); see :func:`error_moments`."""
        if self.error_sum is None:
            raise ValueError("this EstimationResult has no per-example sums: intervals need "
                             "the result returned by estimation_errors.")
        measured = np.asarray(self.measured, dtype=bool)
        mean, std = np.full(len(measured), np.nan), np.full(len(measured), np.nan)
        mean[measured], std[measured] = error_moments(
            np.asarray(self.error_sum)[:, measured], np.asarray(self.error_squares)[:, measured],
            np.asarray(self.block_units)[measured], examples)
        return mean, std

    def assessments(self, seed=0, resamples=RESAMPLES):
        """The registry's ``greff_estimation`` on this result: :func:`mean_over_spread` and
        :func:`spread_change` over the measured blocks, with bootstrap intervals over the
        examples.

        Returns:
            a list of one :class:`keras_resnet_lab.findings.Assessment`.

        Example:
            >>> result.assessments()[0].describe()  # doctest: +SKIP
        """
        measured = np.asarray(self.measured, dtype=bool)
        stages = np.asarray(self.stages)[measured]

        def moments(i):
            mean, std = self.moments(i)
            return mean[measured], std[measured]

        options = dict(resamples=resamples, seed=seed)
        n = self.n_examples
        estimates = {
            "mean_over_spread": bootstrap(lambda i: mean_over_spread(*moments(i)), n,
                                          **options)}
        if any(a == b for a, b in zip(stages, stages[1:])):
            estimates["spread_change"] = bootstrap(
                lambda i: spread_change(moments(i)[1], stages), n, **options)
        else:
            estimates["spread_change"] = missing(
                "no stage has two measured blocks (the last block of a stage is h_end): no "
                "step of the spread to measure")
        notes = (f"'{self.model_name}' on {n} examples; {int(measured.sum())} measured blocks "
                 f"in stages {', '.join(map(str, self.measured_stages()))} (the last block of "
                 "a stage is h_end; mean and spread pooled over examples and units).")
        return [assess("greff_estimation", estimates, seeds=(seed,), notes=notes)]

    def draw(self, axes):
        ax1, ax2 = axes
        bars = None
        if self.error_sum is not None:
            rng = np.random.default_rng(0)
            draws = []
            for _ in range(200):
                i = rng.integers(0, self.n_examples, self.n_examples)
                _, std = self.moments(i)
                rms = self._rms_end(i)
                draws.append(std / rms)
            bars = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
        for stage in self.measured_stages():
            idx = [i for i in self.stage_indices(stage) if self.measured[i]]
            end = self.stage_indices(stage)[-1]
            xs = np.array(idx) + 1
            mean = [self.normalized_mean[i] for i in idx]
            std = [self.normalized_std[i] for i in idx]
            color = f"C{(stage - 1) % 10}"
            ax1.errorbar(xs, mean, yerr=std, fmt="o-", capsize=3, color=color,
                         label=f"stage {stage}")
            if bars is None:
                ax2.plot(np.arange(1, len(idx) + 1), std, "o-", color=color,
                         label=f"stage {stage}")
            else:
                low, high = bars[0][idx], bars[1][idx]
                ax2.errorbar(np.arange(1, len(idx) + 1), std, fmt="o-", capsize=3,
                             color=color, label=f"stage {stage} (95% interval)",
                             yerr=np.vstack([np.maximum(np.array(std) - low, 0.0),
                                             np.maximum(high - np.array(std), 0.0)]))
            # The stage's end: error 0 by definition (open marker, not a measurement).
            ax1.plot([xs[-1], end + 1], [mean[-1], 0.0], ":", color=color)
            ax1.plot([end + 1], [0.0], "o", mfc="white", color=color)
            ax2.plot([len(idx), len(idx) + 1], [std[-1], 0.0], ":", color=color)
            ax2.plot([len(idx) + 1], [0.0], "o", mfc="white", color=color)
        ax1.axhline(0, color="gray", lw=1)
        ax1.set(xlabel="block (chain order)", ylabel="mean of (h_i - h_end) / RMS(h_end)",
                title="Estimation error: mean +- std")
        ax2.xaxis.get_major_locator().set_params(integer=True)
        ax2.set(xlabel="block within stage (open: the stage's end, 0 by definition)",
                ylabel="std of (h_i - h_end) / RMS(h_end)",
                title="Spread of the estimation error")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax1.figure.suptitle(f"Unrolled iterative estimation (Greff et al.): '{self.model_name}'",
                            fontsize=10)


    def _rms_end(self, examples):
        """RMS of ``h_end`` of each block's stage on the resample ``examples``."""
        weights = np.bincount(examples, minlength=self.n_examples).astype(float)
        squares = weights @ np.asarray(self.end_squares, dtype=float)
        rms = np.sqrt(squares / (weights.sum() * np.asarray(self.end_units, dtype=float)))
        column = {stage: j for j, stage in enumerate(self.end_stages)}
        return np.array([rms[column[s]] for s in self.stages])


def error_moments(error_sum, error_squares, units, examples=None):
    """Pooled mean and (population) standard deviation over examples and units, from the
    per-example sums ``error_sum`` and sums of squares ``error_squares`` (examples x blocks)
    over ``units`` values per example; on ``examples`` (indices, repeats allowed) if given.

    Example:
        >>> e = np.array([[-1.0, 0.0], [1.0, 2.0]])  # 2 examples, 2 units, one block
        >>> error_moments(e.sum(1, keepdims=True), (e * e).sum(1, keepdims=True), [2])
        (array([0.5]), array([1.11803399]))
    """
    error_sum = np.asarray(error_sum, dtype=float)
    error_squares = np.asarray(error_squares, dtype=float)
    if examples is not None:
        error_sum, error_squares = error_sum[examples], error_squares[examples]
    count = len(error_sum) * np.asarray(units, dtype=float)
    mean = error_sum.sum(axis=0) / count
    std = np.sqrt(np.maximum(error_squares.sum(axis=0) / count - mean * mean, 0.0))
    return mean, std


def mean_over_spread(mean, std):
    """The largest ``|mean| / std`` over the blocks where it is defined (``std > 0``); NaN when
    it is defined nowhere.

    Example:
        >>> mean_over_spread([0.1, -0.3, 0.0], [1.0, 1.0, 0.0])
        0.3
    """
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    defined = std > 0
    if not defined.any():
        return float("nan")
    return float(np.max(np.abs(mean[defined]) / std[defined]))


def spread_change(std, stages):
    """The largest relative change ``(std_{i+1} - std_i) / std_i`` of the spread from one block
    to the next block of the same stage (the blocks in chain order, ``stages`` their stages);
    negative when the spread shrinks at every step. A step from a spread of 0 to 0 is undefined
    and left out; NaN when no step is defined.

    Example:
        >>> round(spread_change([1.0, 0.5, 0.4, 2.0, 1.0], [1, 1, 1, 2, 2]), 6)
        -0.2
    """
    std, stages = np.asarray(std, dtype=float), np.asarray(stages)
    same = stages[1:] == stages[:-1]
    before, after = std[:-1][same], std[1:][same]
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (after - before) / before
    change = change[~np.isnan(change)]
    return float(np.max(change)) if len(change) else float("nan")


class _Moments:
    """Running sums of one block's error against its stage end (float64)."""

    def __init__(self):
        self.count = 0  # values
        self.examples = 0
        self.total = 0.0
        self.squares = 0.0
        self.relative = 0.0
        self.unit_sum = None

    def add(self, error, end):
        error = np.asarray(error, np.float64).reshape(len(error), -1)
        end = np.asarray(end, np.float64).reshape(len(end), -1)
        self.count += error.size
        self.examples += len(error)
        self.total += float(error.sum())
        self.squares += float((error * error).sum())
        norms = np.linalg.norm(end, axis=1)
        ratio = np.linalg.norm(error, axis=1) / np.where(norms > 0, norms, 1.0)
        # An all-zero h_end: relative error 0 if h_i is zero too, else undefined (inf).
        ratio = np.where(norms > 0, ratio, np.where(ratio > 0, np.inf, 0.0))
        self.relative += float(ratio.sum())
        unit = error.sum(axis=0)
        self.unit_sum = unit if self.unit_sum is None else self.unit_sum + unit

    def statistics(self, rms_end):
        mean = self.total / self.count
        std = math.sqrt(max(self.squares / self.count - mean * mean, 0.0))
        unit_mean = self.unit_sum / self.examples
        unit_rms = float(np.sqrt(np.mean(unit_mean * unit_mean)))
        scale = rms_end if rms_end > 0 else float("nan")
        return dict(mean=mean, std=std, normalized_mean=mean / scale,
                    normalized_std=std / scale, relative_error=self.relative / self.examples,
                    unit_bias=unit_rms / scale)


def stage_estimation_errors(outputs):
    """The estimation-error statistics of one stage from its blocks' outputs (numpy).

    Args:
        outputs: list of arrays ``(n, ...)``, the outputs ``h_1 .. h_end`` of the blocks of one
            stage on the same ``n`` examples, all of one shape.

    Returns:
        A list with one dict per block (the last one all zeros: ``h_end - h_end``) holding
        ``mean``, ``std``, ``normalized_mean``, ``normalized_std``, ``relative_error``,
        ``unit_bias`` (see :class:`EstimationResult`) and ``rms_end``.

    Example:
        >>> h1 = np.array([[1.0, 2.0], [3.0, 4.0]]); h2 = np.full((2, 2), 2.0)
        >>> stats = stage_estimation_errors([h1, h2])
        >>> stats[0]["mean"], stats[0]["normalized_mean"]
        (0.5, 0.25)
    """
    outputs = [np.asarray(o, np.float64) for o in outputs]
    if not outputs:
        raise ValueError("`outputs` must hold the outputs of at least one block, got none.")
    end = outputs[-1]
    for i, o in enumerate(outputs):
        if o.shape != end.shape:
            raise ValueError(f"`outputs` must all have one shape (a stage's blocks); output {i} "
                             f"has shape {o.shape}, the last one {end.shape}.")
    rms_end = float(np.sqrt(np.mean(end * end)))
    stats = []
    for o in outputs:
        moments = _Moments()
        moments.add(o - end, end)
        stats.append(dict(moments.statistics(rms_end), rms_end=rms_end))
    return stats


def block_outputs(model, x, steps=None):
    """The output of every block step of ``model`` on the batch ``x`` (inference mode).

    Args:
        model: a chain model (see :func:`keras_resnet_lab.models.surgery.chain_steps`).
        x: a batch of inputs.
        steps: the model's chain steps, if already computed.

    Returns:
        ``[(step, output as numpy), ...]`` in chain order (one entry per block call).

    Example:
        >>> [(s.name, o.shape) for s, o in block_outputs(model, x[:4])][:1]
        [('stage1_block1', (4, 8, 8, 8))]
    """
    steps = chain_steps(model) if steps is None else steps
    collected = []

    def record(step, h):
        out = step(h)
        collected.append((step, np.asarray(out)))
        return out

    run_plan(steps, np.asarray(x, np.float32), block_fn=record)
    return collected


def estimation_errors(model, data, *, batch_size=128, max_examples=None, progress_bar=True):
    """Greff et al.'s estimation error ``h_i - h_end`` of every block of every stage
    (arXiv 1612.07771): its mean and standard deviation per block.

    ``h_i`` is the output of block ``i`` and ``h_end`` that of the last block of the same stage
    (the first, strided block of a stage already has the stage's shape). The finding of the
    paper: the mean is near 0 (the blocks estimate the same features, without bias) and the
    standard deviation shrinks with depth inside each stage.

    Args:
        model: a chain model (ResNet, plain twin, highway, multi-residual; see
            :func:`keras_resnet_lab.models.chain.blocks`) with at least one stage of two or
            more blocks.
        data: ``(x, y)`` (labels unused) or the images alone.
        batch_size: examples per forward pass.
        max_examples: use only the first examples of ``data``.
        progress_bar: show a progress bar.

    Returns:
        :class:`EstimationResult`.

    Raises:
        ValueError: bad data, or no stage with two blocks of the stage's shape (the message
            says which stages have a single block).

    Example:
        >>> result = estimation_errors(model, (x_test, y_test), max_examples=256)
        >>> result.normalized_std  # per block: std of (h_i - h_end) / RMS(h_end)
        >>> result.assessments()[0].describe()
        >>> result.plot("estimation.png")
    """
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    x, _ = check_data(model, images_or_pair(data), max_examples, labels_used=False)
    steps = chain_steps(model)
    block_steps = [s for s in steps if s.block is not None]
    if not block_steps:
        raise ValueError(f"model '{model.name}' has no blocks named 'stage{{s}}_block{{b}}'.")
    stage_of = [s.block.stage for s in block_steps]
    last = {}
    for i, stage in enumerate(stage_of):
        last[stage] = i
    ends = [last[stage] for stage in stage_of]
    measured = [i != ends[i] and block_steps[i].output_shape == block_steps[ends[i]].output_shape
                for i in range(len(block_steps))]
    single = sorted(stage for stage in last if stage_of.count(stage) == 1)
    if not any(measured):
        raise ValueError(
            f"model '{model.name}' has no stage with two or more blocks of one output shape: "
            f"the estimation error h_i - h_end needs a block before the stage's last one "
            f"(stages with a single block: {single or 'none'}).")
    moments = [_Moments() if m else None for m in measured]
    end_squares = {stage: 0.0 for stage in last}
    end_count = {stage: 0 for stage in last}
    end_stages = sorted(last)
    per_example = {"error_sum": np.zeros((len(x), len(block_steps))),
                   "error_squares": np.zeros((len(x), len(block_steps))),
                   "end_squares": np.zeros((len(x), len(end_stages)))}
    block_units = np.zeros(len(block_steps))
    end_units = np.zeros(len(end_stages))
    for lo, hi in progress(batches(len(x), batch_size), desc=f"estimation {model.name}",
                           enabled=progress_bar):
        outputs = [o for _, o in block_outputs(model, x[lo:hi], steps)]
        for stage, i in last.items():
            end = outputs[i].astype(np.float64)
            end_squares[stage] += float((end * end).sum())
            end_count[stage] += end.size
            column = end_stages.index(stage)
            flat = end.reshape(hi - lo, -1)
            per_example["end_squares"][lo:hi, column] = (flat * flat).sum(1)
            end_units[column] = flat.shape[1]
        for i, m in enumerate(moments):
            if m is not None:
                error = outputs[i].astype(np.float64) - outputs[ends[i]]
                m.add(error, outputs[ends[i]])
                flat = error.reshape(hi - lo, -1)
                per_example["error_sum"][lo:hi, i] = flat.sum(1)
                per_example["error_squares"][lo:hi, i] = (flat * flat).sum(1)
                block_units[i] = flat.shape[1]
    rms = {stage: math.sqrt(end_squares[stage] / end_count[stage]) for stage in last}
    keys = ("mean", "std", "normalized_mean", "normalized_std", "relative_error", "unit_bias")
    columns = {k: [] for k in keys}
    for i, m in enumerate(moments):
        if m is not None:
            stats = m.statistics(rms[stage_of[i]])
        elif ends[i] == i and stage_of.count(stage_of[i]) > 1:
            stats = dict.fromkeys(keys, 0.0)  # h_end - h_end: zero by definition
        else:
            stats = dict.fromkeys(keys)
        for k in keys:
            columns[k].append(stats[k])
    return EstimationResult(
        model_name=model.name, n_examples=len(x), block_names=[s.name for s in block_steps],
        stages=stage_of, is_stage_end=[ends[i] == i for i in range(len(block_steps))],
        measured=measured, rms_end=[rms[s] for s in stage_of], single_block_stages=single,
        block_units=block_units, end_units=end_units, end_stages=end_stages, **per_example,
        **columns)
