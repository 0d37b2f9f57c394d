"""Shattered gradients (Balduzzi et al. 2017, arXiv 1702.08591) and the looks-linear init.

Take a network ``f: R^d -> R`` at initialization and the inputs ``x_j`` on a line (256 points
in [-2, 2] for ``d = 1``); the gradients ``g_j = df/dx(x_j)`` of a shallow rectifier network
change smoothly along the line (brown noise), those of a deep feedforward network look like
white noise: their autocorrelation falls to about 0 within about 24 layers, while residual
networks keep it high. This shows with batch normalization (which keeps every unit active on
about half of the inputs, the assumption of the paper's analysis); rectifier networks without
normalization, biases or not, keep correlated gradients far deeper at this width. The "looks linear"
initialization (a CReLU ``[relu(x), relu(-x)]`` followed by weights ``[W; -W]``) makes a deep
feedforward network exactly linear at initialization, so its gradients do not shatter at all.
"""

import dataclasses

import keras
import numpy as np

from keras_resnet_lab import _keras_compat
from keras_resnet_lab._checks import (
    MAX_COUNT,
    boolean,
    count,
    int_list,
    integer,
    memory,
    number_in,
    one_of,
    positive_int,
    sequence,
)
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.layers.looks_linear import CReLU, LooksLinear, crelu  # noqa: F401
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.chain import block_name

KINDS = ("plain", "plain_bn", "residual", "residual_bn", "looks_linear")

#: The most inputs on the line (256 in the paper).
MAX_POINTS = 1_000_000


def _check_range(input_range):
    """``input_range`` as ``(low, high)``: finite numbers with low < high."""
    values = sequence("input_range", input_range)
    if len(values) != 2:
        raise ValueError(f"`input_range` must be a pair (low, high), got {input_range!r}.")
    lo, hi = (number_in("input_range", v) for v in values)
    if not lo < hi:
        raise ValueError(f"`input_range` must be (low, high) with low < high, got {input_range}.")
    return lo, hi




def shattering_network(depth, kind="plain", *, width=200, input_dim=1, seed=0):
    """A network ``f: R^input_dim -> R`` at initialization for the shattering experiment of
    Balduzzi et al. (arXiv 1702.08591).

    ``input -> dense stem -> depth pre-activation dense blocks -> dense readout (1 unit)``.
    The stem has a random N(0, 1) bias (without one, ``f`` would be positively homogeneous
    along a line through 0 and its gradient would take only two values); the other layers
    have no bias. Each block has two rectifier layers: ``plain`` blocks compute
    ``W2 relu(W1 relu(h))`` (a feedforward net of ``2 * depth`` layers), ``residual`` blocks
    ``h + W2 relu(W1 relu(h))``, ``residual_bn`` blocks ``h + W2 relu(BN(W1 relu(BN(h))))``
    (He initialization), ``plain_bn`` blocks ``W2 relu(BN(W1 relu(BN(h))))``, ``looks_linear``
    blocks are plain blocks with CReLU and
    :class:`LooksLinear` weights (exactly linear at initialization).

    Args:
        depth: number of blocks.
        kind: one of :data:`KINDS`.
        width: units per layer (Balduzzi et al. used 200).
        input_dim: input dimension.
        seed: initialization seed.

    Example:
        >>> net = shattering_network(12, "residual_bn")
    """
    depth = count("depth", depth)
    kind = one_of("kind", kind, KINDS)
    width = positive_int("width", width)
    input_dim = positive_int("input_dim", input_dim)
    fan = 2 * width if kind == "looks_linear" else width
    memory(f"shattering network {kind}{depth}", (input_dim + 2) * width + 2 * depth * fan * width,
           (2 * depth + 2) * fan, {"depth": depth, "width": width, "input_dim": input_dim})
    noise = keras.random.SeedGenerator(seed_check("seed", seed))
    inputs = keras.Input((input_dim,), name="input")
    stem_init = keras.initializers.Orthogonal(seed=noise) if kind == "looks_linear" else (
        keras.initializers.HeNormal(seed=noise))
    x = keras.layers.Dense(width, kernel_initializer=stem_init, name="stem_dense",
                           bias_initializer=keras.initializers.RandomNormal(stddev=1.0,
                                                                            seed=noise))(inputs)
    for b in range(depth):
        kwargs = dict(form="dense", preact=True, plain=not kind.startswith("residual"),
                      normalization="batch" if kind.endswith("_bn") else "none",
                      name=block_name(1, b + 1),
                      kernel_initializer=keras.initializers.HeNormal(seed=noise))
        if kind == "looks_linear":
            kwargs.update(activation=crelu, kernel_initializer=LooksLinear(seed=noise))
        x = ResidualBlock(width, **kwargs)(x)
    out = keras.layers.Dense(1, use_bias=False, name="readout",
                             kernel_initializer=keras.initializers.GlorotNormal(seed=noise))(x)
    return keras.Model(inputs, out, name=f"{kind}{depth}")


