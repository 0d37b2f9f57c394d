"""Lesion study (Veit, Wilber & Belongie 2016, arXiv 1605.06431): delete and reorder blocks.

A residual network behaves like an ensemble of many paths: deleting one block barely changes
its error (except at downsampling blocks), error grows smoothly with the number of deleted or
reordered blocks, while deleting one layer of a plain network sends it to chance.
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
from keras_resnet_lab.analysis._common import check_data, evaluate_plans
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.surgery import chain_plan, chain_steps

METHODS = ("cached", "naive")


def kendall_tau(order):
    """Kendall's tau between a permutation ``order`` (of ``range(n)``) and the identity.

    1 for the identity, -1 for the reversal (no ties in a permutation); Veit et al. (arXiv
    1605.06431) plot error against it for reordered blocks.

    Args:
        order: a permutation of ``range(n)``.

    Example:
        >>> kendall_tau([1, 0, 2])
        0.3333333333333333
    """
    order = list(order)
    n = len(order)
    if n < 2:
        return 1.0
    discordant = sum(1 for i, j in itertools.combinations(range(n), 2) if order[i] > order[j])
    return 1.0 - 4.0 * discordant / (n * (n - 1))


@dataclasses.dataclass
class LesionResult(Result):
    """Errors of a model after block deletions and reorderings (and of its plain twin).

    ``single_error[i]`` is the error with block ``block_names[i]`` deleted; ``random_k`` holds,
    per number ``k`` of deleted blocks, the errors of ``draws`` random choices; ``reorder``
    holds one record per random reordering (``swaps`` random swaps of equal-shape blocks):
    its Kendall tau against the original order and its error. ``plain`` is the same study of
    the plain twin (or None).
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

    figure_columns = 3

    def single_error_increase(self):
        """Error increase of each single deletion over the intact model."""
        return [e - self.intact_error for e in self.single_error]

    def mean_error_by_k(self):
        """``{k: mean error}`` over the random draws."""
        return {r["k"]: float(np.mean(r["errors"])) for r in self.random_k}

    def summary(self):
        """Headline numbers: error increase at non-downsampling and downsampling blocks."""
        increase = np.array(self.single_error_increase())
        down = np.array(self.downsampling, dtype=bool)
        out = {
            "intact_error": self.intact_error,
            "max_increase_non_downsampling": float(increase[~down].max()) if (~down).any()
            else None,
            "mean_increase_non_downsampling": float(increase[~down].mean()) if (~down).any()
            else None,
            "mean_increase_downsampling": float(increase[down].mean()) if down.any() else None,
            "mean_single_error": float(np.mean(self.single_error)),
        }
        if self.reorder:
            taus = [r["kendall_tau"] for r in self.reorder]
            errors = [r["error"] for r in self.reorder]
            out["reorder_tau_error_correlation"] = _spearman(taus, errors)
        if self.random_k:
            ks, means = zip(*sorted(self.mean_error_by_k().items()))
            out["k_error_correlation"] = _spearman(ks, means)
        return out

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        studies = [(self, "residual", "C0")]
        if self.plain is not None:
            studies.append((self.plain, "plain", "C3"))
        for study, label, color in studies:
            idx = np.arange(1, len(study.single_error) + 1)
            ax1.plot(idx, study.single_error, "o-", color=color, label=f"{label}: one deleted")
            ax1.axhline(study.intact_error, color=color, ls=":", lw=1,
                        label=f"{label}: intact")
            down = [i + 1 for i, d in enumerate(study.downsampling) if d]
            ax1.plot(down, [study.single_error[i - 1] for i in down], "s", mfc="none",
                     ms=11, color=color)
            if study.random_k:
                ks = [r["k"] for r in study.random_k]
                mean = [np.mean(r["errors"]) for r in study.random_k]
                std = [np.std(r["errors"]) for r in study.random_k]
                ax2.errorbar(ks, mean, yerr=std, fmt="o-", color=color, capsize=3, label=label)
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
        ax2.set(xlabel="number of blocks deleted", title="Deleting k random blocks")
        ax3.set(xlabel="Kendall tau (1 = original order)", title="Reordering blocks")
        ax3.invert_xaxis()
        for ax in axes:
            ax.legend(fontsize=7)


