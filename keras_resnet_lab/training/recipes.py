"""Training recipes: optimizer + learning-rate schedule + regularization, as plain data.

A ``Recipe`` is a frozen dataclass of JSON-friendly fields (``to_dict()`` / ``from_dict()``),
so a run can write the exact recipe it used next to its results. ``recipe.optimizer(
steps_per_epoch, epochs)`` builds a fresh Keras optimizer with its schedule; schedules count
optimizer steps, so milestones and warm-up are exact whatever the epoch length.

Weight decay, precisely. Keras's optimizer ``weight_decay`` is *decoupled* (Loshchilov &
Hutter, arXiv 1711.05101): before each update it does ``w -= lr * wd * w``. For plain SGD
(momentum 0) this is exactly gradient descent on ``loss + (wd / 2) * ||w||^2``, i.e. L2
regularization of coefficient ``wd / 2`` (gradient ``wd * w``) -- the convention of Caffe's and
PyTorch's ``weight_decay``. With momentum ``mu`` the two differ: coupled L2 enters the
momentum buffer and at steady state decays ~``1 / (1 - mu)`` times (10x at 0.9) more per step.
``weight_decay_mode="l2"`` selects the coupled form (``CoupledWeightDecaySGD``), which is what
He et al. used; ``"decoupled"`` (default) uses Keras's ``weight_decay``.
"""

from __future__ import annotations

import dataclasses
import itertools

import keras

from keras_resnet_lab import _keras_compat
from keras_resnet_lab._checks import boolean, number_in, one_of, positive_int
from keras_resnet_lab.training.losses import classification_loss
from keras_resnet_lab.training.optimizers import CoupledWeightDecaySGD
from keras_resnet_lab.training.schedules import WARMUP_MODES, StepDecay, WarmupCosineDecay

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "WEIGHT_DECAY_MODES",
    "Recipe",
    "compile_classifier",
    "compile_model",
    "general_recipe",
    "he_cifar_recipe",
    "output_applies_softmax",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "constant")
