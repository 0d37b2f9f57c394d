"""Lesion study (Veit, Wilber & Belongie 2016, arXiv 1605.06431): delete and reorder blocks.

Veit et al. read a residual network as an ensemble of many paths: they report that deleting
one block barely changes its error (except at downsampling blocks), that the error grows
smoothly with the number of deleted or reordered blocks, and that deleting one layer of a
plain network sends it to chance. :meth:`LesionResult.assessments` tests these claims
(``veit_lesion``, ``veit_k_deletion``, ``veit_reorder`` in
:mod:`keras_resnet_lab.findings.registry`) with bootstrap intervals.
"""

import dataclasses
import itertools
from typing import Optional

import numpy as np

from keras_resnet_lab._checks import (
    boolean,
    count,
    int_list,
    keras_model,
    one_of,
    positive_int,
)
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.analysis._common import (
    check_data,
    error_bars,
    error_rates,
    evaluate_plans,
    percentile_bars,
    spearman,
)
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap, missing
from keras_resnet_lab.findings.verdict import RESAMPLES
from keras_resnet_lab.models.surgery import chain_plan, chain_steps

METHODS = ("cached", "naive")


def kendall_tau(order):
    """Kendall's tau between a permutation ``order`` (of ``range(n)``) and the identity.

    1 for the identity, -1 for the reversal (no ties in a permutation); Veit et al. (arXiv
    1605.06431) plot error against it for reordered blocks.

    Args:
        order: a permutation of ``range(n)``.

    Example:
        >>> round(kendall_tau([1, 0, 2]), 6)
        0.333333
    """
    order = list(order)
    n = len(order)
    if n < 2:
        return 1.0
    discordant = sum(1 for i, j in itertools.combinations(range(n), 2) if order[i] > order[j])
    return 1.0 - 4.0 * discordant / (n * (n - 1))


def median_rise(intact_error, single_error, downsampling):
    """Veit et al.'s single-deletion statistic, in points: 100 x the median over the blocks
    that do not downsample of (error with the block deleted - intact error); NaN when every
    block downsamples.

    Example:
        >>> round(median_rise(0.10, [0.11, 0.13, 0.60, 0.12], [False, False, True, False]), 6)
        2.0
    """
    single = np.asarray(single_error, dtype=float)
    keep = ~np.asarray(downsampling, dtype=bool)
    if not keep.any():
        return float("nan")
    return 100.0 * float(np.median(single[keep] - float(intact_error)))


def median_error(single_error, downsampling):
    """100 x the median over the blocks that do not downsample of the error with the block
    deleted (points; NaN when every block downsamples).

    Example:
        >>> round(median_error([0.8, 0.9, 0.1], [False, False, True]), 6)
        85.0
    """
    single = np.asarray(single_error, dtype=float)
    keep = ~np.asarray(downsampling, dtype=bool)
    return 100.0 * float(np.median(single[keep])) if keep.any() else float("nan")


def k_curve(intact_error, draw_errors, draw_k):
    """The mean error against the number ``k`` of deleted blocks, the intact model as ``k = 0``.

    Args:
        intact_error: error of the intact model.
        draw_errors: error of each random draw.
        draw_k: ``k`` of each draw.

    Returns:
        ``(ks, mean errors)``: ``ks`` = 0 then the measured ``k`` in increasing order.

    Example:
        >>> k_curve(0.1, [0.2, 0.4, 0.5], [1, 1, 2])
        ([0, 1, 2], [0.1, 0.30000000000000004, 0.5])
    """
    draw_errors = np.asarray(draw_errors, dtype=float)
    ks, position = np.unique(np.asarray(draw_k, dtype=int), return_inverse=True)
    sums = np.bincount(position, weights=draw_errors, minlength=len(ks))
    counts = np.bincount(position, minlength=len(ks))
    means = sums / counts
    return [0] + ks.tolist(), [float(intact_error)] + means.tolist()


#: ``rank_correlation(ks, mean_errors)``: the Spearman correlation between ``k`` and the mean
#: error at ``k`` (NaN when constant): the ``rank_correlation`` of ``veit_k_deletion``.
rank_correlation = spearman


