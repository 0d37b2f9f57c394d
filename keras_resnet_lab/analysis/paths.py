"""Paths through a residual network (Veit, Wilber & Belongie 2016, arXiv 1605.06431).

Unrolled, ``n`` residual blocks give ``2**n`` paths from input to output, ``C(n, k)`` of them
through exactly ``k`` branches. Veit et al. estimate the gradient that reaches the input along
paths of each length ``k``: in one forward pass (values unchanged), ``k`` random blocks pass
gradient only through their branch and the others only through their skip connection. The
gradient magnitude falls roughly exponentially with ``k``, so although most paths have length
about ``n / 2``, almost all of the gradient comes from much shorter paths. Blocks of ``k``
residual branches (multi-residual networks, arXiv 1609.05672) give ``(k + 1)**n`` paths,
``C(n, j) * k**j`` of length ``j`` (``path_lengths(n, branches=k)``).
"""

import dataclasses
import math

import numpy as np

from keras_resnet_lab._checks import boolean, count, int_list, number_in, one_of, positive_int
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.analysis._common import (
    batches,
    check_data,
    error_bars,
    per_example_loss,
    progress,
)
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap
from keras_resnet_lab.findings.verdict import RESAMPLES
from keras_resnet_lab.models.surgery import chain_steps, run_plan
from keras_resnet_lab.training.recipes import output_applies_softmax

QUANTITIES = ("loss", "logits_sum")


@dataclasses.dataclass
class PathLengthDistribution(Result):
    """The exact path-length distribution of ``n_blocks`` blocks of ``branches`` residual
    branches each: ``counts[j]`` = C(n, j) * k**j paths through ``j`` branches (one branch
    chosen in each of ``j`` blocks, the skip in the others), ``fractions[j]`` = counts[j] /
    (k + 1)**n. With ``branches=1`` (ordinary residual blocks) C(n, j) of 2**n paths."""

    n_blocks: int
    counts: list
    fractions: list
    branches: int = 1

    @property
    def total(self):
        """Number of paths, ``(branches + 1) ** n_blocks``."""
        return (self.branches + 1) ** self.n_blocks

    @property
    def mean_length(self):
        """Mean path length, ``n_blocks * branches / (branches + 1)``."""
        return self.n_blocks * self.branches / (self.branches + 1)

    def draw(self, axes):
        (ax,) = axes
        ax.bar(range(self.n_blocks + 1), self.fractions, color="C0")
        where = f"{self.n_blocks} blocks" + (
            f" x {self.branches} branches" if self.branches > 1 else "")
        ax.set(xlabel="path length (branches on the path)", ylabel="fraction of paths",
               title=f"{where}: {self.total:.3g} paths")


def path_lengths(n_blocks, branches=1):
    """The distribution of path lengths through ``n_blocks`` residual blocks of ``branches``
    branches each.

    A residual block has 2 paths (skip or branch), so ``n`` blocks unroll into 2**n paths,
    C(n, j) of them through j branches (binomial; Veit et al., arXiv 1605.06431). A
    multi-residual block ``x + sum_i F_i(x)`` has k + 1 (skip or one of k branches), so ``n``
    such blocks give (k + 1)**n paths, C(n, j) * k**j of length j (Abdi & Nahavandi, arXiv
    1609.05672).

    Args:
        n_blocks: number of blocks (54 for ResNet-110).
        branches: residual branches per block, k >= 1 (1: ordinary residual blocks).

    Returns:
        :class:`PathLengthDistribution` with exact integer counts.

    Example:
        >>> path_lengths(3).counts
        [1, 3, 3, 1]
        >>> path_lengths(2, branches=4).counts  # 25 = 5**2 paths
        [1, 8, 16]
    """
    n = count("n_blocks", n_blocks)
    k = count("branches", branches)
    counts = [math.comb(n, j) * k ** j for j in range(n + 1)]
    total = (k + 1) ** n
    return PathLengthDistribution(n, counts, [c / total for c in counts], k)


def _mask_shape(h, batch):
    return (batch,) + (1,) * (len(h.shape) - 1)