WEIGHT_DECAY_MODES = ("decoupled", "l2")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An optimizer, its learning-rate schedule and regularization, as JSON-friendly data.

    Args:
        name: a label written into results (e.g. ``"he_cifar"``).
        optimizer_name: ``"sgd"`` or ``"adamw"``.
        base_lr: peak learning rate (> 0).
        schedule: ``"step"`` (divide by ``1/gamma`` at ``milestones``), ``"cosine"`` (cosine
            decay to ``final_lr``) or ``"constant"``.
        momentum: SGD momentum in [0, 1) (ignored by adamw).
        nesterov: Nesterov momentum for SGD.
        weight_decay: decay coefficient (>= 0); see the module docstring for its exact meaning.
        weight_decay_mode: ``"decoupled"`` (Keras ``weight_decay``: ``w -= lr * wd * w``) or
            ``"l2"`` (coupled, ``g += wd * w`` before momentum; SGD only).
        weight_decay_exclude: variable-name regexes exempt from weight decay (e.g.
            ``("bias", "gamma", "beta")``); empty: decay every trainable variable.
        milestones: fractions of the total steps where the step schedule decays.
        gamma: step-schedule decay factor in (0, 1].
        warmup_epochs: warm-up length in epochs (may be fractional; rounded to steps), or
            ``None`` for automatic: ``min(5, 0.1 * epochs)`` of the run it is built for.
        warmup: ``"constant"`` or ``"linear"`` warm-up.
        warmup_lr: warm-up rate (constant) or start rate (linear); ``None``: ``base_lr / 10``
            for constant, 0 for linear.
        final_lr: last rate of the cosine schedule.
        label_smoothing: label smoothing in [0, 1) for the default loss of ``compile_model``.

    Example:
        >>> r = he_cifar_recipe()
        >>> r.to_dict()["milestones"]
        [0.5, 0.75]
        >>> opt = r.optimizer(steps_per_epoch=391, epochs=164)  # doctest: +SKIP
    """

    name: str = "custom"
    optimizer_name: str = "sgd"
    base_lr: float = 0.1
    schedule: str = "step"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    weight_decay_mode: str = "decoupled"
    weight_decay_exclude: tuple = ()
    milestones: tuple = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: float | None = 0.0
    warmup: str = "constant"
    warmup_lr: float | None = None
    final_lr: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got name={self.name!r}")
        one_of("optimizer_name", self.optimizer_name, OPTIMIZERS)
        one_of("schedule", self.schedule, SCHEDULES)
        one_of("weight_decay_mode", self.weight_decay_mode, WEIGHT_DECAY_MODES)
        one_of("warmup", self.warmup, WARMUP_MODES)
        boolean("nesterov", self.nesterov)
        set_ = object.__setattr__  # frozen dataclass: normalize types once, here
        set_(self, "base_lr", number_in("base_lr", self.base_lr, low=0.0, low_open=True))
        set_(self, "momentum", number_in("momentum", self.momentum, 0.0, 1.0, high_open=True))
        set_(self, "weight_decay", number_in("weight_decay", self.weight_decay, low=0.0))
        set_(self, "gamma", number_in("gamma", self.gamma, 0.0, 1.0, low_open=True))
        if self.warmup_epochs is not None:
            set_(self, "warmup_epochs", number_in("warmup_epochs", self.warmup_epochs, low=0.0))
        set_(self, "final_lr", number_in("final_lr", self.final_lr, 0.0, self.base_lr))
        set_(
            self,
            "label_smoothing",
            number_in("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True),
        )
        if self.warmup_lr is not None:
            set_(self, "warmup_lr", number_in("warmup_lr", self.warmup_lr, low=0.0))
        if isinstance(self.milestones, (str, bytes)):
            raise ValueError(
                f"milestones must be a sequence of fractions, got milestones={self.milestones!r}"
            )
        milestones = tuple(
            number_in("milestones", m, 0.0, 1.0, low_open=True, high_open=True)
            for m in self.milestones
        )
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError(
                f"milestones must be strictly increasing, got milestones={self.milestones!r}"
            )
        set_(self, "milestones", milestones)
        if isinstance(self.weight_decay_exclude, str) or not all(
            isinstance(p, str) for p in self.weight_decay_exclude
        ):
            raise ValueError(
                "weight_decay_exclude must be a sequence of strings, "
                f"got weight_decay_exclude={self.weight_decay_exclude!r}"
            )
        set_(self, "weight_decay_exclude", tuple(self.weight_decay_exclude))
        if self.weight_decay_mode == "l2" and self.optimizer_name != "sgd":
            raise ValueError(
                "weight_decay_mode='l2' (coupled) is only implemented for optimizer_name='sgd', "
                f"got optimizer_name={self.optimizer_name!r}; use weight_decay_mode='decoupled'"
            )

    def to_dict(self):
        """The recipe as a JSON-serializable dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["milestones"] = list(self.milestones)
        out["weight_decay_exclude"] = list(self.weight_decay_exclude)
        return out

    @classmethod
    def from_dict(cls, data):
        """Rebuild a recipe from ``to_dict()`` output; unknown keys raise ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"data has unknown recipe fields {unknown}; allowed: {sorted(fields)}")
        data = dict(data)
        for key in ("milestones", "weight_decay_exclude"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def warmup_steps(self, steps_per_epoch, epochs):
        """Warm-up length in optimizer steps: ``round(warmup_epochs * steps_per_epoch)``.

        With ``warmup_epochs=None``: ``round(min(5, 0.1 * epochs) * steps_per_epoch)``.
        """
        steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
        epochs = positive_int("epochs", epochs)
        warmup_epochs = self.warmup_epochs
        if warmup_epochs is None:
            warmup_epochs = min(5.0, 0.1 * epochs)
        return round(warmup_epochs * steps_per_epoch)

    def learning_rate(self, steps_per_epoch, epochs):
        """The ``LearningRateSchedule`` of this recipe for a run of ``epochs`` epochs.

        Args:
            steps_per_epoch: optimizer steps per epoch (positive int).
            epochs: number of epochs of the whole run (positive int).

        Example:
            >>> sched = he_cifar_recipe().learning_rate(100, 10)
            >>> round(float(sched(500)), 6)
            0.01
        """
        steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
        epochs = positive_int("epochs", epochs)
        total = steps_per_epoch * epochs
        warmup_steps = self.warmup_steps(steps_per_epoch, epochs)
        if warmup_steps >= total:
            raise ValueError(
                f"warmup_epochs must be shorter than the run ({epochs} epochs), "
                f"got warmup_epochs={self.warmup_epochs}"
            )
        common = {
            "base_lr": self.base_lr,
            "total_steps": total,
            "warmup_steps": warmup_steps,
            "warmup": self.warmup,
            "warmup_lr": self.warmup_lr,
        }
        if self.schedule == "cosine":
            return WarmupCosineDecay(final_lr=self.final_lr, **common)
        milestones = self.milestones if self.schedule == "step" else ()
        return StepDecay(milestones=milestones, gamma=self.gamma, **common)

    def optimizer(self, steps_per_epoch, epochs):
        """A fresh Keras optimizer with this recipe's schedule and weight decay.

        Args:
            steps_per_epoch: optimizer steps per epoch (positive int).
            epochs: number of epochs of the whole run (positive int).

        Example:
            >>> opt = he_cifar_recipe().optimizer(steps_per_epoch=391, epochs=164)
            >>> type(opt).__name__, opt.momentum, opt.weight_decay
            ('SGD', 0.9, 0.0001)
        """
        lr = self.learning_rate(steps_per_epoch, epochs)
        wd = self.weight_decay
        if self.optimizer_name == "sgd" and self.weight_decay_mode == "l2":
            opt = CoupledWeightDecaySGD(
                learning_rate=lr, momentum=self.momentum, nesterov=self.nesterov, l2=wd
            )
        elif self.optimizer_name == "sgd":
            opt = keras.optimizers.SGD(
                learning_rate=lr,
                momentum=self.momentum,
                nesterov=self.nesterov,
                weight_decay=wd if wd > 0 else None,
            )
        else:
            opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd)
        if self.weight_decay_exclude:
            opt.exclude_from_weight_decay(var_names=list(self.weight_decay_exclude))
        return opt


def he_cifar_recipe(
    base_lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    milestones=(0.5, 0.75),
    gamma=0.1,
    warmup_epochs=0,
    warmup_lr=None,
    weight_decay_mode="decoupled",
):
    """The CIFAR-10 recipe of He et al. 2015, "Deep Residual Learning" (arXiv 1512.03385).

    SGD with momentum 0.9 (not Nesterov), lr 0.1 divided by 10 at 50% and 75% of the total
    steps (32k and 48k of 64k iterations in the paper), weight decay 1e-4, batch 128. For
    ResNet-110 the paper warms up at lr 0.01 for about 400 iterations (~1 epoch at batch 128):
    ``he_cifar_recipe(warmup_epochs=1)`` (constant warm-up; ``warmup_lr`` defaults to
    ``base_lr / 10``).

    The paper's weight decay is coupled (Caffe/Torch: ``g += wd * w`` before momentum, i.e. L2
    of coefficient ``wd / 2`` on the loss). The default ``weight_decay_mode="decoupled"`` uses
    Keras's ``weight_decay`` (``w -= lr * wd * w`` each step, outside momentum), which equals
    that L2 only for momentum 0; with momentum 0.9 it is ~10x weaker at steady state. Pass
    ``weight_decay_mode="l2"`` for the paper's exact update.

    Args:
        base_lr: initial learning rate.
        momentum: SGD momentum.
        weight_decay: weight-decay coefficient (see above).
        milestones: fractions of the total steps where the rate is multiplied by ``gamma``.
        gamma: decay factor.
        warmup_epochs: constant warm-up length in epochs (0: none).
        warmup_lr: warm-up rate (``None``: ``base_lr / 10``, the paper's 0.01).
        weight_decay_mode: ``"decoupled"`` (Keras) or ``"l2"`` (coupled, as in the paper).

    Example:
        >>> r = he_cifar_recipe(warmup_epochs=1)
        >>> sched = r.learning_rate(steps_per_epoch=391, epochs=164)
        >>> round(float(sched(0)), 6), round(float(sched(391)), 6)
        (0.01, 0.1)
    """
    return Recipe(
        name="he_cifar",
        optimizer_name="sgd",
        base_lr=base_lr,
        schedule="step",
        momentum=momentum,
        nesterov=False,
        weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode,
        milestones=tuple(milestones),
        gamma=gamma,
        warmup_epochs=warmup_epochs,
        warmup="constant",
        warmup_lr=warmup_lr,
    )


def general_recipe(
    optimizer="adamw",
    base_lr=1e-3,
    weight_decay=None,
    warmup_epochs=None,
    schedule="cosine",
    label_smoothing=0.0,
    momentum=0.9,
    nesterov=None,
    final_lr=0.0,
    milestones=(0.5, 0.75),
    gamma=0.1,
    weight_decay_exclude=(),
):
    """A general-purpose recipe: AdamW or SGD, linear warm-up, cosine (or step/constant) decay.

    Defaults: AdamW (Loshchilov & Hutter, arXiv 1711.05101) with decoupled weight decay 0.05,
    or SGD with Nesterov momentum 0.9 and weight decay 5e-4; linear warm-up from 0 over 5 epochs
    (or 10% of the run if shorter); cosine decay to ``final_lr`` (SGDR, arXiv 1608.03983).

    Args:
        optimizer: ``"adamw"`` or ``"sgd"``.
        base_lr: peak learning rate.
        weight_decay: decoupled decay (``None``: 0.05 for adamw, 5e-4 for sgd).
        warmup_epochs: linear warm-up length in epochs; ``None``: automatic, 5 epochs or 10%
            of the run if that is shorter. A number must be shorter than the run.
        schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
        label_smoothing: label smoothing in [0, 1) (arXiv 1512.00567).
        momentum: SGD momentum.
        nesterov: SGD Nesterov flag (``None``: True).
        final_lr: last rate of the cosine schedule.
        milestones: step-schedule milestones (fractions of the total steps).
        gamma: step-schedule decay factor.
        weight_decay_exclude: variable-name regexes exempt from decay, e.g.
            ``("bias", "gamma", "beta")``.

    Example:
        >>> r = general_recipe("adamw", base_lr=1e-3, warmup_epochs=1)
        >>> sched = r.learning_rate(steps_per_epoch=10, epochs=11)
        >>> round(float(sched(5)), 7), round(float(sched(10)), 7)
        (0.0005, 0.001)
    """
    one_of("optimizer", optimizer, OPTIMIZERS)
    is_sgd = optimizer == "sgd"
    if weight_decay is None:
        weight_decay = 5e-4 if is_sgd else 0.05
    if nesterov is None:
        nesterov = True
    return Recipe(
        name=f"general_{optimizer}_{schedule}",
        optimizer_name=optimizer,
        base_lr=base_lr,
        schedule=schedule,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        weight_decay_mode="decoupled",
        weight_decay_exclude=tuple(weight_decay_exclude),
        milestones=tuple(milestones),
        gamma=gamma,
        warmup_epochs=warmup_epochs,
        warmup="linear",
        warmup_lr=None,
        final_lr=final_lr,
        label_smoothing=label_smoothing,
    )


def _output_layer(model):
    """The layer that produces ``model``'s (single) output."""
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) == 1:
        operation = _keras_compat.producing_operation(outputs[0])
        if operation is not None:
            return operation
    if not model.layers:
        raise ValueError(f"model must have at least one layer, got model={model.name!r}")
    return model.layers[-1]


