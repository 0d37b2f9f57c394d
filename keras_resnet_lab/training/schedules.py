"""Serializable learning-rate schedules: milestone step decay and warm-up + cosine decay.

Both are ``keras.optimizers.schedules.LearningRateSchedule`` subclasses registered under
``keras_resnet_lab>``, with a complete ``get_config``, so a model saved with its optimizer
(``model.save("m.keras")``) reloads with the same schedule. ``step`` is the optimizer's
``iterations`` counter: the number of updates already applied, 0 for the first update.
"""

from __future__ import annotations

import itertools
import math

import keras
from keras import ops

from keras_resnet_lab._checks import int_at_least, number_in, one_of, positive_int

__all__ = ["WARMUP_MODES", "StepDecay", "WarmupCosineDecay"]

WARMUP_MODES = ("constant", "linear")


def _check_warmup(warmup_steps, total_steps, warmup, warmup_lr, default_warmup_lr):
    warmup_steps = int_at_least("warmup_steps", warmup_steps, 0)
    if warmup_steps >= total_steps:
        raise ValueError(f"`warmup_steps` must be < total_steps={total_steps}, got "
                         f"{warmup_steps}.")
    one_of("warmup", warmup, WARMUP_MODES)
    if warmup_lr is None:
        warmup_lr = default_warmup_lr
    warmup_lr = number_in("warmup_lr", warmup_lr, low=0.0)
    return warmup_steps, warmup_lr


