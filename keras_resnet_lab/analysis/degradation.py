"""The degradation problem (He et al. 2015, arXiv 1512.03385): deeper plain networks reach a
higher *training* error than shallower ones, while deeper residual networks do not.

He et al.'s Figure 1 and 6: CIFAR plain nets of 20, 32, 44 and 56 layers train worse the
deeper they are (plain-110 stays above 60% training error), while their residual versions
(option A shortcuts, the same layers) train better the deeper they are. The degradation is an
optimization problem, not overfitting: it shows on the training set.

:func:`compare_depths` trains the plain twin and the ResNet (:func:`~keras_resnet_lab.models.
cifar.cifar_resnet`, 16/32/64 channels) at two depths with He's recipe (SGD with momentum 0.9,
weight decay, the learning rate divided by 10 at 50% and 75% of the run:
:func:`~keras_resnet_lab.training.recipes.he_cifar_recipe`), every network from the same seed
and data order, and measures each trained network's final training error on the whole
training set in inference mode (and its test error). Returns a :class:`DepthComparison`.
"""

import dataclasses
import math
import numbers

import numpy as np

from keras_resnet_lab._checks import (
    boolean,
    int_at_least,
    number_in,
    one_of,
    positive_int,
    sequence,
)
from keras_resnet_lab.analysis._common import progress
from keras_resnet_lab.analysis._training import check_training_data, loss_and_accuracy, train_arm
from keras_resnet_lab.analysis.results import Result

KINDS = ("plain", "resnet")


def _depths(depths):
    if isinstance(depths, numbers.Integral) or not hasattr(depths, "__iter__"):
        depths = (depths,)
    values = [int_at_least("depths", d, 8) for d in depths]
    if len(values) != 2 or values[0] == values[1] or any((d - 2) % 6 for d in values):
        raise ValueError("`depths` must be two different CIFAR depths 6n + 2 (8, 14, 20, 32, "
                         f"44, 56, ...), a shallow and a deep one, got {tuple(depths)!r}.")
    return sorted(values)


@dataclasses.dataclass
class DepthComparison(Result):
    """Plain and residual CIFAR networks at two depths, trained alike.

    Networks are named ``plain{depth}`` and ``resnet{depth}``. ``curves[name]`` holds the
    training ``loss`` and ``error`` after every epoch (means over the epoch's batches, in
    training mode); ``final_train_error`` / ``final_train_loss`` are the trained network's on
    the whole training set in inference mode (moving batch-norm statistics), and
    ``final_test_error`` / ``final_test_loss`` on the test set; ``params`` the trainable
    parameters. Errors are fractions. ``widths`` are the stage widths.
    """

    depths: list
    widths: list
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float
    weight_decay: float
    milestones: list
    warmup_epochs: float
    seed: int
    train_examples: int
    curves: dict
    final_train_error: dict
    final_train_loss: dict
    final_test_error: dict
    final_test_loss: dict
    params: dict

    figure_columns = 2

    @property
    def shallow(self):
        return min(self.depths)

    @property
    def deep(self):
        return max(self.depths)

    def rise(self, kind):
        """Final training error of the deep ``kind`` net minus the shallow one (fraction)."""
        kind = one_of("kind", kind, KINDS)
        err = self.final_train_error
        return err[f"{kind}{self.deep}"] - err[f"{kind}{self.shallow}"]

    def statistics(self):
        """He et al.'s finding in the registry's units: ``{"he_degradation": {"plain_rise":
        points, "residual_rise": points}}`` (deep minus shallow final training error)."""
        return {"he_degradation": {"plain_rise": 100 * self.rise("plain"),
                                   "residual_rise": 100 * self.rise("resnet")}}

    def notes(self):
        return {"he_degradation": (
            f"Depths {self.shallow} and {self.deep}; the training error of each trained network "
            "on the whole training set in inference mode (moving batch-norm statistics).")}

    def describe(self):
        """One paragraph of this seed's numbers."""
        def errors(kind, field):
            return "/".join(f"{100 * field[f'{kind}{d}']:.1f}%" for d in self.depths)

        depths = "/".join(str(d) for d in self.depths)
        return (f"Plain nets of {depths} layers reached a final training error of "
                f"{errors('plain', self.final_train_error)} (test "
                f"{errors('plain', self.final_test_error)}) and ResNets "
                f"{errors('resnet', self.final_train_error)} (test "
                f"{errors('resnet', self.final_test_error)}) after {self.epochs} epochs of SGD "
                f"(learning rate {self.learning_rate:g}, divided by 10 at "
                f"{'/'.join(f'{m:.0%}' for m in self.milestones)} of the run, momentum "
                f"{self.momentum:g}, weight decay {self.weight_decay:g}, warm-up "
                f"{self.warmup_epochs:g} epoch(s), batch {self.batch_size}, seed {self.seed}).")

    def draw(self, axes):
        ax1, ax2 = axes[:2]
        for kind, style in (("plain", "--"), ("resnet", "-")):
            for i, depth in enumerate(self.depths):
                curve = np.asarray(self.curves[f"{kind}{depth}"]["error"], dtype=float)
                ax1.plot(np.arange(1, len(curve) + 1), curve, style, color=f"C{i}",
                         label=f"{kind}-{depth}")
        ax1.set(xlabel="epoch", ylabel="training error (epoch mean)", ylim=(0, 1),
                title="Training: plain (dashed) vs ResNet (solid)")
        names = [f"{kind}{d}" for kind in KINDS for d in self.depths]
        x = np.arange(len(names))
        ax2.bar(x - 0.2, [self.final_train_error[n] for n in names], 0.4,
                label="final training error")
        ax2.bar(x + 0.2, [self.final_test_error[n] for n in names], 0.4,
                label="final test error")
        ax2.set_xticks(x, names)
        ax2.set(ylabel="error", title="Trained networks (inference mode)")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)