def output_applies_softmax(model):
    """Whether ``model``'s output layer ends in a softmax (probabilities, not logits).

    True for a ``keras.layers.Softmax`` layer or a layer whose ``activation`` is
    ``keras.activations.softmax`` (``Dense(..., activation="softmax")``,
    ``Activation("softmax")``) or a function named ``softmax``. Anything else (linear,
    log-softmax) counts as logits: note that log-softmax outputs are valid logits for
    cross-entropy (softmax is shift-invariant). Training's losses and the analyses' take
    ``from_logits`` from it.

    Args:
        model: a built ``keras.Model`` with one output.

    Example:
        >>> inp = keras.Input((4,))
        >>> output_applies_softmax(keras.Model(inp, keras.layers.Dense(3)(inp)))
        False
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got model={type(model).__name__}")
    layer = _output_layer(model)
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(
        activation, "__name__", "") == "softmax"


def compile_model(
    model,
    recipe,
    steps_per_epoch,
    epochs,
    loss=None,
    metrics=("accuracy",),
    jit_compile="auto",
):
    """Compile ``model`` for integer-label classification with ``recipe``'s optimizer.

    The default loss is sparse categorical cross-entropy with ``from_logits`` set from the
    model: probabilities if the output layer applies softmax (``output_applies_softmax``),
    logits otherwise. ``recipe.label_smoothing > 0`` uses
    ``SparseCategoricalCrossentropyWithSmoothing`` (integer labels, one-hot inside the loss).
    Call it inside ``strategy.scope()`` when training distributed (``fit`` does).

    Args:
        model: a built ``keras.Model`` (one output of per-class scores).
        recipe: a ``Recipe``.
        steps_per_epoch: optimizer steps per epoch.
        epochs: epochs of the whole run (the schedule spans ``steps_per_epoch * epochs``).
        loss: a Keras loss to use instead of the default; then ``recipe.label_smoothing``
            must be 0 (it only configures the default loss).
        metrics: Keras metrics; ``"accuracy"`` resolves to sparse categorical accuracy.
        jit_compile: passed to ``model.compile`` (``"auto"``: XLA on GPU without a strategy).

    Returns:
        ``model``, compiled.

    Example:
        >>> compile_model(model, he_cifar_recipe(), steps_per_epoch=391, epochs=164)
        ... # doctest: +SKIP
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got recipe={type(recipe).__name__}")
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got model={type(model).__name__}")
    if jit_compile not in ("auto", True, False):
        raise ValueError(
            f"jit_compile must be 'auto', True or False, got jit_compile={jit_compile!r}"
        )
    if loss is not None and recipe.label_smoothing > 0:
        raise ValueError(
            "loss was given and recipe.label_smoothing="
            f"{recipe.label_smoothing} > 0; label_smoothing only configures the default loss: "
            "pass loss=None, or a recipe with label_smoothing=0"
        )
    return compile_classifier(model, recipe.optimizer(steps_per_epoch, epochs), loss=loss,
                              metrics=metrics, jit_compile=jit_compile,
                              label_smoothing=recipe.label_smoothing)


def compile_classifier(model, optimizer, loss=None, metrics=("accuracy",), jit_compile="auto",
                       label_smoothing=0.0):
    """Compile ``model`` for integer-label classification with ``optimizer``: what
    :func:`compile_model` does with a recipe's optimizer, and the comparisons' ``train_arm``
    with theirs.

    The default loss is sparse categorical cross-entropy (smoothed by ``label_smoothing``),
    ``from_logits`` set from the model (:func:`output_applies_softmax`).

    Returns:
        ``model``, compiled.
    """
    if loss is None:
        loss = classification_loss(
            from_logits=not output_applies_softmax(model),
            label_smoothing=label_smoothing,
        )
    if isinstance(metrics, str):
        metrics = (metrics,)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics) if metrics else None,
        jit_compile=jit_compile,
    )
    return model