def _spearman(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


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


def lesion_study(model, data, *, plain_model=None, k_values=None, draws=5, swap_counts=None,
                 seed=0, batch_size=256, method="cached", max_examples=None, progress=True):
    """Veit et al.'s lesion study (arXiv 1605.06431): delete one block, k random blocks, or
    reorder blocks.

    Args:
        model: a chain model (residual, highway, multi-residual ...) with a classifier head.
        data: ``(x, y)`` test images and integer labels.
        plain_model: optional plain twin (same builder call with ``plain=True``), studied the
            same way: deleting one of its layers should send it near chance.
        k_values: numbers of blocks deleted at random (default ``1..n``).
        draws: random draws per ``k`` and per number of swaps.
        swap_counts: numbers of random swaps for the reorderings (default ``1..m`` where ``m``
            is the number of blocks that keep their shape); ``()`` skips reordering.
        seed: seed of the random draws (the plain twin gets the same draws).
        batch_size: examples per forward pass.
        method: ``"cached"`` runs each batch through the intact model once and every lesion
            only from the first changed block on (on the cached activation); ``"naive"`` builds
            each lesioned model and runs it from the input. Both give the same numbers.
        max_examples: use only the first examples of ``data``.
        progress: show a progress bar.

    Returns:
        :class:`LesionResult`.

    Example:
        >>> result = lesion_study(model, (x_test, y_test), plain_model=plain, draws=3)
        >>> result.plot("lesion.png")
    """
    method = one_of("method", method, METHODS)
    draws = count("draws", draws)
    seed = seed_check("seed", seed)
    batch_size = positive_int("batch_size", batch_size)
    progress = boolean("progress", progress)
    if plain_model is not None:
        keras_model("plain_model", plain_model)
    if k_values is not None:
        k_values = int_list("k_values", k_values, 1)
    if swap_counts is not None:
        swap_counts = int_list("swap_counts", swap_counts, 1, allow_empty=True)
    x, y = check_data(model, data, max_examples)
    steps = chain_steps(model)
    names = [s.name for s in steps if s.block is not None]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"model '{model.name}' must run each of its blocks once for a lesion "
                         f"study; its chain runs {names}.")
    n = len(names)
    if k_values is None:
        k_values = range(1, n + 1)
    if any(k > n for k in k_values):
        raise ValueError(f"`k_values` must lie in [1, {n}] (the model has {n} blocks), got "
                         f"{k_values!r}.")
    movable = sum(1 for s in steps if s.block is not None and s.input_shape == s.output_shape)
    if swap_counts is None:
        swap_counts = range(1, max(movable, 1) + 1)
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
                                    cached=method == "cached", progress_bar=progress,
                                    desc=f"lesion {model.name}")
    single_error, single_loss, random_k, reorder = [], [], {}, []
    for (kind, key), score in zip(labels, scores):
        error = 1.0 - score["accuracy"]
        if kind == "single":
            single_error.append(error)
            single_loss.append(score["loss"])
        elif kind == "k":
            random_k.setdefault(key, []).append(error)
        else:
            reorder.append({"swaps": key[0], "kendall_tau": key[1], "error": error})
    num_classes = int(model.outputs[0].shape[-1])
    by_name = {s.name: s for s in steps if s.block is not None}
    plain = None
    if plain_model is not None:
        if len(blocks(plain_model)) != n:
            raise ValueError(f"`plain_model` must have the same {n} blocks as the model, it has "
                             f"{len(blocks(plain_model))}.")
        plain = lesion_study(plain_model, (x, y), k_values=k_values, draws=draws,
                             swap_counts=swap_counts, seed=seed, batch_size=batch_size,
                             method=method, progress=progress)
    return LesionResult(
        model_name=model.name, n_examples=len(x), num_classes=num_classes,
        chance_error=1.0 - 1.0 / num_classes, method=method, block_names=names,
        downsampling=[by_name[nm].input_shape != by_name[nm].output_shape for nm in names],
        intact_error=1.0 - intact["accuracy"], intact_loss=intact["loss"],
        single_error=single_error, single_loss=single_loss,
        random_k=[{"k": k, "errors": v, "mean_error": float(np.mean(v))}
                  for k, v in random_k.items()],
        reorder=reorder, plain=plain)