def input_gradients(model, x, y, branch_mask, quantity="loss"):
    """Per-example input gradients when only some blocks pass gradient through their branch.

    Example ``j`` passes gradient through the branch of block ``i`` only where
    ``branch_mask[j, i]`` is 1 (``merge(stop_gradient(shortcut), residual)``) and only through
    the skip where it is 0 (``merge(shortcut, stop_gradient(residual))``). The forward values
    are those of the intact model, so the gradient is the one of the single path through the
    chosen branches (Veit et al., arXiv 1605.06431). Summed over all ``2 ** n`` masks, the
    path gradients of an example add up to its full input gradient (the Jacobian of each
    block is that of its shortcut plus that of its branch, at the same forward values).

    Args:
        model: a chain model whose blocks all have a shortcut (no plain blocks).
        x: a batch of inputs.
        y: integer labels (used by ``quantity="loss"``).
        branch_mask: ``(batch, n_blocks)`` array of 0/1.
        quantity: ``"loss"`` (per-example cross-entropy, as Veit et al.) or ``"logits_sum"``.

    Returns:
        numpy array of the same shape as ``x``.

    Example:
        >>> g = input_gradients(model, x[:4], y[:4], np.zeros((4, 9)))  # skip-only paths
    """
    import tensorflow as tf

    quantity = one_of("quantity", quantity, QUANTITIES)
    steps = chain_steps(model)
    block_steps = [s for s in steps if s.block is not None]
    for step in block_steps:
        if step.operation.plain:
            raise ValueError(f"block '{step.name}' is plain (no shortcut): path gradients need "
                             "residual-type blocks.")
    x = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    mask = np.asarray(branch_mask, dtype=np.float32)
    if mask.shape != (int(x.shape[0]), len(block_steps)):
        raise ValueError(f"`branch_mask` must have shape (batch, n_blocks) = "
                         f"({int(x.shape[0])}, {len(block_steps)}), got {mask.shape}.")
    mask = tf.constant(mask)
    positions = {id(s): i for i, s in enumerate(block_steps)}

    def masked(step, h):
        block = step.operation
        b = tf.reshape(mask[:, positions[id(step)]], _mask_shape(h, int(h.shape[0])))
        s = block.shortcut(h)
        r = block.residual(h)
        s_path = (1.0 - b) * s + b * tf.stop_gradient(s)
        r_path = b * r + (1.0 - b) * tf.stop_gradient(r)
        return block.merge(s_path, r_path)

    with tf.GradientTape() as tape:
        tape.watch(x)
        out = run_plan(steps, x, block_fn=masked)
        if quantity == "loss":
            target = tf.reduce_sum(per_example_loss(out, np.asarray(y),
                                                    not output_applies_softmax(model)))
        else:
            target = tf.reduce_sum(out)
    return tape.gradient(target, x).numpy()


@dataclasses.dataclass
class PathGradientResult(Result):
    """Gradient magnitude reaching the input along paths of each length (Veit et al.).

    ``mean_norm[i]`` is the mean input-gradient norm over ``samples`` random paths of length
    ``lengths[i]``; ``contribution[i]`` = ``counts[i] * mean_norm[i]`` (all paths of that
    length); ``effective_range`` = the shortest range of lengths holding ``effective_mass`` of
    the total contribution, ``effective_path_share`` the fraction of all paths it contains;
    ``decay_per_block`` = exp(slope) of a least-squares line through log(mean_norm) (with
    ``decay_r2`` its R squared): the factor by which one more branch scales the gradient.

    Kept for intervals (not in the JSON): ``norms`` (lengths x samples), the input-gradient
    norm of every sample, and ``sample_examples``, the example each sample used.
    """

    model_name: str
    n_blocks: int
    quantity: str
    batched: bool
    samples: int
    lengths: list
    mean_norm: list
    std_norm: list
    counts: list
    contribution: list
    contribution_fraction: list
    peak_length: int
    effective_mass: float
    effective_range: list
    effective_path_share: float
    decay_per_block: float
    decay_r2: float
    norms: np.ndarray = array_field()
    sample_examples: np.ndarray = array_field()

    figure_columns = 3

    def _resampled(self):
        """``(groups, statistic of (indices -> mean norm per length))`` over the flattened
        samples, resampled within each length."""
        if self.norms is None:
            raise ValueError("this PathGradientResult has no per-sample norms: intervals need "
                             "the result returned by path_gradients.")
        norms = np.asarray(self.norms, dtype=float)
        lengths, samples = norms.shape
        flat, groups = norms.reshape(-1), np.repeat(np.arange(lengths), samples)

        def means(i):
            return np.bincount(groups[i], weights=flat[i], minlength=lengths) / samples

        return groups, means

    def assessments(self, seed=0, resamples=RESAMPLES):
        """The registry's ``veit_path_gradient`` on this result: :func:`decay_factor` and
        :func:`peak_over_half`, with bootstrap intervals over the sampled (example, path)
        draws, resampled within each path length.

        Returns:
            a list of one :class:`keras_resnet_lab.findings.Assessment`.

        Example:
            >>> result.assessments()[0].describe()  # doctest: +SKIP
        """
        groups, means = self._resampled()
        options = dict(unit="sampled (example, path) draws (resampled within each length)",
                       resamples=resamples, seed=seed, groups=groups)
        n, lengths = len(groups), self.lengths
        estimates = {
            "decay_factor": bootstrap(lambda i: decay_factor(lengths, means(i)), n, **options),
            "peak_over_half": bootstrap(
                lambda i: peak_over_half(lengths, means(i), self.n_blocks), n, **options)}
        notes = (f"'{self.model_name}', {self.n_blocks} blocks; {self.samples} sampled "
                 f"(example, path) draws at each of {len(lengths)} path lengths "
                 f"({lengths[0]}..{lengths[-1]}); quantity '{self.quantity}'.")
        return [assess("veit_path_gradient", estimates, seeds=(seed,), notes=notes)]

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        dist = path_lengths(self.n_blocks)
        ax1.bar(range(self.n_blocks + 1), dist.fractions, color="C0")
        ax1.set(xlabel="path length", ylabel="fraction of paths", title="Path lengths")
        if self.norms is not None:
            _, means = self._resampled()
            rng = np.random.default_rng(0)
            lengths, samples = np.shape(self.norms)
            offsets = np.arange(lengths)[:, None] * samples
            draws = [means((offsets + rng.integers(0, samples, (lengths, samples))).ravel())
                     for _ in range(200)]
            low, high = np.quantile(draws, [0.025, 0.975], axis=0)
            yerr, what = error_bars(self.mean_norm, low, high), "mean, 95% interval"
        else:
            yerr, what = self.std_norm, "mean +- std"
        ax2.errorbar(self.lengths, self.mean_norm, yerr=yerr, fmt="o-", ms=3, capsize=2,
                     label=what)
        ax2.legend(fontsize=8)
        ax2.set_yscale("log")
        ax2.set(xlabel="path length", ylabel="input-gradient norm",
                title=f"Gradient per path (x{self.decay_per_block:.2f} per block)")
        ax3.bar(self.lengths, self.contribution_fraction, color="C2")
        lo, hi = self.effective_range
        ax3.axvspan(lo - 0.5, hi + 0.5, color="C1", alpha=0.2,
                    label=f"{self.effective_mass:.0%} of gradient: {lo}-{hi}")
        ax3.set(xlabel="path length", ylabel="share of total gradient",
                title="Total gradient by path length")
        ax3.legend(fontsize=8)
        for ax in axes:
            ax.grid(alpha=0.3)