def calibrate_batch_norm(model, x):
    """Set every batch norm's moving statistics to the statistics of the batch ``x``.

    Afterwards the model in inference mode computes what it computes in training mode on
    ``x`` (batch statistics), while the gradient of each output depends on its own input
    only: the batch-normalized network "at initialization" of Balduzzi et al. (arXiv
    1702.08591).

    Args:
        model: a Keras model.
        x: the batch whose statistics the batch norms take.

    Example:
        >>> calibrate_batch_norm(net, line_inputs)
    """
    norms = [layer for layer in _keras_compat.flatten_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return model
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum
    return model


def line_inputs(n_points=256, input_range=(-2.0, 2.0), input_dim=1, direction=None):
    """``(points, direction)``: ``n_points`` inputs evenly spaced on a line through 0.

    Args:
        n_points: number of inputs (256 in Balduzzi et al., arXiv 1702.08591).
        input_range: ``(low, high)`` positions along the line.
        input_dim: input dimension.
        direction: the line's direction (default the diagonal); normalized.

    Example:
        >>> points, u = line_inputs(256, (-2.0, 2.0))
    """
    n_points = integer("n_points", n_points, 2, MAX_POINTS, what="points on the line")
    input_dim = positive_int("input_dim", input_dim)
    lo, hi = _check_range(input_range)
    if direction is None:
        direction = np.ones(input_dim) / np.sqrt(input_dim)
    direction = np.asarray(direction, dtype=np.float64).reshape(-1)
    if direction.shape != (input_dim,) or not np.linalg.norm(direction) > 0:
        raise ValueError(f"`direction` must be a nonzero vector of length {input_dim}, got "
                         f"{direction!r}.")
    direction = direction / np.linalg.norm(direction)
    t = np.linspace(lo, hi, n_points)
    return (t[:, None] * direction[None, :]).astype(np.float32), direction.astype(np.float32)


def line_gradients(model, n_points=256, input_range=(-2.0, 2.0), direction=None):
    """Directional gradients ``g_j = grad f(x_j) . u`` along a line of inputs ``x_j = t_j u``.

    Batch norms are first calibrated on the line (:func:`calibrate_batch_norm`); Balduzzi et
    al. (arXiv 1702.08591) look at how these gradients decorrelate with depth.

    Args:
        model: a model ``R^d -> R``.
        n_points, input_range, direction: the line (see :func:`line_inputs`).

    Example:
        >>> g = line_gradients(shattering_network(8, "plain"))
    """
    import tensorflow as tf

    input_dim = int(model.inputs[0].shape[-1])
    points, u = line_inputs(n_points, input_range, input_dim, direction)
    calibrate_batch_norm(model, points)
    x = tf.constant(points)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
        if int(out.shape[-1]) != 1:
            raise ValueError(f"model '{model.name}' must output one number per input, its "
                             f"output has shape {tuple(out.shape)}.")
        total = tf.reduce_sum(out)
    grads = tape.gradient(total, x).numpy().astype(np.float64)
    return grads @ u.astype(np.float64)


def autocorrelation(g, max_lag=32, constant_tol=1e-4):
    """Normalized autocorrelation ``r(k)`` of the sequence ``g`` for ``k = 0..max_lag``.

    ``r(k) = sum_j (g_j - m)(g_{j+k} - m) / sum_j (g_j - m)^2``. A gradient that is constant
    along the line (to ``constant_tol`` relative), as a linear map has, is perfectly
    correlated: ``r = 1``. Balduzzi et al. (arXiv 1702.08591) read shattering from it.

    Args:
        g: the sequence.
        max_lag: longest lag.
        constant_tol: relative spread under which ``g`` counts as constant.

    Example:
        >>> autocorrelation(np.sin(np.linspace(0, 3, 256)), 1)[1] > 0.98
        True
    """
    g = np.asarray(g, dtype=np.float64)
    max_lag = min(int(max_lag), len(g) - 1)
    centred = g - g.mean()
    power = (centred ** 2).sum()
    scale = np.abs(g).max() if len(g) else 0.0
    if scale == 0 or np.sqrt(power / len(g)) <= constant_tol * scale:
        return np.ones(max_lag + 1)
    return np.array([(centred[: len(g) - k] * centred[k:]).sum() / power
                     for k in range(max_lag + 1)])


@dataclasses.dataclass
class ShatteringResult(Result):
    """Gradient autocorrelation along a line of inputs, versus depth, per network kind.

    ``lag1[kind][i]`` is the mean (over ``seeds`` initializations) lag-1 autocorrelation of
    the gradients of a ``depths[i]``-block network (``2 * depth`` rectifier layers), and
    ``lag1_per_seed[kind][i]`` its value for each seed of ``seed_values``;
    ``autocorr[kind]`` the mean autocorrelation function at the largest depth;
    ``examples[kind]`` the standardized gradients of one network of the largest depth (the
    first seed).
    """

    kinds: list
    depths: list
    layers_per_block: int
    width: int
    n_points: int
    input_range: list
    seeds: int
    lag1: dict
    lag1_std: dict
    autocorr: dict
    examples: dict
    seed_values: list = None
    lag1_per_seed: dict = None

    figure_columns = 3

    def statistics(self):
        """Balduzzi et al.'s finding in the registry's units, at the largest depth:
        ``{"balduzzi_shattering": {"plain_lag1": |lag-1 autocorrelation| of the plain net with
        batch norm, "residual_minus_plain": lag-1 of the residual net with batch norm minus
        the plain one's}}`` for the seed of a one-seed result (the mean over its seeds
        otherwise); NaN without the kinds ``plain_bn`` and ``residual_bn``."""
        nan = float("nan")
        per_seed = self.lag1_per_seed or {}
        if not {"plain_bn", "residual_bn"} <= set(per_seed):
            return {"balduzzi_shattering": {"plain_lag1": nan, "residual_minus_plain": nan}}
        plain = np.asarray(per_seed["plain_bn"][-1], dtype=float)
        residual = np.asarray(per_seed["residual_bn"][-1], dtype=float)
        return {"balduzzi_shattering": {
            "plain_lag1": float(np.mean(np.abs(plain))),
            "residual_minus_plain": float(np.mean(residual - plain))}}

    def notes(self):
        deepest = self.depths[-1] * self.layers_per_block
        return {"balduzzi_shattering": (
            f"Dense nets of width {self.width} at initialization, {deepest} rectifier layers "
            f"({self.depths[-1]} blocks); gradients at {self.n_points} points of a line, batch "
            "norms calibrated on the line.")}

    def depth_below(self, kind, threshold):
        """The smallest depth (in rectifier layers) whose mean lag-1 autocorrelation is below
        ``threshold``, or None if none is."""
        for depth, value in zip(self.depths, self.lag1[kind]):
            if value < threshold:
                return depth * self.layers_per_block
        return None

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        layers = [d * self.layers_per_block for d in self.depths]
        for i, kind in enumerate(self.kinds):
            ax1.errorbar(layers, self.lag1[kind], yerr=self.lag1_std[kind], fmt="o-",
                         capsize=3, label=kind, color=f"C{i}")
            g = np.asarray(self.examples[kind], dtype=float)
            ax2.plot(np.linspace(*self.input_range, len(g)), g / 3 + 2.5 * i, lw=0.8,
                     color=f"C{i}", label=kind)
            ax3.plot(self.autocorr[kind], "o-", ms=2, color=f"C{i}", label=kind)
        ax1.axhline(0, color="gray", lw=1)
        ax1.set(xlabel="depth (rectifier layers)", ylabel="lag-1 autocorrelation of df/dx",
                title="Gradient correlation vs depth")
        ax2.set(xlabel="input x", yticks=[],
                title=f"df/dx along the line, {layers[-1]} layers (standardized)")
        ax3.axhline(0, color="gray", lw=1)
        ax3.set(xlabel="lag", ylabel="autocorrelation", title=f"Autocorrelation, {layers[-1]} "
                "layers")
        for ax in axes:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)


