"""Filter refinement score (Chu, Yang & Tadinada, "Visualizing Residual Networks", arXiv
1701.02362), as a number.

Chu et al. maximized the same channel at the consecutive blocks of a stage of a ResNet-50 and
saw images that change little from block to block: with ``h_{i+1} = h_i + F_i(h_i)``, channel
``j`` of block ``i + 1`` is channel ``j`` of block ``i`` plus a correction, so block ``i + 1``
*refines* the feature of block ``i`` rather than replacing it. In a plain network (the same
layers without shortcuts) nothing ties channel ``j`` of one block to channel ``j`` of the next.

:func:`filter_refinement` turns the picture into a score. For each pair of consecutive blocks
``(i, i + 1)`` of a stage it compares the *same* channel ``j`` at both blocks with *random*
channel pairs ``(j, k != j)``:

- ``method="activations"`` (default, fast): the Pearson correlation of channel ``j``'s
  activation maps at block ``i`` and channel ``k``'s at block ``i + 1`` over the data (every
  example and position is one observation);
- ``method="images"``: the Pearson correlation of the activation-maximization images of the
  two channels (Chu et al.'s own view, computed by ``keras_resnet_lab.vis``; slow).

The score of a model is the mean same-channel correlation minus the mean random-pair
correlation; with ``twin=`` (the plain twin) both models are scored on the same data. The
paper's claim, as the registry's ``chu_filters`` tests it
(:meth:`FilterRefinementResult.assessments`): the score of consecutive residual blocks is
above 0, and above the plain twin's.
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, count, int_list, one_of, positive_int
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.analysis._common import (
    batches,
    check_data,
    check_model,
    error_bars,
    images_or_pair,
    progress,
)
from keras_resnet_lab.analysis.estimation import block_outputs
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap, missing
from keras_resnet_lab.findings.verdict import RESAMPLES
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.surgery import chain_steps

#: The similarities :func:`filter_refinement` can compare channels by.
METHODS = ("activations", "images")


def channel_correlation(first, second):
    """Pearson correlation matrix ``(C1, C2)`` between the channels (last axis) of two arrays.

    Every index of the leading axes (example, row, column) is one observation, so the arrays
    must have the same leading shape. A constant channel (e.g. a dead ReLU) correlates 0 with
    everything.

    Args:
        first: ``(..., C1)`` array.
        second: ``(..., C2)`` array, same leading shape.

    Returns:
        float64 array ``(C1, C2)``; entry ``[j, k]`` is the correlation of channel ``j`` of
        ``first`` with channel ``k`` of ``second``.

    Example:
        >>> a = np.random.default_rng(0).normal(size=(10, 4, 4, 3))
        >>> np.round(np.diag(channel_correlation(a, 2.0 * a + 1.0)), 6).tolist()
        [1.0, 1.0, 1.0]
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.shape[:-1] != second.shape[:-1] or first.ndim < 2:
        raise ValueError(f"`first` and `second` must be arrays (..., channels) with the same "
                         f"leading shape, got {first.shape} and {second.shape}.")
    moments = _CrossMoments()
    moments.add(first, second)
    return moments.correlation()


