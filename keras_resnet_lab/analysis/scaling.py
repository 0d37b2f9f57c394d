"""Residual scaling (Szegedy et al., arXiv 1602.07261): scaling the residual branches down
keeps a deep stack without batch norm stable.

A deep pre-activation residual stack with no normalization anywhere (stem, branches and head)
is built once per branch scale ``s`` (``h_{i+1} = h_i + s * F_i(h_i)``) and trained with the
same high learning rate. With He-initialized unnormalized branches every block adds a branch
about as large as its input, so ``||h_L|| / ||h_0||`` grows like ``(1 + c s^2)^(L/2)`` with
``c`` about 1-2: for ``L = 30`` blocks about 1e4 for ``s = 1``, 10 for ``s = 0.3`` and 1.5
for ``s = 0.1``. The logits inherit that growth, the first loss and gradients are huge and one
SGD step at a shared high learning rate sends the ``s = 1`` loss to NaN, while ``s = 0.1``
trains. :func:`compare_residual_scales` measures the growth at initialization, whether training
diverged and the test accuracy for one seed (:class:`ScalingComparison`; its
``statistics()`` are judged over seeds by
:func:`keras_resnet_lab.analysis.comparisons.run_comparison`).
"""

import dataclasses
import math

import numpy as np

from keras_resnet_lab._checks import int_at_least, number_in, one_of, positive_int
from keras_resnet_lab.analysis._common import progress
from keras_resnet_lab.analysis._training import (
    accuracy,
    check_training_data,
    growth_and_stability,
)
from keras_resnet_lab.analysis.results import Result, fmt_number, fmt_percent

FORMS = ("dense", "conv")


def _input_shape(input_shape, form):
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
            for d in input_shape):
        raise ValueError("`input_shape` must be a non-empty tuple of positive integers (the "
                         f"shape of one example), got {input_shape!r}.")
    if form == "conv" and len(input_shape) != 3:
        raise ValueError("`input_shape` must be (height, width, channels) for form='conv', got "
                         f"{tuple(input_shape)}.")
    return tuple(int(d) for d in input_shape)