def shattering(model_or_builder=None, *, kinds=KINDS,
               depths=(1, 2, 4, 8, 12, 16, 24), seeds=3, width=200, n_points=256,
               input_range=(-2.0, 2.0), max_lag=32, progress_bar=True):
    """Balduzzi et al.'s shattered-gradients measure versus depth, per network kind
    (arXiv 1702.08591).

    Args:
        model_or_builder: None (use :func:`shattering_network`), a callable
            ``builder(kind, depth, seed) -> model`` (a model ``R^d -> R``), or one Keras model
            (measured alone, under its own name).
        kinds: network kinds passed to the builder (:data:`KINDS` for the default one:
            ``plain``, ``plain_bn``, ``residual``, ``residual_bn``, ``looks_linear``).
        depths: numbers of blocks.
        seeds: initializations per (kind, depth): a number ``n`` (seeds ``0 .. n - 1``) or
            a list of seeds (``[s]``: one seed, as
            :func:`~keras_resnet_lab.analysis.comparisons.run_comparison` runs it).
        width: units per layer of the default builder.
        n_points: inputs on the line (256 in the paper).
        input_range: ends of the line (``t`` in [-2, 2]).
        max_lag: longest lag of the autocorrelation function kept.
        progress_bar: show a progress bar.

    Returns:
        :class:`ShatteringResult`.

    Example:
        >>> result = shattering(kinds=("plain_bn", "residual_bn"), depths=(1, 4, 16), seeds=2)
        >>> result.lag1["plain_bn"][-1] < result.lag1["residual_bn"][-1]
        True
    """
    from keras_resnet_lab.analysis._common import progress

    if isinstance(seeds, (list, tuple, range, np.ndarray)):
        seed_values = [seed_check("seeds", v) for v in sequence("seeds", seeds)]
        if len(set(seed_values)) != len(seed_values):
            raise ValueError(f"`seeds` must not repeat a seed, got {seed_values}.")
    else:
        seed_values = list(range(count("seeds", seeds)))
    seeds = len(seed_values)
    progress_bar = boolean("progress_bar", progress_bar)
    n_points = integer("n_points", n_points, 2, MAX_POINTS, what="points on the line")
    width = positive_int("width", width)
    max_lag = positive_int("max_lag", max_lag)
    _check_range(input_range)
    kinds = [k if model_or_builder is not None else one_of("kinds", k, KINDS)
             for k in sequence("kinds", kinds, single=lambda v: isinstance(v, str))]
    depths = int_list("depths", depths, 1, MAX_COUNT,
                      what="at most MAX_COUNT blocks, keras_resnet_lab._checks.MAX_COUNT")
    layers_per_block = 2
    if isinstance(model_or_builder, keras.Model):
        model = model_or_builder
        kinds, depths = [model.name], [len([lay for lay in model.layers if
                                            isinstance(lay, ResidualBlock)]) or 1]
        seed_values, seeds = seed_values[:1], 1

        def build(kind, depth, seed):
            return model
    elif model_or_builder is None:

        def build(kind, depth, seed):
            return shattering_network(depth, kind, width=width, seed=seed)
    elif callable(model_or_builder):
        build = model_or_builder
    else:
        raise ValueError("`model_or_builder` must be None, a keras.Model or a callable "
                         f"builder(kind, depth, seed), got {type(model_or_builder).__name__}.")
    lag1, lag1_std, per_seed, acf, examples = {}, {}, {}, {}, {}
    bar = progress(total=len(kinds) * len(depths) * seeds, desc="shattering",
                   enabled=progress_bar)
    for kind in kinds:
        per_depth = []
        for depth in depths:
            values = []
            for seed in seed_values:
                g = line_gradients(build(kind, depth, seed), n_points, input_range)
                r = autocorrelation(g, max_lag)
                values.append(float(r[1]))
                if depth == depths[-1]:
                    acf.setdefault(kind, []).append(r)
                    if seed == seed_values[0]:
                        sd = g.std()
                        examples[kind] = ((g - g.mean()) / (sd if sd > 0 else 1.0)).tolist()
                bar.update(1)
            per_depth.append(values)
        per_seed[kind] = per_depth
        lag1[kind] = [float(np.mean(v)) for v in per_depth]
        lag1_std[kind] = [float(np.std(v)) for v in per_depth]
        acf[kind] = np.mean(acf[kind], axis=0).tolist()
    bar.close()
    return ShatteringResult(kinds=list(kinds), depths=depths, layers_per_block=layers_per_block,
                            width=width, n_points=n_points,
                            input_range=[float(v) for v in input_range], seeds=seeds,
                            lag1=lag1, lag1_std=lag1_std, autocorr=acf, examples=examples,
                            seed_values=[int(v) for v in seed_values], lag1_per_seed=per_seed)