def largest_step(mean_errors):
    """100 x the largest rise of the mean error from one measured ``k`` to the next (``k``
    increasing from 0), in points.

    Example:
        >>> round(largest_step([0.1, 0.12, 0.2, 0.21]), 6)
        8.0
    """
    mean_errors = np.asarray(mean_errors, dtype=float)
    if len(mean_errors) < 2:
        return float("nan")
    return 100.0 * float(np.max(np.diff(mean_errors)))


def largest_step_share(mean_errors):
    """The largest rise of the mean error from one measured ``k`` to the next, as a share of
    its rise from the first ``k`` (0: intact) to the last: near ``1 / steps`` for a steady
    rise, near 1 for a cliff (NaN when the error does not rise at all).

    Example:
        >>> round(largest_step_share([0.1, 0.12, 0.2, 0.3]), 6)
        0.5
    """
    mean_errors = np.asarray(mean_errors, dtype=float)
    total = mean_errors[-1] - mean_errors[0] if len(mean_errors) >= 2 else float("nan")
    if not total > 0:
        return float("nan")
    return largest_step(mean_errors) / (100.0 * float(total))


#: ``tau_correlation(taus, errors)``: the Spearman correlation between Kendall's tau of
#: reordered block orders and their errors (NaN when either is constant): the
#: ``tau_correlation`` of ``veit_reorder``.
tau_correlation = spearman