class _CrossMoments:
    """Running sums for the channel correlation of two activation arrays (float64)."""

    def __init__(self):
        self.n = 0
        self.sums = None

    def add(self, a, b):
        a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])
        b = np.asarray(b, np.float64).reshape(-1, np.shape(b)[-1])
        # Shift by the first batch's means: sums of squares stay well conditioned.
        if self.sums is None:
            self.shift = (a.mean(axis=0), b.mean(axis=0))
            self.sums = [0.0, 0.0, 0.0, 0.0, 0.0]
        a, b = a - self.shift[0], b - self.shift[1]
        self.n += len(a)
        for k, value in enumerate((a.sum(0), b.sum(0), (a * a).sum(0), (b * b).sum(0),
                                   a.T @ b)):
            self.sums[k] = self.sums[k] + value

    def correlation(self):
        sa, sb, saa, sbb, sab = (s / self.n for s in self.sums)
        cov = sab - np.outer(sa, sb)
        var_a = np.maximum(saa - sa * sa, 0.0)
        var_b = np.maximum(sbb - sb * sb, 0.0)
        denominator = np.sqrt(np.outer(var_a, var_b))
        # A channel whose spread is below float32 resolution of its mean is constant (a dead
        # ReLU, a bias-only channel): it correlates 0 with everything.
        mean_a, mean_b = self.shift[0] + sa, self.shift[1] + sb
        tiny = ((var_a <= (1e-6 * mean_a) ** 2)[:, None]
                | (var_b <= (1e-6 * mean_b) ** 2)[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(tiny, 0.0, cov / np.where(tiny, 1.0, denominator))
        return np.clip(corr, -1.0, 1.0)


def random_channel_pairs(channels, count=None, seed=0):
    """Pairs ``(j, k)`` of different channels: all of them, or ``count`` drawn with ``seed``.

    Args:
        channels: number of channels (>= 2).
        count: None for all ``channels * (channels - 1)`` ordered pairs, else the number of
            pairs drawn uniformly (with replacement) by ``numpy.random.default_rng(seed)``.
        seed: the draw's seed.

    Returns:
        two int arrays ``(j, k)`` with ``j != k`` everywhere.

    Example:
        >>> j, k = random_channel_pairs(3)
        >>> list(zip(j.tolist(), k.tolist()))
        [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    """
    channels = positive_int("channels", channels)
    if channels < 2:
        raise ValueError(f"`channels` must be >= 2 to form pairs of different channels, got "
                         f"{channels}.")
    if count is None:
        j, k = np.nonzero(~np.eye(channels, dtype=bool))
        return j, k
    count = positive_int("random_pairs", count)
    rng = np.random.default_rng(seed)
    j = rng.integers(0, channels, count)
    k = (j + rng.integers(1, channels, count)) % channels  # uniform over k != j
    return j, k


def pair_score(corr, random_pairs=None, seed=0):
    """Same-channel against random-pair similarity, from one correlation matrix.

    Args:
        corr: ``(C, C)`` similarity of channel ``j`` at block ``i`` (rows) and channel ``k``
            at block ``i + 1`` (columns).
        random_pairs: None for all pairs ``k != j``, else the number drawn with ``seed``.
        seed: seed of the draw.

    Returns:
        ``(same, random)``: the ``C`` diagonal values and the values of the random pairs.

    Example:
        >>> same, other = pair_score(np.array([[1.0, 0.2], [0.4, 0.8]]))
        >>> same.tolist(), other.tolist()
        ([1.0, 0.8], [0.2, 0.4])
    """
    corr = np.asarray(corr, np.float64)
    if corr.ndim != 2 or corr.shape[0] != corr.shape[1]:
        raise ValueError(f"`corr` must be a square (channels, channels) matrix, got shape "
                         f"{corr.shape}.")
    j, k = random_channel_pairs(corr.shape[0], random_pairs, seed)
    return np.diag(corr).copy(), corr[j, k]


@dataclasses.dataclass
class FilterRefinementResult(Result):
    """Same-channel similarity of consecutive blocks against random channel pairs.

    Per pair of consecutive blocks (``pairs[p]`` = ``"a->b"``, in stage ``pair_stages[p]``):
    ``same_channel[p]`` is the mean over the compared channels of the similarity of channel
    ``j`` at both blocks (``same_channel_values[p]`` per channel), ``random_pair[p]`` the mean
    over random pairs ``(j, k != j)``. ``score`` = mean of ``same_channel`` minus mean of
    ``random_pair``. The ``twin_*`` fields are the same for the twin model (None without one)
    and ``score_over_twin`` = ``score - twin_score``. ``channels[p]`` is the number of channels
    compared, ``random_pairs`` ``"all"`` or the number drawn per pair with ``seed``.

    Kept for intervals (not in the JSON): per pair, the value of every random pair
    (``random_pair_values[p]``) and its first channel ``j`` (``random_pair_channels[p]``),
    and the same for the twin (``twin_random_pair_values``, ``twin_random_pair_channels``).
    """

    method: str
    model_name: str
    twin_name: object
    n_examples: object
    pairs: list
    pair_stages: list
    channels: list
    same_channel: list
    random_pair: list
    same_channel_values: list
    same_channel_mean: float
    random_pair_mean: float
    score: float
    twin_same_channel: object
    twin_random_pair: object
    twin_same_channel_values: object
    twin_same_channel_mean: object
    twin_random_pair_mean: object
    twin_score: object
    score_over_twin: object
    random_pairs: object
    seed: int
    random_pair_values: list = array_field()
    random_pair_channels: list = array_field()
    twin_random_pair_values: list = array_field()
    twin_random_pair_channels: list = array_field()

    figure_columns = 2

    def _units(self):
        """``(groups, slices)``: the bootstrap units are the compared channels of each stage
        (``groups`` their stage); ``slices[p]`` selects pair ``p``'s channels among them."""
        offsets, groups, slices = {}, [], []
        for stage, width in zip(self.pair_stages, self.channels):
            if stage not in offsets:
                offsets[stage] = len(groups)
                groups.extend([stage] * width)
            slices.append(slice(offsets[stage], offsets[stage] + width))
        return np.asarray(groups), slices

    def _score_function(self, twin=False):
        """The score as a function of a resample of the channel units (indices)."""
        prefix = "twin_" if twin else ""
        same = [np.asarray(v, dtype=float) for v in getattr(self, prefix + "same_channel_values")]
        values = getattr(self, prefix + "random_pair_values")
        channels = getattr(self, prefix + "random_pair_channels")
        if values is None:
            raise ValueError("this FilterRefinementResult has no per-pair values: intervals "
                             "need the result returned by filter_refinement.")
        groups, slices = self._units()

        def score(i):
            weights = np.bincount(i, minlength=len(groups)).astype(float)
            return filter_score(same, values, channels, [weights[s] for s in slices])

        return score, groups

    def assessments(self, seed=0, resamples=RESAMPLES):
        """The registry's ``chu_filters`` on this result: the score (:func:`filter_score`) and
        the score minus the twin's, with bootstrap intervals over the compared channels
        (resampled within each stage; independently for the model and its twin).
        ``score_over_twin`` is not measured without a twin.

        Returns:
            a list of one :class:`keras_resnet_lab.findings.Assessment`.

        Example:
            >>> result.assessments()[0].describe()  # doctest: +SKIP
        """
        score, groups = self._score_function()
        unit = "channels (resampled within each stage)"
        options = dict(resamples=resamples, seed=seed)
        estimates = {"score": bootstrap(score, len(groups), unit=unit, groups=groups,
                                        **options)}
        if self.twin_name is None:
            estimates["score_over_twin"] = missing("no twin was scored")
        else:
            twin_score, twin_groups = self._score_function(twin=True)
            estimates["score_over_twin"] = bootstrap(
                lambda i, j: score(i) - twin_score(j), (len(groups), len(twin_groups)),
                unit=unit + ", independently for the two networks", groups=(groups,
                                                                            twin_groups),
                **options)
        where = (f"{self.n_examples} examples" if self.n_examples is not None
                 else "activation-maximization images")
        notes = (f"'{self.model_name}'" + (f" and its twin '{self.twin_name}'"
                                            if self.twin_name is not None else "")
                 + f"; method '{self.method}' on {where}; {len(self.pairs)} pairs of "
                 f"consecutive blocks; random pairs: {self.random_pairs}.")
        return [assess("chu_filters", estimates, seeds=(seed,), notes=notes)]

    def _score_bars(self, twin=False, resamples=200, seed=0):
        score, groups = self._score_function(twin)
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        rng = np.random.default_rng(seed)
        draws = [score(np.concatenate([rng.choice(m, len(m)) for m in members]))
                 for _ in range(resamples)]
        return np.nanquantile(draws, [0.025, 0.975])

    def draw(self, axes):
        ax1, ax2 = axes
        xs = np.arange(1, len(self.pairs) + 1)
        ax1.plot(xs, self.same_channel, "o-", color="C0", label=f"{self.model_name}: same")
        ax1.plot(xs, self.random_pair, "o--", color="C0", alpha=0.6,
                 label=f"{self.model_name}: random pairs")
        labels = [self.model_name]
        values = [self.score]
        if self.twin_name is not None:
            ax1.plot(xs, self.twin_same_channel, "s-", color="C3",
                     label=f"{self.twin_name}: same")
            ax1.plot(xs, self.twin_random_pair, "s--", color="C3", alpha=0.6,
                     label=f"{self.twin_name}: random pairs")
            same_name = self.twin_name == self.model_name
            labels.append(f"{self.twin_name} (twin)" if same_name else self.twin_name)
            values.append(self.twin_score)
        ax1.axhline(0, color="gray", lw=1)
        ax1.set_xticks(xs, [p.replace("->", "\n->") for p in self.pairs], fontsize=6)
        ax1.set(ylabel=f"correlation ({self.method})",
                title="Channel j at block i vs block i+1")
        ax1.legend(fontsize=7)
        yerr = None
        if self.random_pair_values is not None:
            bars = [self._score_bars()]
            if self.twin_name is not None:
                bars.append(self._score_bars(twin=True))
            yerr = error_bars(values, [b[0] for b in bars], [b[1] for b in bars])
        ax2.bar(labels, values, yerr=yerr, capsize=4, color=["C0", "C3"][:len(values)])
        ax2.axhline(0, color="gray", lw=1)
        ax2.set(ylabel="same-channel minus random-pair correlation",
                title="Filter refinement score" + (" (95% interval over channels)"
                                                   if yerr is not None else ""))
        for ax in axes:
            ax.grid(alpha=0.3)
        ax1.figure.suptitle(f"Filter refinement (Chu et al.), method={self.method!r}",
                            fontsize=10)


def filter_score(same_values, random_values, random_channels, weights=None):
    """The filter refinement score: mean over pairs of blocks of the mean same-channel
    similarity, minus the mean over pairs of the mean random-pair similarity.

    Args:
        same_values: per pair, the similarity of each channel ``j`` with itself at the next
            block.
        random_values: per pair, the similarity of each random pair ``(j, k != j)``.
        random_channels: per pair, the first channel ``j`` of each random pair.
        weights: optional, per pair, a weight for each channel (its count in a bootstrap
            resample of the channels): channel ``j`` and the random pairs starting at ``j``
            count that many times.

    Example:
        >>> filter_score([np.array([1.0, 0.8])], [np.array([0.2, 0.4])], [np.array([0, 1])])
        0.6
    """
    same, other = [], []
    for p, (s, v, j) in enumerate(zip(same_values, random_values, random_channels)):
        s, v = np.asarray(s, dtype=float), np.asarray(v, dtype=float)
        w = np.ones(len(s)) if weights is None else np.asarray(weights[p], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            same.append((w @ s) / w.sum())
            pair_weights = w[np.asarray(j, dtype=int)]
            other.append((pair_weights @ v) / pair_weights.sum())
    return float(np.mean(same) - np.mean(other))


def _consecutive_pairs(model, wanted):
    """``[(stage, name_i, name_next), ...]``: consecutive blocks of a stage, equal shapes."""
    steps = [s for s in chain_steps(model) if s.block is not None]
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"model '{model.name}' runs a block more than once; score the model "
                         "it was made from instead.")
    by_stage = {}
    for step in steps:
        by_stage.setdefault(step.block.stage, []).append(step)
    if wanted is None:
        wanted = sorted(by_stage)
    else:
        wanted = int_list("stages", wanted, 1)
        bad = [s for s in wanted if s not in by_stage]
        if bad:
            raise ValueError(f"`stages` must list stages of '{model.name}' "
                             f"(one of {sorted(by_stage)}), got {wanted!r}.")
    pairs = []
    for stage in wanted:
        chain = by_stage[stage]
        for a, b in zip(chain, chain[1:]):
            if a.output_shape == b.output_shape:
                pairs.append((stage, a.name, b.name))
    if not pairs:
        sizes = {s: len(by_stage[s]) for s in wanted}
        raise ValueError(f"`stages` {wanted} of model '{model.name}' have no two consecutive "
                         f"blocks of one output shape (blocks per stage: {sizes}); the score "
                         "compares block i with block i+1 of a stage.")
    return pairs, [s.name for s in steps]


def _check_twin(model, twin, pairs):
    if twin is None:
        return
    import keras

    if not isinstance(twin, keras.Model):
        raise ValueError(f"`twin` must be a keras.Model (the plain twin), got "
                         f"{type(twin).__name__}.")
    if twin is model:
        raise ValueError("`twin` must be another model (e.g. the plain twin), not `model`.")
    mine = {info.name: tuple(info.layer.output.shape) for info in blocks(model)}
    try:
        theirs = {info.name: tuple(info.layer.output.shape) for info in blocks(twin)}
    except ValueError as error:
        raise ValueError(f"`twin` must be a chain model with the same blocks: {error}") from None
    for _, a, b in pairs:
        for name in (a, b):
            if theirs.get(name) != mine[name]:
                raise ValueError(f"`twin` '{twin.name}' must have the blocks of '{model.name}' "
                                 f"with the same shapes: block '{name}' is {mine[name]} in the "
                                 f"model and {theirs.get(name, 'missing')} in the twin.")
    if tuple(twin.inputs[0].shape[1:]) != tuple(model.inputs[0].shape[1:]):
        raise ValueError(f"`twin` must take the model's input shape "
                         f"{tuple(model.inputs[0].shape[1:])}, got "
                         f"{tuple(twin.inputs[0].shape[1:])}.")


def _channel_selection(channels, count):
    """The first ``channels`` of ``count`` (all with None)."""
    if channels is None:
        return count
    return min(positive_int("channels", channels), count)


def _activation_correlations(model, x, pairs, order, channels, batch_size, progress_bar):
    index = {name: i for i, name in enumerate(order)}
    moments = [_CrossMoments() for _ in pairs]
    steps = chain_steps(model)
    for lo, hi in progress(batches(len(x), batch_size), desc=f"filter refinement {model.name}",
                           enabled=progress_bar):
        outputs = [o for _, o in block_outputs(model, x[lo:hi], steps)]
        for m, (_, a, b) in zip(moments, pairs):
            first, second = outputs[index[a]], outputs[index[b]]
            c = _channel_selection(channels, first.shape[-1])
            m.add(first[..., :c], second[..., :c])
    return [m.correlation() for m in moments]


def _image_correlations(model, pairs, channels, image_options, refinement_view):
    # The images are made by the visualization package (tf-keras-vis activation maximization),
    # passed in by the caller: analysis and vis never import each other (DESIGN.md).
    width = {info.name: int(info.layer.output.shape[-1]) for info in blocks(model)}
    views = {}
    out = []
    for stage, a, b in pairs:
        if stage not in views:
            filters = list(range(_channel_selection(channels, width[a])))
            views[stage] = refinement_view(model, stage, filters, **image_options)
        view = views[stage]
        images = np.asarray(view.images, np.float64)  # (filters, blocks, H, W, C)
        ia, ib = view.blocks.index(a), view.blocks.index(b)
        # One observation per pixel: columns are the filters' images.
        first = images[:, ia].reshape(len(images), -1).T
        second = images[:, ib].reshape(len(images), -1).T
        out.append(channel_correlation(first, second))
    return out


def _summaries(correlations, random_pairs, seed):
    same, other, values, pair_values, pair_channels = [], [], [], [], []
    for p, corr in enumerate(correlations):
        s, r = pair_score(corr, random_pairs, seed + p)
        j, _ = random_channel_pairs(corr.shape[0], random_pairs, seed + p)  # pair_score's
        values.append(s.tolist())
        same.append(float(s.mean()))
        other.append(float(r.mean()))
        pair_values.append(r)
        pair_channels.append(j)
    return same, other, values, pair_values, pair_channels


def filter_refinement(model, data=None, *, twin=None, method="activations", stages=None,
                      channels=None, random_pairs=None, seed=0, batch_size=128,
                      max_examples=512, image_options=None, refinement_view=None,
                      progress_bar=True):
    """Chu et al.'s refinement view as a number (arXiv 1701.02362): how much more channel
    ``j`` at block ``i + 1`` resembles channel ``j`` at block ``i`` than random channel pairs
    ``(j, k != j)`` do, per pair of consecutive blocks of a stage, for ``model`` and
    optionally its plain ``twin``.

    Args:
        model: a chain model with at least one stage of two or more blocks.
        data: ``(x, y)`` (labels unused) or images alone; needed for
            ``method="activations"``, unused for ``"images"``.
        twin: optional second model with the same blocks (e.g.
            ``cifar_network(..., plain=True)``, the plain twin) scored the same way.
        method: ``"activations"`` (correlation of the channels' activation maps over the
            data) or ``"images"`` (correlation of the channels' activation-maximization
            images, made by :func:`keras_resnet_lab.vis.refinement_view`; slow).
        stages: stage number(s) to score (default: every stage with two or more blocks).
        channels: compare only the first ``channels`` channels of each stage (default all;
            keep it small with ``method="images"``, one optimization per channel and block).
        random_pairs: None to compare with all pairs ``(j, k != j)`` (exact), or the number
            of random pairs drawn per block pair with ``seed``.
        seed: seed of the random pairs (the pair ``p`` uses ``seed + p``).
        batch_size: examples per forward pass (``"activations"``).
        max_examples: use only the first examples of ``data`` (``"activations"``).
        image_options: for ``"images"``, keyword arguments of
            :func:`keras_resnet_lab.vis.maximize_filter` (default ``{"seed": seed,
            "progress_bar": False}``; e.g. ``steps``, ``input_range``, ``grayscale``).
        refinement_view: for ``"images"``, the function that makes the images:
            :func:`keras_resnet_lab.vis.refinement_view` (or one with its signature and
            result), passed in because the analysis package does not import the
            visualization package.
        progress_bar: show a progress bar.

    Returns:
        :class:`FilterRefinementResult`.

    Raises:
        ValueError: unknown method or stage, no stage with two consecutive blocks, a twin
            with other blocks, missing or bad data.

    Example:
        >>> result = filter_refinement(model, (x_test, y_test), twin=plain_model)
        >>> result.score, result.twin_score
        >>> result.assessments()[0].describe()
        >>> result.plot("filter_refinement.png")
    """
    check_model(model)
    method = one_of("method", method, METHODS)
    seed = seed_check("seed", seed)
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    if max_examples is not None:
        max_examples = positive_int("max_examples", max_examples)
    if random_pairs is not None:
        random_pairs = count("random_pairs", random_pairs)
    if channels is not None:
        channels = positive_int("channels", channels)
        if channels < 2:
            raise ValueError(f"`channels` must be >= 2 (random pairs need two different "
                             f"channels), got {channels}.")
    pairs, order = _consecutive_pairs(model, stages)
    _check_twin(model, twin, pairs)
    models = [model] if twin is None else [model, twin]
    n_examples = None
    if method == "activations":
        if data is None:
            raise ValueError("`data` (images, or (images, labels)) is needed with "
                             "method='activations'.")
        x, _ = check_data(model, images_or_pair(data), max_examples, labels_used=False)
        n_examples = len(x)
        correlations = [_activation_correlations(m, x, pairs, order, channels, batch_size,
                                                 progress_bar) for m in models]
    else:
        if image_options is not None and not isinstance(image_options, dict):
            raise ValueError(f"`image_options` must be a dict of maximize_filter arguments, "
                             f"got {type(image_options).__name__}.")
        if not callable(refinement_view):
            raise ValueError("method='images' needs `refinement_view`: pass "
                             "keras_resnet_lab.vis.refinement_view (the images come from the "
                             f"visualization package), got {refinement_view!r}.")
        options = {"seed": seed, "progress_bar": False}
        options.update(image_options or {})
        correlations = [_image_correlations(m, pairs, channels, options, refinement_view)
                        for m in models]
    same, other, values, pair_values, pair_channels = _summaries(correlations[0], random_pairs,
                                                                 seed)
    twin_fields = dict.fromkeys(("twin_same_channel", "twin_random_pair",
                                 "twin_same_channel_values", "twin_same_channel_mean",
                                 "twin_random_pair_mean", "twin_score", "score_over_twin"))
    score = float(np.mean(same) - np.mean(other))
    if twin is not None:
        t_same, t_other, t_values, t_pair_values, t_pair_channels = _summaries(
            correlations[1], random_pairs, seed)
        twin_score = float(np.mean(t_same) - np.mean(t_other))
        twin_fields.update(
            twin_same_channel=t_same, twin_random_pair=t_other,
            twin_same_channel_values=t_values, twin_same_channel_mean=float(np.mean(t_same)),
            twin_random_pair_mean=float(np.mean(t_other)), twin_score=twin_score,
            score_over_twin=score - twin_score, twin_random_pair_values=t_pair_values,
            twin_random_pair_channels=t_pair_channels)
    return FilterRefinementResult(
        method=method, model_name=model.name,
        twin_name=None if twin is None else twin.name, n_examples=n_examples,
        pairs=[f"{a}->{b}" for _, a, b in pairs], pair_stages=[s for s, _, _ in pairs],
        channels=[len(v) for v in values], same_channel=same, random_pair=other,
        same_channel_values=values, same_channel_mean=float(np.mean(same)),
        random_pair_mean=float(np.mean(other)), score=score,
        random_pairs="all" if random_pairs is None else random_pairs, seed=seed,
        random_pair_values=pair_values, random_pair_channels=pair_channels, **twin_fields)
