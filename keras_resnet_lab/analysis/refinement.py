"""Iterative refinement (Jastrzebski et al. 2017, arXiv 1710.04773; Greff et al., arXiv 1612.07771).

With ``h_{i+1} = h_i + F_i(h_i)``, a first-order expansion gives
``L(h_{i+1}) ~ L(h_i) + F_i(h_i) . dL/dh_i``: a block that lowers the loss moves ``h`` along the
negative gradient, so ``cos(F_i(h_i), -dL/dh_i) > 0``. Jastrzebski et al. find it positive for
every block, with the first block making a large change (``||F_1|| / ||h_1||`` up to 2) and later
blocks small refinements; dropping a later block costs little, dropping the first is
catastrophic.
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, count, positive_int
from keras_resnet_lab.analysis._common import (
    batches,
    check_data,
    error_bars,
    evaluate_plans,
    per_example_loss,
    percentile_bars,
    progress,
)
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap
from keras_resnet_lab.findings.verdict import RESAMPLES
from keras_resnet_lab.models.surgery import chain_plan, chain_steps, run_plan
from keras_resnet_lab.training.recipes import output_applies_softmax


@dataclasses.dataclass
class RefinementResult(Result):
    """Per block: how its branch moves the representation, and what dropping/repeating costs.

    ``cos_neg_grad[i]`` = mean over examples of ``cos(F_i(h_i), -dL/dh_i)``; ``norm_ratio[i]``
    = mean of ``||F_i(h_i)|| / ||h_i||``. For a block that changes shape the gradient is taken
    where its branch is added, at the shortcut's output (``gradient_at[i] == "shortcut"``),
    else at the block input (``"input"``). ``drop_*`` and ``repeat_*`` are the loss and accuracy
    of the model with block ``i`` deleted or applied ``repeat_times`` times (None where the
    block changes shape).

    Kept for intervals (not in the JSON): ``cos_values`` and ``ratio_values``, the
    per-example values (examples x blocks) of the cosine and of the norm ratio.
    """

    model_name: str
    n_examples: int
    block_names: list
    gradient_at: list
    cos_neg_grad: list
    cos_std: list
    norm_ratio: list
    norm_ratio_std: list
    intact_loss: float
    intact_accuracy: float
    drop_loss: list
    drop_accuracy: list
    repeat_times: int
    repeat_loss: list
    repeat_accuracy: list
    cos_values: np.ndarray = array_field()
    ratio_values: np.ndarray = array_field()

    figure_columns = 3

    def drop_loss_increase(self):
        """Loss increase of each single-block deletion."""
        return [None if v is None else v - self.intact_loss for v in self.drop_loss]

    def assessments(self, seed=0, resamples=RESAMPLES):
        """The registry's ``jastrzebski_refinement`` (:func:`mean_cosine`) and
        ``jastrzebski_first_block`` (:func:`first_over_rest`) on this result, with bootstrap
        intervals over the test examples.

        Returns:
            a list of two :class:`keras_resnet_lab.findings.Assessment`.

        Example:
            >>> [a.verdict for a in result.assessments()]  # doctest: +SKIP
        """
        if self.cos_values is None:
            raise ValueError("this RefinementResult has no per-example values: intervals need "
                             "the result returned by refinement.")
        cos, ratio = np.asarray(self.cos_values), np.asarray(self.ratio_values)
        n = len(cos)
        options = dict(resamples=resamples, seed=seed)
        where = (f"'{self.model_name}', {len(self.block_names)} blocks, on {n} test examples "
                 "(the model in inference mode)")
        shortcut = sum(1 for g in self.gradient_at if g == "shortcut")
        return [
            assess("jastrzebski_refinement",
                   {"mean_cosine": bootstrap(lambda i: mean_cosine(cos[i]), n, **options)},
                   seeds=(seed,),
                   notes=where + (f"; at the {shortcut} blocks that change shape the gradient "
                                  "is taken at the shortcut's output." if shortcut else ".")),
            assess("jastrzebski_first_block",
                   {"first_over_rest": bootstrap(lambda i: first_over_rest(ratio[i]), n,
                                                 **options)},
                   seeds=(seed,), notes=where + f"; first block '{self.block_names[0]}'.")]

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        idx = np.arange(1, len(self.block_names) + 1)
        cos_err, ratio_err, what = self.cos_std, self.norm_ratio_std, "mean +- std"
        if self.cos_values is not None:
            cos, ratio = np.asarray(self.cos_values), np.asarray(self.ratio_values)
            cos_err = error_bars(self.cos_neg_grad,
                                 *percentile_bars(lambda i: cos[i].mean(0), len(cos)))
            ratio_err = error_bars(self.norm_ratio,
                                   *percentile_bars(lambda i: ratio[i].mean(0), len(ratio)))
            what = "mean over examples, 95% interval"
        ax1.errorbar(idx, self.cos_neg_grad, yerr=cos_err, fmt="o-", capsize=3, label=what)
        ax1.axhline(0, color="gray", lw=1)
        ax1.set(xlabel="block", ylabel="cos(F(h), -dL/dh)", title="Branch vs. negative gradient")
        ax1.legend(fontsize=8)
        ax2.errorbar(idx, self.norm_ratio, yerr=ratio_err, fmt="o-", capsize=3,
                     color="C2", label=what)
        ax2.legend(fontsize=8)
        ax2.set(xlabel="block", ylabel="||F(h)|| / ||h||", title="Relative change per block")
        drop = [np.nan if v is None else v for v in self.drop_loss]
        ax3.plot(idx, drop, "o-", color="C3", label="block deleted")
        rep = [np.nan if v is None else v for v in self.repeat_loss]
        ax3.plot(idx, rep, "s-", color="C4", label=f"block applied {self.repeat_times}x")
        if self.intact_loss is not None:  # measured with lesions=True
            ax3.axhline(self.intact_loss, color="gray", ls="--", label="intact")
            ax3.set_yscale("log")
        ax3.set(xlabel="block", ylabel="test loss", title="Deleting / repeating a block")
        ax3.legend(fontsize=8)
        for ax in axes:
            ax.grid(alpha=0.3)


def mean_cosine(cos):
    """Mean over blocks of the mean over examples of ``cos(F_i(h_i), -dL/dh_i)``, from the
    per-example values ``(examples, blocks)``.

    Example:
        >>> mean_cosine(np.array([[0.1, 0.3], [0.3, 0.1]]))
        0.2
    """
    return float(np.mean(np.asarray(cos, dtype=float).mean(axis=0)))


def first_over_rest(ratio):
    """``||F||/||h||`` at the first block over the mean of the later blocks (each a mean over
    examples), from the per-example ratios ``(examples, blocks)``; NaN with a single block or
    when the later blocks' mean is 0.

    Example:
        >>> round(first_over_rest(np.array([[2.0, 0.5, 0.1], [1.0, 0.3, 0.3]])), 6)
        5.0
    """
    means = np.asarray(ratio, dtype=float).mean(axis=0)
    rest = float(np.mean(means[1:])) if len(means) > 1 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.float64(means[0]) / rest
    return float(value) if np.isfinite(value) else float("nan")


def _flat(t):
    return np.asarray(t, dtype=np.float64).reshape(int(t.shape[0]), -1)


def branch_statistics(model, x, y):
    """Per-example ``cos(F_i(h_i), -dL/dh_i)`` and ``||F_i(h_i)|| / ||h_i||`` of every block
    (Jastrzebski et al., arXiv 1710.04773).

    Args:
        model: a chain model of residual-type blocks with a classifier head.
        x: a batch of images.
        y: their integer labels.

    Returns:
        ``(cos, ratio, gradient_at)``: two ``(batch, n_blocks)`` arrays and, per block,
        ``"input"`` or ``"shortcut"`` (where the gradient is taken).

    Example:
        >>> cos, ratio, where = branch_statistics(model, x[:32], y[:32])
    """
    import tensorflow as tf

    steps = chain_steps(model)
    for step in steps:
        if step.block is not None and step.operation.plain:
            raise ValueError(f"block '{step.name}' is plain (no shortcut): refinement needs "
                             "residual-type blocks.")
    records = []

    def recorded(step, h):
        block = step.operation
        s = block.shortcut(h)
        r = block.residual(h)
        records.append((h, s, r, step.input_shape == step.output_shape))
        return block.merge(s, r)

    x = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = run_plan(steps, x, block_fn=recorded)
        loss = tf.reduce_sum(per_example_loss(out, np.asarray(y),
                                              not output_applies_softmax(model)))
    targets = [h if same else s for h, s, _, same in records]
    grads = tape.gradient(loss, targets)
    cos, ratio, where = [], [], []
    for (h, _, r, same), g in zip(records, grads):
        f, g, h = _flat(r), -_flat(g), _flat(h)
        denom = np.linalg.norm(f, axis=1) * np.linalg.norm(g, axis=1)
        cos.append(np.where(denom > 0, (f * g).sum(1) / np.where(denom > 0, denom, 1), 0.0))
        hn = np.linalg.norm(h, axis=1)
        ratio.append(np.linalg.norm(f, axis=1) / np.where(hn > 0, hn, np.inf))
        where.append("input" if same else "shortcut")
    return np.stack(cos, 1), np.stack(ratio, 1), where


def refinement(model, data, *, batch_size=128, repeat_times=2, lesions=True, max_examples=None,
               progress_bar=True):
    """Jastrzebski et al.'s iterative-refinement measures for every block of ``model``
    (arXiv 1710.04773).

    Args:
        model: a chain model of residual-type blocks with a classifier head.
        data: ``(x, y)`` images and integer labels.
        batch_size: examples per pass.
        repeat_times: applications of a block in the "repeated" variant (>= 2).
        lesions: also measure the loss/accuracy with each block deleted or repeated.
        max_examples: use only the first examples of ``data``.
        progress_bar: show progress bars.

    Returns:
        :class:`RefinementResult`.

    Example:
        >>> result = refinement(model, (x_test, y_test))
        >>> result.cos_neg_grad  # per block: cos(F_i(h_i), -dL/dh_i)
        >>> [a.describe() for a in result.assessments()]
    """
    repeat_times = count("repeat_times", repeat_times, minimum=2)
    batch_size = positive_int("batch_size", batch_size)
    lesions = boolean("lesions", lesions)
    progress_bar = boolean("progress_bar", progress_bar)
    x, y = check_data(model, data, max_examples)
    steps = chain_steps(model)
    block_steps = [s for s in steps if s.block is not None]
    names = [s.name for s in block_steps]
    cos, ratio, where = [], [], None
    for lo, hi in progress(batches(len(x), batch_size), desc=f"refinement {model.name}",
                           enabled=progress_bar):
        c, r, where = branch_statistics(model, x[lo:hi], y[lo:hi])
        cos.append(c)
        ratio.append(r)
    cos, ratio = np.concatenate(cos), np.concatenate(ratio)
    drop_loss = drop_acc = rep_loss = rep_acc = [None] * len(names)
    intact = {"loss": None, "accuracy": None}
    if lesions:
        plans, kinds = [], []
        for step in block_steps:
            plans.append(chain_plan(model, drop=[step.name]))
            kinds.append(("drop", step.name))
            if step.input_shape == step.output_shape:
                plans.append(chain_plan(model, repeat={step.name: repeat_times}))
                kinds.append(("repeat", step.name))
        intact, scores = evaluate_plans(model, (x, y), plans, batch_size=batch_size,
                                        progress_bar=progress_bar,
                                        desc=f"drop/repeat {model.name}")
        found = dict(zip(kinds, scores))
        drop_loss = [found[("drop", n)]["loss"] for n in names]
        drop_acc = [found[("drop", n)]["accuracy"] for n in names]
        rep_loss = [found.get(("repeat", n), {}).get("loss") for n in names]
        rep_acc = [found.get(("repeat", n), {}).get("accuracy") for n in names]
    return RefinementResult(
        model_name=model.name, n_examples=len(x), block_names=names, gradient_at=where,
        cos_neg_grad=cos.mean(0).tolist(), cos_std=cos.std(0).tolist(),
        norm_ratio=ratio.mean(0).tolist(), norm_ratio_std=ratio.std(0).tolist(),
        intact_loss=intact["loss"], intact_accuracy=intact["accuracy"],
        drop_loss=list(drop_loss), drop_accuracy=list(drop_acc), repeat_times=repeat_times,
        repeat_loss=list(rep_loss), repeat_accuracy=list(rep_acc), cos_values=cos,
        ratio_values=ratio)