@dataclasses.dataclass
class LesionResult(Result):
    """Errors of a model after block deletions and reorderings (and of a plain network).

    ``single_error[i]`` is the error with block ``block_names[i]`` deleted; ``random_k`` holds,
    per number ``k`` of deleted blocks, the errors of ``draws`` random choices; ``reorder``
    holds one record per random reordering (``swaps`` random swaps of equal-shape blocks):
    its Kendall tau against the original order and its error. ``plain`` is the study of the
    plain network it is compared with (or None): its single deletions only (its ``random_k``
    and ``reorder`` are empty).

    Kept for intervals (not in the JSON): per example (last axis, the order of the data)
    whether the prediction was right: ``intact_correct`` (examples), ``single_correct``
    (blocks x examples), ``k_correct`` (one row per draw of ``random_k``, in its order) and
    ``reorder_correct`` (one row per record of ``reorder``).
    """

    model_name: str
    n_examples: int
    num_classes: int
    chance_error: float
    method: str
    block_names: list
    downsampling: list
    intact_error: float
    intact_loss: float
    single_error: list
    single_loss: list
    random_k: list
    reorder: list
    plain: Optional["LesionResult"] = None
    intact_correct: np.ndarray = array_field()
    single_correct: np.ndarray = array_field()
    k_correct: np.ndarray = array_field()
    reorder_correct: np.ndarray = array_field()

    figure_columns = 3

    def single_error_increase(self):
        """Error increase of each single deletion over the intact model."""
        return [e - self.intact_error for e in self.single_error]

    def mean_error_by_k(self):
        """``{k: mean error}`` over the random draws."""
        return {r["k"]: float(np.mean(r["errors"])) for r in self.random_k}

    def summary(self):
        """Headline numbers: error increase at non-downsampling and downsampling blocks, and
        the rank correlations of the k-deletion and reordering curves (intact as ``k = 0``)."""
        increase = np.array(self.single_error_increase())
        down = np.array(self.downsampling, dtype=bool)
        out = {
            "intact_error": self.intact_error,
            "max_increase_non_downsampling": float(increase[~down].max()) if (~down).any()
            else None,
            "mean_increase_non_downsampling": float(increase[~down].mean()) if (~down).any()
            else None,
            "median_increase_non_downsampling_points": median_rise(
                self.intact_error, self.single_error, self.downsampling),
            "mean_increase_downsampling": float(increase[down].mean()) if down.any() else None,
            "mean_single_error": float(np.mean(self.single_error)),
        }
        if self.reorder:
            out["reorder_tau_error_correlation"] = tau_correlation(
                [r["kendall_tau"] for r in self.reorder], [r["error"] for r in self.reorder])
        if self.random_k:
            ks, means = k_curve(self.intact_error, *self._draws())
            out["k_error_correlation"] = rank_correlation(ks, means)
            out["k_largest_step_points"] = largest_step(means)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in out.items()}

    def _draws(self):
        """(error of each k-deletion draw, its k), in the order of ``k_correct``."""
        errors = [e for r in self.random_k for e in r["errors"]]
        ks = [r["k"] for r in self.random_k for _ in r["errors"]]
        return np.asarray(errors, dtype=float), np.asarray(ks, dtype=int)

    def _arrays(self):
        if self.intact_correct is None:
            raise ValueError("this LesionResult has no per-example data (intact_correct ...): "
                             "intervals need the result returned by lesion_study.")

    def assessments(self, seed=0, resamples=RESAMPLES):
        """The registry's findings on this study: ``veit_lesion``, ``veit_k_deletion`` and
        ``veit_reorder``, each with bootstrap intervals
        (:func:`keras_resnet_lab.findings.bootstrap`).

        ``veit_lesion`` is a paired bootstrap over the test examples: one resample of the
        examples is applied to the intact and lesioned models of both networks. The others
        resample the random draws (within each ``k``, within each number of swaps) and,
        independently, the test examples.

        Args:
            seed: seed of the bootstrap resampling.
            resamples: bootstrap resamples per criterion.

        Returns:
            a list of three :class:`keras_resnet_lab.findings.Assessment`.

        Example:
            >>> [a.verdict for a in result.assessments()]  # doctest: +SKIP
        """
        self._arrays()
        return [self._single_assessment(seed, resamples), self._k_assessment(seed, resamples),
                self._reorder_assessment(seed, resamples)]

    def _single_assessment(self, seed, resamples):
        n, down = self.n_examples, self.downsampling
        intact, single = self.intact_correct, self.single_correct
        options = dict(resamples=resamples, seed=seed)
        estimates = {"median_rise": bootstrap(
            lambda i: median_rise(error_rates(intact, i), error_rates(single, i), down), n,
            **options)}
        plain = self.plain
        if plain is None:
            reason = "no plain network was studied"
            estimates.update(plain_error=missing(reason), plain_intact_error=missing(reason))
        else:
            plain._arrays()
            if plain.n_examples != n:
                raise ValueError(f"the plain network was studied on {plain.n_examples} examples, "
                                 f"the model on {n}: a paired bootstrap needs the same ones.")
            estimates["plain_error"] = bootstrap(
                lambda i: median_error(error_rates(plain.single_correct, i), plain.downsampling),
                n, **options)
            estimates["plain_intact_error"] = bootstrap(
                lambda i: 100.0 * float(error_rates(plain.intact_correct, i)), n, **options)
        kept = len(down) - int(np.sum(down))
        notes = (f"'{self.model_name}' on {n} test examples; median over the {kept} of "
                 f"{len(down)} blocks that do not downsample; the same resamples of the "
                 "examples for the intact and lesioned models"
                 + (f" and for the plain network '{plain.model_name}' ({len(plain.block_names)} "
                    "blocks)." if plain is not None
                    else "."))
        return assess("veit_lesion", estimates, seeds=(seed,), notes=notes)

    def _k_assessment(self, seed, resamples):
        if not self.random_k:
            estimates = dict.fromkeys(("rank_correlation", "largest_step_share"),
                                      missing("no k-deletions were measured"))
            return assess("veit_k_deletion", estimates, seeds=(seed,))
        intact, rows = self.intact_correct, self.k_correct
        _, draw_k = self._draws()

        def curve(d, e):
            return k_curve(error_rates(intact, e), error_rates(rows[np.ix_(d, e)]), draw_k[d])

        options = dict(unit="draws (resampled within each k) x test examples",
                       resamples=resamples, seed=seed, groups=(draw_k, None))
        n = (len(draw_k), self.n_examples)
        estimates = {
            "rank_correlation": bootstrap(lambda d, e: rank_correlation(*curve(d, e)), n,
                                          **options),
            "largest_step_share": bootstrap(lambda d, e: largest_step_share(curve(d, e)[1]), n,
                                            **options)}
        counts = {r["k"]: len(r["errors"]) for r in self.random_k}
        draws = sorted(set(counts.values()))
        notes = (f"'{self.model_name}' on {self.n_examples} test examples; k = "
                 f"{_span(sorted(counts))} random blocks deleted, "
                 f"{'/'.join(map(str, draws))} draws per k; the intact model is k = 0.")
        return assess("veit_k_deletion", estimates, seeds=(seed,), notes=notes)

    def _reorder_assessment(self, seed, resamples):
        if len(self.reorder) < 2:
            return assess("veit_reorder", {"tau_correlation": missing(
                "fewer than 2 reorderings were measured")}, seeds=(seed,))
        taus = np.array([r["kendall_tau"] for r in self.reorder], dtype=float)
        swaps = np.array([r["swaps"] for r in self.reorder], dtype=int)
        rows = self.reorder_correct
        estimate = bootstrap(
            lambda d, e: tau_correlation(taus[d], error_rates(rows[np.ix_(d, e)])),
            (len(taus), self.n_examples),
            unit="reorderings (resampled within each swap count) x test examples",
            resamples=resamples, seed=seed, groups=(swaps, None))
        counts = sorted(set(swaps.tolist()))
        notes = (f"'{self.model_name}' on {self.n_examples} test examples; {len(taus)} random "
                 f"reorderings of {', '.join(map(str, counts))} swaps of blocks of equal "
                 "shape.")
        return assess("veit_reorder", {"tau_correlation": estimate}, seeds=(seed,),
                      notes=notes)

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        studies = [(self, "residual", "C0")]
        if self.plain is not None:
            studies.append((self.plain, f"plain ({self.plain.model_name})", "C3"))
        for study, label, color in studies:
            idx = np.arange(1, len(study.single_error) + 1)
            single = np.asarray(study.single_error, dtype=float)
            if study.single_correct is not None:
                low, high = percentile_bars(
                    lambda i, s=study: error_rates(s.single_correct, i), study.n_examples)
                ax1.errorbar(idx, single, yerr=error_bars(single, low, high), fmt="o-",
                             capsize=2, color=color,
                             label=f"{label}: one deleted (95% interval)")
            else:
                ax1.plot(idx, single, "o-", color=color, label=f"{label}: one deleted")
            ax1.axhline(study.intact_error, color=color, ls=":", lw=1,
                        label=f"{label}: intact")
            down = [i + 1 for i, d in enumerate(study.downsampling) if d]
            ax1.plot(down, [study.single_error[i - 1] for i in down], "s", mfc="none",
                     ms=11, color=color)
            if study.random_k:
                errors, draw_k = study._draws()
                ks, mean = k_curve(study.intact_error, errors, draw_k)
                if study.k_correct is not None:
                    low, high = study._k_bars()
                    yerr = error_bars(mean, low, high)
                else:
                    yerr = None
                ax2.errorbar(ks, mean, yerr=yerr, fmt="o-", color=color, capsize=3,
                             label=f"{label} (95% interval)")
            if study.reorder:
                ax3.scatter([r["kendall_tau"] for r in study.reorder],
                            [r["error"] for r in study.reorder], s=14, color=color,
                            label=label)
        for ax in axes:
            ax.axhline(self.chance_error, color="gray", ls="--", lw=1, label="chance")
            ax.set_ylabel("test error")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        ax1.set(xlabel="deleted block (squares: downsampling)", title="Deleting one block")
        ax2.set(xlabel="number of blocks deleted (0: intact)", title="Deleting k random blocks")
        ax3.set(xlabel="Kendall tau (1 = original order)", title="Reordering blocks")
        ax3.invert_xaxis()
        for ax in axes:
            ax.legend(fontsize=7)

    def _k_bars(self, resamples=200, seed=0):
        """Figure intervals of the mean error at each k (draws within k, and examples)."""
        _, draw_k = self._draws()
        members = [np.flatnonzero(draw_k == k) for k in np.unique(draw_k)]
        rng = np.random.default_rng(seed + 1)

        def curve(e):
            d = np.concatenate([rng.choice(m, len(m)) for m in members])
            return k_curve(error_rates(self.intact_correct, e),
                           error_rates(self.k_correct[np.ix_(d, e)]), draw_k[d])[1]

        return percentile_bars(curve, self.n_examples, resamples, seed)