def _apply_warmup(step, lr, target_lr, warmup_steps, warmup, warmup_lr):
    """Replace ``lr`` by the warm-up value for ``step < warmup_steps``."""
    if warmup_steps == 0:
        return lr
    if warmup == "constant":
        warm = ops.full_like(lr, warmup_lr)
    else:
        frac = step / float(warmup_steps)
        warm = warmup_lr + (target_lr - warmup_lr) * frac
    return ops.where(step < float(warmup_steps), warm, lr)


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant decay at milestones given as fractions of the total steps.

    ``lr(step) = base_lr * gamma ** k`` where ``k`` is the number of milestones ``m`` with
    ``step >= round(m * total_steps)``. With ``warmup_steps > 0`` the first ``warmup_steps``
    steps use a warm-up instead: ``"constant"`` holds ``warmup_lr`` (He et al. trained
    ResNet-110 at 0.01 for ~400 iterations, then went back to 0.1), ``"linear"`` ramps from
    ``warmup_lr`` at step 0 towards ``base_lr`` (Goyal et al., arXiv 1706.02677). With
    ``milestones=()`` it is a constant rate (with optional warm-up).

    He et al. 2015 (arXiv 1512.03385), CIFAR-10: lr 0.1, divided by 10 at 32k and 48k of 64k
    iterations, i.e. ``milestones=(0.5, 0.75), gamma=0.1``.

    Args:
        base_lr: learning rate after warm-up and before the first milestone (> 0).
        total_steps: total number of optimizer steps of the run (positive int).
        milestones: strictly increasing fractions in (0, 1) of ``total_steps``.
        gamma: multiplicative factor applied at each milestone, in (0, 1].
        warmup_steps: number of warm-up steps, 0 <= warmup_steps < total_steps.
        warmup: ``"constant"`` or ``"linear"``.
        warmup_lr: warm-up rate (constant) or start rate (linear). ``None``: ``base_lr / 10``
            for constant warm-up, 0.0 for linear.

    Example:
        >>> s = StepDecay(0.1, total_steps=1000)
        >>> [round(float(s(i)), 6) for i in (0, 499, 500, 749, 750)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    def __init__(
        self,
        base_lr,
        total_steps,
        milestones=(0.5, 0.75),
        gamma=0.1,
        warmup_steps=0,
        warmup="constant",
        warmup_lr=None,
        name="StepDecay",
    ):
        super().__init__()
        self.base_lr = number_in("base_lr", base_lr, low=0.0, low_open=True)
        self.total_steps = positive_int("total_steps", total_steps)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise ValueError(
                "milestones must be a sequence of increasing fractions in (0, 1), "
                f"got milestones={milestones!r}"
            )
        milestones = tuple(milestones)
        for m in milestones:
            number_in("milestones", m, low=0.0, high=1.0, low_open=True, high_open=True)
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError(
                "milestones must be strictly increasing fractions in (0, 1), "
                f"got milestones={milestones!r}"
            )
        self.milestones = tuple(float(m) for m in milestones)
        self.gamma = number_in("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.warmup_steps, self.warmup_lr = _check_warmup(
            warmup_steps,
            self.total_steps,
            warmup,
            warmup_lr,
            self.base_lr / 10.0 if warmup == "constant" else 0.0,
        )
        self.warmup = warmup
        self.name = name

    @property
    def boundaries(self):
        """Steps at which the rate is multiplied by ``gamma`` (``round(m * total_steps)``)."""
        return [round(m * self.total_steps) for m in self.milestones]

    @property
    def values(self):
        """The piecewise rates: ``base_lr * gamma ** k`` for k = 0..len(milestones)."""
        return [self.base_lr * self.gamma**k for k in range(len(self.milestones) + 1)]

    def __call__(self, step):
        step = ops.cast(step, "float32")
        values = self.values
        lr = ops.full_like(step, values[0])
        for boundary, value in zip(self.boundaries, values[1:], strict=True):
            lr = ops.where(step >= float(boundary), ops.full_like(step, value), lr)
        return _apply_warmup(step, lr, self.base_lr, self.warmup_steps, self.warmup, self.warmup_lr)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "warmup_steps": self.warmup_steps,
            "warmup": self.warmup,
            "warmup_lr": self.warmup_lr,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up, then cosine decay from ``base_lr`` to ``final_lr`` at ``total_steps``.

    For ``step < warmup_steps`` (linear warm-up): ``warmup_lr + (base_lr - warmup_lr) *
    step / warmup_steps``. After it, with ``p = (step - warmup_steps) / (total_steps -
    warmup_steps)`` clipped to [0, 1]: ``final_lr + (base_lr - final_lr) * (1 + cos(pi p)) / 2``.
    Cosine annealing: Loshchilov & Hutter, SGDR (arXiv 1608.03983); gradual warm-up: Goyal et
    al. (arXiv 1706.02677).

    Args:
        base_lr: peak learning rate, reached at the end of warm-up (> 0).
        total_steps: total number of optimizer steps of the run (positive int).
        warmup_steps: number of warm-up steps, 0 <= warmup_steps < total_steps.
        warmup: ``"linear"`` (default) or ``"constant"``.
        warmup_lr: rate at step 0 (linear) or during warm-up (constant). ``None``: 0.0 for
            linear warm-up, ``base_lr / 10`` for constant.
        final_lr: rate at ``total_steps`` (>= 0, <= base_lr).

    Example:
        >>> s = WarmupCosineDecay(1e-3, total_steps=110, warmup_steps=10)
        >>> [round(float(s(i)), 7) for i in (0, 5, 10, 60, 110)]
        [0.0, 0.0005, 0.001, 0.0005, 0.0]
    """

    def __init__(
        self,
        base_lr,
        total_steps,
        warmup_steps=0,
        warmup="linear",
        warmup_lr=None,
        final_lr=0.0,
        name="WarmupCosineDecay",
    ):
        super().__init__()
        self.base_lr = number_in("base_lr", base_lr, low=0.0, low_open=True)
        self.total_steps = positive_int("total_steps", total_steps)
        self.warmup_steps, self.warmup_lr = _check_warmup(
            warmup_steps,
            self.total_steps,
            warmup,
            warmup_lr,
            self.base_lr / 10.0 if warmup == "constant" else 0.0,
        )
        self.warmup = warmup
        self.final_lr = number_in("final_lr", final_lr, low=0.0, high=self.base_lr)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay_steps = float(self.total_steps - self.warmup_steps)
        progress = ops.clip((step - float(self.warmup_steps)) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        lr = self.final_lr + (self.base_lr - self.final_lr) * cosine
        return _apply_warmup(step, lr, self.base_lr, self.warmup_steps, self.warmup, self.warmup_lr)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup": self.warmup,
            "warmup_lr": self.warmup_lr,
            "final_lr": self.final_lr,
            "name": self.name,
        }