def compare_depths(train, test, *, depths=(8, 56), widths=(16, 32, 64), epochs=12, seed=0,
                   batch_size=128, learning_rate=0.05, momentum=0.9, weight_decay=5e-4,
                   milestones=(0.5, 0.75), warmup_epochs=1, progress_bar=True, verbose=0):
    """Train plain and residual CIFAR networks at two depths and compare their final
    training errors (He et al., arXiv 1512.03385: the degradation problem).

    For each depth the plain twin and the ResNet (:func:`~keras_resnet_lab.models.cifar.
    cifar_resnet`, option A shortcuts) are built after ``keras.utils.set_random_seed(seed)``
    and trained with :func:`~keras_resnet_lab.training.recipes.he_cifar_recipe`
    (``learning_rate`` divided by 10 at ``milestones``, SGD ``momentum``, decoupled
    ``weight_decay``, a constant warm-up at a tenth of the rate for ``warmup_epochs``, as He et
    al. did for ResNet-110) on the same data order. Each trained network is scored on the whole
    training set and on ``test`` in inference mode.

    The defaults show the degradation in a short run on one CPU core, on the 8x8 digits
    (``training_digits(8, 3, batch_size=64)``; run time in
    benchmarks/results/timings_behind_comments.md): plain-56 ends with 58-82% training error
    while plain-8 and both ResNets reach under 1%. Measured alternatives: He's own recipe (lr
    0.1, weight decay 1e-4) without warm-up at 20/56 layers leaves ResNet-56 at 54% after 12
    epochs (its first epoch blows up); with the 1-epoch warm-up ResNet-56 ends at 1.5%, at
    twice the time; at 8/32 layers plain-32 trains too well in some seeds (9-45%) to make
    the rise clear over 3 seeds.

    Args:
        train: ``(x, y)`` image and integer-label arrays (e.g. ``training_digits(8, 3,
            batch_size=64)``); the final training error is measured on all of them.
        test: ``(x, y)`` images and integer labels.
        depths: a shallow and a deep depth, each 6n + 2.
        widths: channels of the three stages (16, 32, 64: :func:`~keras_resnet_lab.models.
            cifar.cifar_resnet` exactly).
        epochs: training epochs of every network.
        seed: seed of the initializations and of the data order (>= 0).
        batch_size: examples per step.
        learning_rate: the initial learning rate (> 0).
        momentum: SGD momentum in [0, 1).
        weight_decay: decoupled weight decay (>= 0).
        milestones: fractions of the run where the learning rate is divided by 10.
        warmup_epochs: epochs at ``learning_rate / 10`` first (0: none).
        progress_bar: show a progress bar over the four networks.
        verbose: Keras ``fit`` verbosity.

    Returns:
        :class:`DepthComparison`.

    Example:
        >>> from keras_resnet_lab.analysis._training import training_digits
        >>> train, test = training_digits(8, 3, batch_size=64)
        >>> result = compare_depths(train, test)  # doctest: +SKIP
        >>> result.statistics()["he_degradation"]["plain_rise"] > 0  # doctest: +SKIP
        True
    """
    import keras

    from keras_resnet_lab.models.cifar import cifar_network
    from keras_resnet_lab.training.recipes import he_cifar_recipe

    depths = _depths(depths)
    widths = tuple(positive_int("widths", w) for w in sequence("widths", widths))
    if len(widths) != 3:
        raise ValueError(f"`widths` must be three stage widths (16, 32, 64 in He et al.), got "
                         f"{widths}.")
    epochs = positive_int("epochs", epochs)
    seed = int_at_least("seed", seed, 0)
    batch_size = positive_int("batch_size", batch_size)
    learning_rate = number_in("learning_rate", learning_rate, 0.0, None, low_open=True)
    momentum = number_in("momentum", momentum, 0.0, 1.0, high_open=True)
    weight_decay = number_in("weight_decay", weight_decay, 0.0)
    progress_bar = boolean("progress_bar", progress_bar)
    verbose = one_of("verbose", verbose, (0, 1, 2))
    # Arrays only: the final training error is measured on them.
    train, test, steps, num_classes = check_training_data(train, test, batch_size,
                                                          datasets=False)
    warmup_epochs = number_in("warmup_epochs", warmup_epochs, 0.0)
    if warmup_epochs >= epochs:
        raise ValueError(f"`warmup_epochs` must be shorter than the run ({epochs} epochs), got "
                         f"{warmup_epochs:g}.")
    recipe = he_cifar_recipe(base_lr=learning_rate, momentum=momentum,
                             weight_decay=weight_decay, milestones=tuple(milestones),
                             warmup_epochs=warmup_epochs)
    names = [(kind, depth) for depth in depths for kind in KINDS]
    curves, train_err, train_loss, test_err, test_loss, params = {}, {}, {}, {}, {}, {}
    for kind, depth in progress(names, desc="depths x4", enabled=progress_bar):
        name = f"{kind}{depth}"
        keras.utils.set_random_seed(seed)
        # cifar_resnet(depth, plain=...) with the given stage widths (16/32/64: exactly it).
        model = cifar_network((depth - 2) // 6, widths=widths, stem_width=widths[0],
                              shortcut="A", plain=kind == "plain", num_classes=num_classes,
                              input_shape=test[0].shape[1:], name=name)
        history = train_arm(model, train, epochs, recipe.optimizer(steps, epochs), batch_size,
                            verbose=verbose)
        curves[name] = {"loss": history["loss"],
                        "error": [1.0 - a for a in history["accuracy"]]}
        loss, acc = loss_and_accuracy(model, train)
        train_err[name], train_loss[name] = _error(acc, len(train[0])), loss
        loss, acc = loss_and_accuracy(model, test)
        test_err[name], test_loss[name] = _error(acc, len(test[0])), loss
        params[name] = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    return DepthComparison(
        depths=depths, widths=list(widths), epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
        milestones=list(recipe.milestones), warmup_epochs=float(recipe.warmup_epochs),
        seed=seed, train_examples=len(train[0]), curves=curves, final_train_error=train_err,
        final_train_loss=train_loss, final_test_error=test_err, final_test_loss=test_loss,
        params=params)


def _error(accuracy, n):
    """``1 - accuracy`` as the exact fraction (wrong examples) / n."""
    return (n - round(accuracy * n)) / n