def _span(values):
    """``1..9`` for consecutive integers, else the list."""
    values = list(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values))

def _random_orders(steps, names, swap_counts, draws, rng):
    """Random reorderings: ``swaps`` random swaps among blocks of equal, kept shape."""
    block_steps = [s for s in steps if s.block is not None]
    groups = {}
    for i, step in enumerate(block_steps):
        if step.input_shape == step.output_shape:
            groups.setdefault(step.input_shape, []).append(i)
    groups = [g for g in groups.values() if len(g) >= 2]
    if not groups:
        return []
    weights = np.array([len(g) * (len(g) - 1) for g in groups], dtype=float)
    orders = []
    for swaps in swap_counts:
        for _ in range(draws):
            order = list(range(len(names)))
            for _ in range(swaps):
                group = groups[rng.choice(len(groups), p=weights / weights.sum())]
                i, j = rng.choice(group, size=2, replace=False)
                order[i], order[j] = order[j], order[i]
            orders.append((swaps, order))
    return orders


def default_swap_counts(movable):
    """The default numbers of random swaps: powers of two up to ``movable`` (1, 2, 4, 8 ...).

    Example:
        >>> default_swap_counts(25)
        [1, 2, 4, 8, 16]
    """
    counts, swaps = [], 1
    while swaps <= max(int(movable), 1):
        counts.append(swaps)
        swaps *= 2
    return counts