def effective_range(lengths, weights, mass=0.9):
    """The shortest contiguous range of ``lengths`` whose ``weights`` hold ``mass`` of the total.

    Veit et al. (arXiv 1605.06431) call the lengths holding most of the gradient the effective
    paths.

    Args:
        lengths: sorted path lengths.
        weights: nonnegative weight of each length (e.g. its total gradient).
        mass: share of the total weight the range must hold, in (0, 1].

    Example:
        >>> effective_range([0, 1, 2, 3], [0.0, 5.0, 4.0, 1.0], 0.9)
        (1, 2)
    """
    weights = np.asarray(weights, dtype=float)
    total = weights.sum()
    if total <= 0:
        return (lengths[0], lengths[-1])
    cum = np.concatenate([[0.0], np.cumsum(weights)])
    best = (0, len(weights) - 1)
    for lo in range(len(weights)):
        hi = int(np.searchsorted(cum, cum[lo] + mass * total - 1e-12 * total, side="left")) - 1
        if hi < len(weights) and hi >= lo and hi - lo < best[1] - best[0]:
            best = (lo, hi)
    return (lengths[best[0]], lengths[best[1]])


def decay_factor(lengths, mean_norm):
    """exp(slope) of the least-squares line through ``log(mean_norm)`` against the path length,
    over the lengths whose mean norm is positive: the factor by which one more branch on a
    path scales its gradient (NaN with fewer than two such lengths).

    Example:
        >>> round(decay_factor([0, 1, 2, 3], [8.0, 4.0, 2.0, 1.0]), 6)
        0.5
    """
    mean_norm = np.asarray(mean_norm, dtype=float)
    positive = mean_norm > 0
    if positive.sum() < 2:
        return float("nan")
    slope, _ = np.polyfit(np.asarray(lengths, dtype=float)[positive],
                          np.log(mean_norm[positive]), 1)
    return float(np.exp(slope))


def peak_over_half(lengths, mean_norm, n_blocks):
    """The path length ``k`` whose paths carry the most gradient in all (``C(n, k)`` x mean
    norm at ``k``), over ``n / 2``, where most paths are.

    Example:
        >>> peak_over_half([0, 1, 2, 3, 4], [1.0, 0.5, 0.25, 0.125, 0.0625], 4)
        0.5
    """
    weights = np.array([math.comb(int(n_blocks), int(k)) for k in lengths], dtype=float)
    contribution = weights * np.asarray(mean_norm, dtype=float)
    if not np.all(np.isfinite(contribution)):
        return float("nan")
    return float(lengths[int(np.argmax(contribution))]) / (n_blocks / 2)