def scaled_stack(scale, *, form="dense", blocks=30, width=32, widths=(16,), input_shape,
                 num_classes=10):
    """A deep residual stack without any normalization whose branches are scaled by ``scale``.

    Pre-activation residual blocks with ``normalization="none"`` and ``residual_scale=scale``;
    the stem has no batch norm either (Szegedy et al., arXiv 1602.07261).

    Args:
        scale: the residual branch scale ``s`` in (0, 1].
        form: ``"dense"`` (flatten -> dense stem -> ``blocks`` dense blocks of ``width``
            units) or ``"conv"`` (3x3 conv stem -> ``blocks`` basic blocks spread over one
            stage per entry of ``widths``, the first stage unstrided, the others stride 2,
            option-A shortcuts).
        blocks: residual blocks in all.
        width: units of the dense blocks (``form="dense"``).
        widths: channels of each conv stage (``form="conv"``); one stage measures growth alone,
            a strided stage would also shrink the norm.
        input_shape: shape of one example (``(height, width, channels)`` for conv).
        num_classes: classes of the (unnormalized) classifier.

    Returns:
        A functional chain model named ``scale_{s:g}`` with logit outputs.

    Example:
        >>> model = scaled_stack(0.1, blocks=6, width=8, input_shape=(8, 8, 3))
        >>> model.name
        'scale_0.1'
    """
    from keras_resnet_lab.layers.residual import ResidualBlock
    from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
    from keras_resnet_lab.models.mlp import residual_mlp

    scale = number_in("scale", scale, 0.0, 1.0, low_open=True)
    form = one_of("form", form, FORMS)
    blocks = positive_int("blocks", blocks)
    num_classes = int_at_least("num_classes", num_classes, 2)
    input_shape = _input_shape(input_shape, form)
    name = f"scale_{scale:g}"
    block_kwargs = dict(preact=True, normalization="none", residual_scale=scale)
    if form == "dense":
        return residual_mlp(blocks, positive_int("width", width), input_shape=input_shape,
                            name=name, num_classes=num_classes, **block_kwargs)
    if isinstance(widths, (int, np.integer)) or not hasattr(widths, "__iter__"):
        widths = (widths,)
    widths = tuple(positive_int("widths", w) for w in widths)
    if not widths or blocks < len(widths):
        raise ValueError(f"`widths` must list between 1 and `blocks`={blocks} stage widths, got "
                         f"{widths}.")
    per_stage = [blocks // len(widths)] * len(widths)
    per_stage[-1] += blocks - sum(per_stage)
    stages = [Stage(w, n, 1 if i == 0 else 2) for i, (w, n) in enumerate(zip(widths, per_stage))]
    # Pre-activation blocks, no post-norm and a stem without batch norm: no normalization at all.
    return build_network(conv_stem(widths[0], 3, 1, norm=False), stages, ResidualBlock,
                         dict(block_kwargs, shortcut="A"), input_shape=input_shape, name=name,
                         num_classes=num_classes)


@dataclasses.dataclass
class ScalingComparison(Result):
    """Deep unnormalized residual stacks with different branch scales, trained alike (one
    seed).

    ``scales`` are the branch scales in decreasing order; ``runs["<s:g>"]`` holds one stack's
    numbers: ``init_ratio`` (``||h_L|| / ||h_0||`` at initialization, mean over the probe
    examples), ``init_ratio_per_block``, ``diverged``, ``first_nonfinite_step``,
    ``peak_loss_over_chance``, ``first_loss``, ``final_loss``, ``steps_run`` and
    ``test_accuracy``. ``growth[i]`` (:class:`~keras_resnet_lab.analysis.norms.NormGrowthResult`)
    and ``stability[i]`` (:class:`~keras_resnet_lab.analysis.norms.TrainingStability`, per-step
    losses against ``chance_loss``) belong to ``scales[i]``.
    """

    scales: list
    form: str
    blocks: int
    epochs: int
    learning_rate: float
    momentum: float
    batch_size: object
    steps_per_epoch: object
    seed: int
    chance_loss: float
    blowup_factor: float
    runs: dict
    growth: list
    stability: list

    figure_columns = 2

    def run(self, scale):
        """The numbers of the stack with branch scale ``scale``."""
        key = f"{scale:g}" if isinstance(scale, (int, float, np.floating)) else str(scale)
        if key not in self.runs:
            raise ValueError(f"`scale` must be one of {list(self.runs)}, got {scale!r}.")
        return self.runs[key]

    def statistics(self):
        """Szegedy et al.'s finding in the registry's units: ``{"szegedy_scaling":
        {"growth_ratio": log10(init ratio of the largest scale / the smallest's),
        "scaled_accuracy": 100 x test accuracy of the smallest scale}}`` (s = 1 and s = 0.1
        with the default scales)."""
        big, small = self.run(self.scales[0]), self.run(self.scales[-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = float(np.log10(np.float64(big["init_ratio"])
                                    / np.float64(small["init_ratio"])))
        return {"szegedy_scaling": {"growth_ratio": growth,
                                    "scaled_accuracy": 100 * small["test_accuracy"]}}

    def descriptive(self):
        """Numbers reported next to the finding, not judged: whether each stack diverged."""
        return {"szegedy_scaling": {f"s = {s:g} diverged (1 = yes)": float(self.run(s)["diverged"])
                                    for s in self.scales}}

    def notes(self):
        big, small = self.scales[0], self.scales[-1]
        return {"szegedy_scaling": (
            f"Growth ratio: s = {big:g} over s = {small:g}, each the mean over the probe "
            f"examples of ||h_L|| / ||h_0|| at initialization; accuracy of s = {small:g} after "
            f"{self.epochs} epoch(s) at learning rate {self.learning_rate:g}.")}

    def describe(self):
        labels = "/".join(f"{s:g}" for s in self.scales)
        runs = [self.run(s) for s in self.scales]
        ratios = "/".join(fmt_number(r["init_ratio"]) for r in runs)
        fates = []
        for s, r in zip(self.scales, runs):
            if r["first_nonfinite_step"] is not None:
                fates.append(f"s = {s:g} diverged (non-finite loss at step "
                             f"{r['first_nonfinite_step']})")
            elif r["diverged"]:
                peak = fmt_number(r["peak_loss_over_chance"])
                fates.append(f"s = {s:g} diverged (loss up to {peak} times chance)")
            else:
                fates.append(f"s = {s:g} stayed bounded (final loss {fmt_number(r['final_loss'])})")
        accuracies = "/".join(fmt_percent(r["test_accuracy"]) for r in runs)
        return (f"Residual stacks of {self.blocks} {self.form} blocks without batch norm, with "
                f"branch scale s = {labels}, grew the activations by ||h_L|| / ||h_0|| = "
                f"{ratios} at initialization. Trained for {self.epochs} epoch(s) at learning "
                f"rate {self.learning_rate:g}, {'; '.join(fates)}; their test accuracy was "
                f"{accuracies}.")

    def draw(self, axes):
        ax_norm, ax_loss = axes[:2]
        for i, scale in enumerate(self.scales):
            self.growth[i].draw_on(ax_norm, label=f"s = {scale:g}", color=f"C{i}")
            self.stability[i].draw_on(ax_loss, label=f"s = {scale:g}", color=f"C{i}")
        ax_norm.set_title(f"Activation growth at init ({self.blocks} blocks, no BN)")
        ax_loss.axhline(self.chance_loss * self.blowup_factor, color="gray", ls="--",
                        label="blow-up bound")
        ax_loss.set_title(f"Training at lr {self.learning_rate:g} (x: NaN)")
        ax_norm.legend(fontsize=8)
        ax_loss.legend(fontsize=8)


def _scales(scales):
    if isinstance(scales, (int, float, np.number)) or not hasattr(scales, "__iter__"):
        scales = (scales,)
    values = [number_in("scales", s, 0.0, 1.0, low_open=True) for s in scales]
    if len(values) != 3 or len({f"{s:g}" for s in values}) != 3:
        raise ValueError("`scales` must be three different branch scales in (0, 1] (a large, a "
                         f"middle and a small one, e.g. (1.0, 0.3, 0.1)), got {tuple(scales)}.")
    return sorted(values, reverse=True)


def compare_residual_scales(train, test, *, scales=(1.0, 0.3, 0.1), form="dense", blocks=30,
                            width=32, widths=(16,), epochs=4, learning_rate=0.02, momentum=0.9,
                            batch_size=64, probe_examples=256, blowup_factor=10.0, seed=0,
                            progress_bar=True, verbose=0):
    """Train a deep unnormalized residual stack once per branch scale and compare growth and
    stability (Szegedy et al., arXiv 1602.07261: scaling the branches by 0.1-0.3 stabilizes
    training).

    For each scale (largest first) the random seed is set to ``seed``, the stack is built by
    :func:`scaled_stack`, ``||h_i|| / ||h_0||`` is measured on the first ``probe_examples``
    test inputs at initialization (:func:`~keras_resnet_lab.analysis.norms.norm_growth`), and
    the stack is trained with SGD (``learning_rate``, ``momentum``) while every step's loss is
    recorded; a NaN/inf loss stops training. A run *diverged* when its loss went non-finite or
    above ``blowup_factor`` times the chance-level loss ``ln(num_classes)``. The number of
    classes is the largest label + 1.

    Args:
        train: ``(x, y)`` arrays, or a batched ``tf.data.Dataset`` of ``(x, y)`` (then
            ``batch_size`` is unused).
        test: ``(x, y)`` arrays: the probe inputs and the test accuracy.
        scales: three different branch scales in (0, 1].
        form, blocks, width, widths: the stack, as in :func:`scaled_stack`.
        epochs: training epochs.
        learning_rate: the (constant) SGD learning rate, > 0.
        momentum: SGD momentum in [0, 1).
        batch_size: examples per step with array data.
        probe_examples: test inputs the growth is measured on.
        blowup_factor: a loss above this many times the chance loss is a blow-up (> 1).
        seed: random seed set before building each stack (weights and data order).
        progress_bar: show a progress bar over the stacks.
        verbose: Keras ``fit`` verbosity.

    Returns:
        :class:`ScalingComparison`.

    Example:
        >>> from keras_resnet_lab.analysis._training import training_digits
        >>> train, test = training_digits(8, 3, batch_size=64)
        >>> result = compare_residual_scales(train, test)
        >>> result.run(1.0)["diverged"], result.run(0.1)["test_accuracy"] > 0.8
        (True, True)
    """
    import keras

    scales = _scales(scales)
    form = one_of("form", form, FORMS)
    blocks = positive_int("blocks", blocks)
    epochs = positive_int("epochs", epochs)
    learning_rate = number_in("learning_rate", learning_rate, 0.0, None, low_open=True)
    momentum = number_in("momentum", momentum, 0.0, 1.0, high_open=True)
    batch_size = positive_int("batch_size", batch_size)
    probe_examples = positive_int("probe_examples", probe_examples)
    blowup_factor = number_in("blowup_factor", blowup_factor, 1.0, None, low_open=True)
    seed = int_at_least("seed", seed, 0)
    verbose = int_at_least("verbose", verbose, 0)
    train, test, steps, num_classes = check_training_data(train, test, batch_size)
    probe = test[0][:probe_examples]
    chance_loss = math.log(num_classes)
    runs, growths, stabilities = {}, [], []
    for scale in progress(scales, desc="residual scales", enabled=progress_bar):
        keras.utils.set_random_seed(seed)
        model = scaled_stack(scale, form=form, blocks=blocks, width=width, widths=widths,
                             input_shape=probe.shape[1:], num_classes=num_classes)
        growth, stability = growth_and_stability(
            model, train, probe, epochs, keras.optimizers.SGD(learning_rate, momentum=momentum),
            batch_size, chance_loss=chance_loss, blowup_factor=blowup_factor, verbose=verbose)
        runs[f"{scale:g}"] = dict(
            init_ratio=growth.final_ratio, init_ratio_per_block=growth.ratio,
            diverged=stability.diverged, first_nonfinite_step=stability.first_nonfinite,
            peak_loss_over_chance=stability.peak_ratio, first_loss=stability.losses[0],
            final_loss=stability.final_loss, steps_run=len(stability.losses),
            test_accuracy=accuracy(model, test, batch_size=500))
        growths.append(growth)
        stabilities.append(stability)
    return ScalingComparison(
        scales=scales, form=form, blocks=blocks, epochs=epochs, learning_rate=learning_rate,
        momentum=momentum, batch_size=batch_size if isinstance(train, tuple) else None,
        steps_per_epoch=steps, seed=seed, chance_loss=chance_loss, blowup_factor=blowup_factor,
        runs=runs, growth=growths, stability=stabilities)