def lesion_study(model, data, *, plain_model=None, k_values=None, draws=20, swap_counts=None,
                 seed=0, batch_size=256, method="cached", max_examples=None, progress_bar=True):
    """Veit et al.'s lesion study (arXiv 1605.06431): delete one block, k random blocks, or
    reorder blocks.

    Per-example correctness is kept on the result, so that
    :meth:`LesionResult.assessments` can give the findings with bootstrap intervals.

    Args:
        model: a chain model (residual, highway, multi-residual ...) with a classifier head.
        data: ``(x, y)`` test images and integer labels.
        plain_model: optional plain network to compare with: its single deletions are
            measured too (deleting one of its layers should send it near chance); its
            k-deletions and reorderings are not. The plain twin (same builder call with
            ``plain=True``) or any plain chain on the same images and classes: Veit et al.
            compared ResNet-110 with the shallower VGG-15, and the comparison needs a plain
            network that works (the registry's precondition on its intact error).
        k_values: numbers of blocks deleted at random (default ``1..max(1, n // 3)`` for
            ``n`` blocks).
        draws: random draws per ``k`` and per number of swaps (the registry's
            ``veit_k_deletion`` asks for at least 20).
        swap_counts: numbers of random swaps for the reorderings (default the powers of two
            up to the number of blocks that keep their shape: 1, 2, 4, 8 ...); ``()`` skips
            reordering.
        seed: seed of the random draws.
        batch_size: examples per forward pass.
        method: ``"cached"`` runs each batch through the intact model once and every lesion
            only from the first changed block on (on the cached activation); ``"naive"`` builds
            each lesioned model and runs it from the input. Both give the same numbers.
        max_examples: use only the first examples of ``data``.
        progress_bar: show a progress bar.

    Returns:
        :class:`LesionResult`.

    Example:
        >>> result = lesion_study(model, (x_test, y_test), plain_model=plain)
        >>> [a.describe() for a in result.assessments()]
        >>> result.plot("lesion.png")
    """
    method = one_of("method", method, METHODS)
    draws = count("draws", draws)
    seed = seed_check("seed", seed)
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    if plain_model is not None:
        keras_model("plain_model", plain_model)
    if k_values is not None:
        k_values = int_list("k_values", k_values, 1)
    if swap_counts is not None:
        swap_counts = int_list("swap_counts", swap_counts, 1, allow_empty=True)
    x, y = check_data(model, data, max_examples)
    options = dict(seed=seed, batch_size=batch_size, method=method,
                   progress_bar=progress_bar)
    if plain_model is not None:
        # Any plain chain that takes these images and has these classes: Veit et al.
        # compared ResNet-110 with VGG-15, a shallower plain network that works.
        x_plain, _ = check_data(plain_model, data, max_examples)
    result = _study(model, x, y, k_values, draws, swap_counts, **options)
    if plain_model is not None:
        result.plain = _study(plain_model, x_plain, y, [], draws, [], **options)
    return result


