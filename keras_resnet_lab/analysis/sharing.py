"""Weight-shared residual stacks (Liao & Poggio, arXiv 1604.03640; Jastrzebski et al., arXiv
1710.04773): a residual block applied n times needs batch norm that is not shared across its
steps.

One pre-activation residual block applied ``steps`` times
(:class:`~keras_resnet_lab.layers.shared.SharedResidualStack`) in a small CIFAR-style network
(3x3 stem -> stack -> post batch norm -> pooling -> classifier), built three ways
(:data:`VARIANTS`):

* ``naive``: one batch-norm pair for every step (shared statistics and gamma/beta), gamma 1;
* ``unshared_bn``: a batch-norm pair per step (own statistics and gamma/beta), gamma 0.1, the
  fix of Jastrzebski et al.;
* ``unshared_weights``: the reference, ``steps`` ordinary blocks with their own weights.

A naive stack grows ``||h_L|| / ||h_0||`` more at initialization and tests worse. The accuracy
gap comes mostly from the statistics: a shared batch norm's moving mean/variance average over
steps whose activations differ in scale, so at inference every step is normalized with the
wrong statistics; the accuracy with each test batch's own statistics shows that the network
itself did learn. :func:`compare_weight_sharing` measures both for one seed
(:class:`SharingComparison`; its ``statistics()`` are judged over seeds by
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

VARIANTS = ("naive", "unshared_bn", "unshared_weights")


def sharing_network(variant, *, steps=6, width=16, naive_gamma=1.0, unshared_gamma=0.1,
                    input_shape, num_classes=10):
    """The network of one weight-sharing variant: ``3x3 stem -> stack -> post BN -> pooling ->
    classifier`` (Liao & Poggio, arXiv 1604.03640; Jastrzebski et al., arXiv 1710.04773).

    Args:
        variant: ``"naive"`` (one block shared by ``steps`` steps with one shared batch-norm
            pair, gamma ``naive_gamma``), ``"unshared_bn"`` (one shared block with a
            batch-norm pair per step, gamma ``unshared_gamma``) or ``"unshared_weights"``
            (``steps`` ordinary pre-activation blocks).
        steps: steps of the stack (blocks of the reference).
        width: channels of the stem and the blocks.
        naive_gamma: initial batch-norm gamma of the naive stack (> 0).
        unshared_gamma: initial batch-norm gamma of the per-step batch norms (> 0).
        input_shape: ``(height, width, channels)`` of one image.
        num_classes: classes of the classifier.

    Returns:
        A functional chain model named ``variant`` with logit outputs.

    Example:
        >>> model = sharing_network("unshared_bn", steps=3, width=8, input_shape=(8, 8, 3))
        >>> [layer.name for layer in model.layers if "block" in layer.name]
        ['stage1_block1']
    """
    from keras_resnet_lab.layers.residual import ResidualBlock
    from keras_resnet_lab.layers.shared import SharedResidualStack
    from keras_resnet_lab.models.builder import Stage, build_network, conv_stem

    variant = one_of("variant", variant, VARIANTS)
    steps = positive_int("steps", steps)
    width = positive_int("width", width)
    naive_gamma = number_in("naive_gamma", naive_gamma, 0.0, None, low_open=True)
    unshared_gamma = number_in("unshared_gamma", unshared_gamma, 0.0, None, low_open=True)
    num_classes = int_at_least("num_classes", num_classes, 2)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3 or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
            for d in input_shape):
        raise ValueError("`input_shape` must be (height, width, channels), three positive "
                         f"integers, got {input_shape!r}.")
    if variant == "unshared_weights":
        stage, block, kwargs = Stage(width, steps), ResidualBlock, dict(preact=True)
    else:
        naive = variant == "naive"
        stage, block = Stage(width, 1), SharedResidualStack
        kwargs = dict(steps=steps, norm_per_step=not naive,
                      gamma_init=naive_gamma if naive else unshared_gamma)
    return build_network(conv_stem(width, 3, 1, norm=False), [stage], block, kwargs,
                         input_shape=tuple(int(d) for d in input_shape), name=variant,
                         post_norm=True, num_classes=num_classes)


@dataclasses.dataclass
class SharingComparison(Result):
    """The three weight-sharing variants (:data:`VARIANTS`), trained alike with one seed.

    ``runs[variant]`` holds one network's numbers: ``init_ratio`` (``||h_L|| / ||h_0||``
    through the steps at initialization, with batch statistics), ``init_ratio_per_step``,
    ``trainable_params``, ``diverged``, ``final_train_loss``, ``test_accuracy`` (the moving
    statistics, i.e. inference) and ``test_accuracy_batch_stats`` (each test batch of 250
    normalized with its own statistics). ``growth[i]`` and ``stability[i]`` belong to
    ``variants[i]``.
    """

    variants: list
    steps: int
    width: int
    naive_gamma: float
    unshared_gamma: float
    epochs: int
    learning_rate: float
    momentum: float
    batch_size: object
    steps_per_epoch: int
    seed: int
    chance_loss: float
    blowup_factor: float
    runs: dict
    growth: list
    stability: list

    figure_columns = 3

    def statistics(self):
        """Jastrzebski et al.'s finding in the registry's units: ``{"jastrzebski_sharing":
        {"init_growth_ratio": naive init ratio / per-step batch norm's, "accuracy_gap": 100 x
        (test accuracy of per-step batch norm - naive)}}``, both accuracies with the stored
        (moving) batch-norm statistics, i.e. in inference mode."""
        naive, fixed = self.runs["naive"], self.runs["unshared_bn"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.float64(naive["init_ratio"]) / np.float64(fixed["init_ratio"]))
        return {"jastrzebski_sharing": {
            "init_growth_ratio": ratio,
            "accuracy_gap": 100 * (fixed["test_accuracy"] - naive["test_accuracy"])}}

    def batch_statistics_gap(self):
        """Descriptive: the same accuracy gap (points) when each test batch is normalized
        with its own statistics (what the network learned, apart from its stored
        statistics)."""
        naive, fixed = self.runs["naive"], self.runs["unshared_bn"]
        return 100 * (fixed["test_accuracy_batch_stats"] - naive["test_accuracy_batch_stats"])

    def descriptive(self):
        """Numbers reported next to the finding, not judged: the accuracy gap with each test
        batch's own statistics, and whether the per-step batch-norm stack diverged."""
        return {"jastrzebski_sharing": {
            "accuracy gap with each test batch's own statistics (points)":
                self.batch_statistics_gap(),
            "per-step batch norm diverged (1 = yes)": float(self.runs["unshared_bn"]["diverged"]),
        }}

    def notes(self):
        return {"jastrzebski_sharing": (
            "The growth at initialization is measured with batch statistics (the probe of "
            "test inputs as one batch, what the first training steps see); both test "
            "accuracies of the accuracy gap use the stored moving batch-norm statistics "
            "(inference mode). The accuracies with each test batch's own statistics are "
            "reported in the per-seed results (test_accuracy_batch_stats), not judged.")}

    def describe(self):
        runs = [self.runs[v] for v in self.variants]
        ratios = "/".join(fmt_number(r["init_ratio"]) for r in runs)
        moving = "/".join(fmt_percent(r["test_accuracy"]) for r in runs)
        batch = "/".join(fmt_percent(r["test_accuracy_batch_stats"]) for r in runs)
        params = "/".join(f"{r['trainable_params']:,}" for r in runs)
        diverged = [v.replace("_", " ") for v in self.variants if self.runs[v]["diverged"]]
        fate = (f"{' and '.join(diverged)} diverged" if diverged
                else "none of them diverged")
        return (f"One residual block of width {self.width} applied {self.steps} times with a "
                f"naively shared batch norm (gamma {self.naive_gamma:g}), with a batch norm per "
                f"step (gamma {self.unshared_gamma:g}), and {self.steps} unshared blocks "
                f"({params} trainable parameters) grew ||h_L|| / ||h_0|| to {ratios} at "
                f"initialization. After {self.epochs} epoch(s) at learning rate "
                f"{self.learning_rate:g} ({fate}) their test accuracy was {moving} with the "
                f"moving statistics and {batch} with each test batch's own statistics.")

    def draw(self, axes):
        ax_norm, ax_loss, ax_acc = axes[:3]
        for i, variant in enumerate(self.variants):
            label = variant.replace("_", " ")
            self.growth[i].draw_on(ax_norm, label=label, color=f"C{i}", marker="o")
            self.stability[i].draw_on(ax_loss, label=label, color=f"C{i}", alpha=0.8)
        ax_norm.set_title(f"Growth through {self.steps} steps at init (batch statistics)")
        ax_loss.set_title("Training loss")
        x = range(len(self.variants))
        ax_acc.bar([v - 0.2 for v in x], [self.runs[v]["test_accuracy"] for v in self.variants],
                   0.4, label="moving statistics (inference)")
        ax_acc.bar([v + 0.2 for v in x],
                   [self.runs[v]["test_accuracy_batch_stats"] for v in self.variants], 0.4,
                   label="each test batch's statistics")
        ax_acc.set_xticks(list(x), [v.replace("_", "\n") for v in self.variants])
        ax_acc.set(ylabel="test accuracy", ylim=(0, 1), title="After training")
        for ax in (ax_norm, ax_loss, ax_acc):
            ax.legend(fontsize=8)