def path_gradients(model, data, samples_per_length=32, *, lengths=None, quantity="loss",
                   batched=True, batch_size=128, effective_mass=0.9, seed=0, progress_bar=True):
    """Veit et al.'s gradient magnitude per path length, and the effective paths
    (arXiv 1605.06431).

    For each length ``k`` and each of ``samples_per_length`` samples, a random example and a
    random set of ``k`` blocks are drawn; the norm of the input gradient of the example's loss
    along the path through exactly those branches is recorded (see :func:`input_gradients`).

    Args:
        model: a chain model of residual-type blocks (not a plain twin).
        data: ``(x, y)`` images and integer labels.
        samples_per_length: samples per length (Veit et al. used 1,000).
        lengths: the path lengths to measure (default every ``k`` in ``0..n``).
        quantity: ``"loss"`` (Veit et al.) or ``"logits_sum"``.
        batched: True computes many (example, path) samples in one batched pass with
            per-example masks; False does one pass per sample. Both give the same numbers.
        batch_size: samples per pass when batched.
        effective_mass: share of the total gradient the effective range must hold.
        seed: seed of the draws.
        progress_bar: show a progress bar.

    Returns:
        :class:`PathGradientResult`.

    Example:
        >>> result = path_gradients(model, (x_test, y_test), samples_per_length=64)
        >>> result.effective_range
    """
    samples = count("samples_per_length", samples_per_length)
    quantity = one_of("quantity", quantity, QUANTITIES)
    mass = number_in("effective_mass", effective_mass, 0.0, 1.0, low_open=True)
    batched = boolean("batched", batched)
    batch_size = positive_int("batch_size", batch_size)
    seed = seed_check("seed", seed)
    progress_bar = boolean("progress_bar", progress_bar)
    if lengths is not None:
        lengths = int_list("lengths", lengths, 0)
    x, y = check_data(model, data)
    block_steps = [s for s in chain_steps(model) if s.block is not None]
    for step in block_steps:
        if step.operation.plain:
            raise ValueError(f"block '{step.name}' is plain (no shortcut): path gradients need "
                             "residual-type blocks.")
    n = len(block_steps)
    if lengths is None:
        lengths = list(range(n + 1))
    lengths = sorted(set(lengths))
    if any(k < 0 or k > n for k in lengths):
        raise ValueError(f"`lengths` must lie in [0, {n}], got {lengths!r}.")
    rng = np.random.default_rng(seed)
    rows_k = np.repeat(lengths, samples)
    rows_x = rng.integers(0, len(x), size=len(rows_k))
    masks = np.zeros((len(rows_k), n), dtype=np.float32)
    for r, k in enumerate(rows_k):
        masks[r, rng.choice(n, size=k, replace=False)] = 1.0
    spans = batches(len(rows_k), batch_size if batched else 1)
    norms = np.zeros(len(rows_k))
    for lo, hi in progress(spans, desc=f"path gradients {model.name}", enabled=progress_bar):
        idx = rows_x[lo:hi]
        grads = input_gradients(model, x[idx], y[idx], masks[lo:hi], quantity)
        norms[lo:hi] = np.sqrt((grads.reshape(hi - lo, -1).astype(np.float64) ** 2).sum(1))
    by_k = norms.reshape(len(lengths), samples)
    mean, std = by_k.mean(1), by_k.std(1)
    counts = [math.comb(n, k) for k in lengths]
    contribution = np.array(counts, dtype=float) * mean
    fraction = contribution / contribution.sum() if contribution.sum() > 0 else contribution
    lo, hi = effective_range(lengths, contribution, mass)
    share = sum(math.comb(n, k) for k in range(lo, hi + 1)) / 2 ** n
    positive = mean > 0
    decay, r2 = decay_factor(lengths, mean), float("nan")
    if positive.sum() >= 2:
        ks, logs = np.asarray(lengths, float)[positive], np.log(mean[positive])
        slope, intercept = np.polyfit(ks, logs, 1)
        residual = logs - (slope * ks + intercept)
        total = ((logs - logs.mean()) ** 2).sum()
        r2 = float(1.0 - (residual ** 2).sum() / total) if total > 0 else 1.0
    return PathGradientResult(
        model_name=model.name, n_blocks=n, quantity=quantity, batched=bool(batched),
        samples=samples, lengths=lengths, mean_norm=mean.tolist(), std_norm=std.tolist(),
        counts=counts, contribution=contribution.tolist(),
        contribution_fraction=fraction.tolist(),
        peak_length=int(lengths[int(np.argmax(contribution))]), effective_mass=mass,
        effective_range=[lo, hi], effective_path_share=share,
        decay_per_block=decay, decay_r2=r2, norms=by_k,
        sample_examples=rows_x.reshape(len(lengths), samples))