def _study(model, x, y, k_values, draws, swap_counts, *, seed, batch_size, method,
           progress_bar):
    steps = chain_steps(model)
    names = [s.name for s in steps if s.block is not None]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"model '{model.name}' must run each of its blocks once for a lesion "
                         f"study; its chain runs {names}.")
    n = len(names)
    if k_values is None:
        k_values = range(1, max(1, n // 3) + 1)
    if any(k > n for k in k_values):
        raise ValueError(f"`k_values` must lie in [1, {n}] (the model has {n} blocks), got "
                         f"{list(k_values)!r}.")
    movable = sum(1 for s in steps if s.block is not None and s.input_shape == s.output_shape)
    if swap_counts is None:
        swap_counts = default_swap_counts(movable)
    swap_counts = [count("swap_counts", s) for s in swap_counts]

    rng = np.random.default_rng(seed)
    plans, labels = [], []
    for name in names:
        plans.append(chain_plan(model, drop=[name]))
        labels.append(("single", name))
    for k in k_values:
        for _ in range(draws):
            chosen = sorted(rng.choice(n, size=k, replace=False).tolist())
            plans.append(chain_plan(model, drop=[names[i] for i in chosen]))
            labels.append(("k", k))
    for swaps, order in _random_orders(steps, names, swap_counts, draws, rng):
        plans.append(chain_plan(model, order=[names[i] for i in order]))
        labels.append(("reorder", (swaps, kendall_tau(order))))

    intact, scores = evaluate_plans(model, (x, y), plans, batch_size=batch_size,
                                    cached=method == "cached", progress_bar=progress_bar,
                                    desc=f"lesion {model.name}")
    single_error, single_loss, random_k, reorder = [], [], {}, []
    single_correct, k_correct, reorder_correct = [], {}, []
    for (kind, key), score in zip(labels, scores):
        error = 1.0 - score["accuracy"]
        if kind == "single":
            single_error.append(error)
            single_loss.append(score["loss"])
            single_correct.append(score["correct"])
        elif kind == "k":
            random_k.setdefault(key, []).append(error)
            k_correct.setdefault(key, []).append(score["correct"])
        else:
            reorder.append({"swaps": key[0], "kendall_tau": key[1], "error": error})
            reorder_correct.append(score["correct"])
    num_classes = int(model.outputs[0].shape[-1])
    by_name = {s.name: s for s in steps if s.block is not None}
    empty = np.zeros((0, len(x)), dtype=bool)
    return LesionResult(
        model_name=model.name, n_examples=len(x), num_classes=num_classes,
        chance_error=1.0 - 1.0 / num_classes, method=method, block_names=names,
        downsampling=[by_name[nm].input_shape != by_name[nm].output_shape for nm in names],
        intact_error=1.0 - intact["accuracy"], intact_loss=intact["loss"],
        single_error=single_error, single_loss=single_loss,
        random_k=[{"k": k, "errors": v, "mean_error": float(np.mean(v))}
                  for k, v in random_k.items()],
        reorder=reorder, intact_correct=intact["correct"],
        single_correct=np.stack(single_correct),
        k_correct=np.stack([c for v in k_correct.values() for c in v]) if k_correct else empty,
        reorder_correct=np.stack(reorder_correct) if reorder_correct else empty)