def compare_weight_sharing(train, test, *, steps=6, width=16, epochs=5, learning_rate=0.1,
                           momentum=0.9, batch_size=64, probe_examples=256, naive_gamma=1.0,
                           unshared_gamma=0.1, blowup_factor=10.0, seed=0,
                           steps_per_epoch=None, progress_bar=True, verbose=0):
    """Train the three weight-sharing variants alike and compare their growth at initialization
    and test accuracy (Liao & Poggio, arXiv 1604.03640; Jastrzebski et al., arXiv 1710.04773:
    a shared residual block needs unshared batch norm).

    For each variant of :data:`VARIANTS` the random seed is set to ``seed``, the network is
    built by :func:`sharing_network`, ``||h_i|| / ||h_0||`` through the steps is measured at
    initialization on the first ``probe_examples`` test inputs with batch statistics (all of
    them one batch: what the first training steps see), and the network is trained with SGD
    (``momentum``) on a cosine-decayed ``learning_rate`` over ``epochs * steps_per_epoch``
    steps; every step's loss is recorded and a NaN/inf loss stops training. A run *diverged*
    when its loss went non-finite or above ``blowup_factor`` times the chance-level loss
    ``ln(num_classes)``; the number of classes is the largest label + 1. The test accuracy is
    measured with the moving statistics and with each test batch's (250 images) own.

    Args:
        train: ``(x, y)`` arrays, or a batched ``tf.data.Dataset`` of ``(x, y)`` (then
            ``batch_size`` is unused).
        test: ``(x, y)`` image arrays: the probe inputs and the test accuracy.
        steps, width, naive_gamma, unshared_gamma: the networks, as in
            :func:`sharing_network`.
        epochs: training epochs.
        learning_rate: the peak learning rate, > 0.
        momentum: SGD momentum in [0, 1).
        batch_size: examples per step with array data.
        probe_examples: test inputs the growth is measured on.
        blowup_factor: a loss above this many times the chance loss is a blow-up (> 1).
        seed: random seed set before building each network (weights and data order).
        steps_per_epoch: training steps per epoch, for the schedule; default: computed from
            the arrays, or the dataset's length (required when that is unknown).
        progress_bar: show a progress bar over the variants.
        verbose: Keras ``fit`` verbosity.

    Returns:
        :class:`SharingComparison`.

    Example:
        >>> from keras_resnet_lab.analysis._training import training_digits
        >>> train, test = training_digits(8, 3, batch_size=64)
        >>> result = compare_weight_sharing(train, test)  # doctest: +SKIP
        >>> result.statistics()["jastrzebski_sharing"]["init_growth_ratio"] > 1.5  # doctest: +SKIP
        True
    """
    import keras

    steps = positive_int("steps", steps)
    width = positive_int("width", width)
    epochs = positive_int("epochs", epochs)
    learning_rate = number_in("learning_rate", learning_rate, 0.0, None, low_open=True)
    momentum = number_in("momentum", momentum, 0.0, 1.0, high_open=True)
    batch_size = positive_int("batch_size", batch_size)
    probe_examples = positive_int("probe_examples", probe_examples)
    naive_gamma = number_in("naive_gamma", naive_gamma, 0.0, None, low_open=True)
    unshared_gamma = number_in("unshared_gamma", unshared_gamma, 0.0, None, low_open=True)
    blowup_factor = number_in("blowup_factor", blowup_factor, 1.0, None, low_open=True)
    seed = int_at_least("seed", seed, 0)
    verbose = int_at_least("verbose", verbose, 0)
    train, test, steps_per_epoch, num_classes = check_training_data(
        train, test, batch_size, steps_per_epoch, need_steps=True)
    probe = test[0][:probe_examples]
    chance_loss = math.log(num_classes)
    runs, growths, stabilities = {}, [], []
    for variant in progress(VARIANTS, desc="weight sharing", enabled=progress_bar):
        keras.utils.set_random_seed(seed)
        model = sharing_network(variant, steps=steps, width=width, naive_gamma=naive_gamma,
                                unshared_gamma=unshared_gamma, input_shape=probe.shape[1:],
                                num_classes=num_classes)
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate,
                                                          epochs * steps_per_epoch)
        # With batch statistics (what the first steps see), the whole probe as one batch.
        growth, stability = growth_and_stability(
            model, train, probe, epochs, keras.optimizers.SGD(schedule, momentum=momentum),
            batch_size, chance_loss=chance_loss, blowup_factor=blowup_factor,
            batch_statistics=True, verbose=verbose)
        runs[variant] = dict(
            init_ratio=growth.final_ratio, init_ratio_per_step=growth.ratio,
            trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
            diverged=stability.diverged, final_train_loss=stability.final_loss,
            test_accuracy=accuracy(model, test, batch_size=250),
            test_accuracy_batch_stats=accuracy(model, test, training=True, batch_size=250))
        growths.append(growth)
        stabilities.append(stability)
    return SharingComparison(
        variants=list(VARIANTS), steps=steps, width=width, naive_gamma=naive_gamma,
        unshared_gamma=unshared_gamma, epochs=epochs, learning_rate=learning_rate,
        momentum=momentum, batch_size=batch_size if isinstance(train, tuple) else None,
        steps_per_epoch=steps_per_epoch, seed=seed, chance_loss=chance_loss,
        blowup_factor=blowup_factor, runs=runs, growth=growths, stability=stabilities)
