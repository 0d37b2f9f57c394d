"""Highway networks train at any depth (Srivastava, Greff & Schmidhuber 2015, arXiv 1507.06228).

The depth experiment of the paper's Figure 1: thin fully-connected plain and highway networks
of several depths, trained alike (SGD with momentum, same learning rate, batch size and epochs).
A network of depth ``d`` is one plain dense layer (the stem, ReLU) followed by ``d - 1`` layers
and a linear softmax classifier (:func:`keras_resnet_lab.models.mlp.highway_mlp`). A plain layer
is ``y = H(x) = relu(W_H x + b_H)``; a highway layer is ``y = x + T(x) * (H(x) - x)`` with the
same ``H`` and a transform gate ``T = sigmoid(W_T x + b_T)``. Both nets use He-normal kernels,
zero biases and no batch normalization, so the plain nets' trouble at depth is one of
optimization.

Gate bias: ``gate_bias`` for the depth-10 highway net; deeper nets get a more negative bias,
chosen so that every highway net carries the same share of its input through all of its layers
at initialization (:func:`gate_bias_at`: -2, -2.78 and -3.75 at depths 10, 20 and 50 for -2;
the paper, too, biases deeper nets more negatively).

Then, on the deepest highway net, the gate analysis of the paper's Figures 2 and 4
(:func:`keras_resnet_lab.analysis.gates.gate_statistics`): the mean transform-gate activity of
each layer over the test data, and the gate lesion (``T = 0`` in one layer, so that it only
carries), counting the nearly idle layers among the late ones (the paper: layers 15-45 of 50
on MNIST could be lesioned at almost no cost).

:func:`compare_highway_depths` runs it all and returns a :class:`HighwayDepthComparison`.
"""

import dataclasses
import math
import numbers

import numpy as np

from keras_resnet_lab._checks import boolean, int_at_least, number_in, one_of, positive_int
from keras_resnet_lab.analysis._common import progress
from keras_resnet_lab.analysis._training import (
    check_training_data,
    loss_and_accuracy,
    train_arm,
)
from keras_resnet_lab.analysis._training import learning_rates as learning_rates_list
from keras_resnet_lab.analysis.gates import IDLE_ERROR_INCREASE, GateResult, gate_statistics
from keras_resnet_lab.analysis.results import Result, fmt_number

#: The depth whose highway net gets ``gate_bias`` itself (see :func:`gate_bias_at`).
REFERENCE_DEPTH = 10


def gate_bias_at(depth, gate_bias=-2.0):
    """The initial transform-gate bias of the depth-``depth`` highway net.

    ``gate_bias`` at depth 10; at other depths the bias ``b`` whose net carries the same share
    of its input through all of its ``depth - 1`` highway layers at initialization,
    ``(1 - sigmoid(b))^(depth - 1) = (1 - sigmoid(gate_bias))^9`` (computed in log space, so
    it stays exact for strongly negative biases).

    Args:
        depth: network depth (the stem + ``depth - 1`` highway layers), an integer >= 2.
        gate_bias: the bias of the depth-10 net, a number in [-30, 30].

    Returns:
        float.

    Example:
        >>> [round(gate_bias_at(d), 2) for d in (10, 20, 50, 100)]
        [-2.0, -2.78, -3.75, -4.46]
    """
    depth = int_at_least("depth", depth, 2)
    gate_bias = number_in("gate_bias", gate_bias, -30.0, 30.0)
    if depth == REFERENCE_DEPTH:
        return gate_bias
    # -log(1 - sigmoid(b)) = softplus(b); the bias b with -log(1 - sigmoid(b)) = s is
    # log(exp(s) - 1) = s + log(1 - exp(-s)).
    softplus = max(gate_bias, 0.0) + math.log1p(math.exp(-abs(gate_bias)))
    s = softplus * (REFERENCE_DEPTH - 1) / (depth - 1)
    return s + math.log(-math.expm1(-s))


@dataclasses.dataclass
class HighwayDepthComparison(Result):
    """Plain and highway nets of several depths trained alike (one seed), and the gates of
    the deepest.

    The per-network dicts are keyed by name, ``plain{depth}`` / ``highway{depth}``:
    ``curves[name]`` is the training loss after every epoch, ``final_train_loss`` /
    ``final_train_error`` / ``final_test_loss`` / ``final_test_error`` the final scores
    (inference mode; NaN loss if the net diverged), ``params`` the parameter count and
    ``learning_rate`` the learning rate kept (the one with the lowest final training loss).
    ``gate_bias_by_depth`` maps ``str(depth)`` to the highway net's initial gate bias.

    ``gates`` holds the gate analysis of the deepest highway net (None if it diverged): the
    fields of its :class:`~keras_resnet_lab.analysis.gates.GateResult` (``to_dict``) plus
    ``intact_test_error``, ``lesion_error_increase``, ``lesion_loss_increase``,
    ``idle_layers`` (lesion costs at most ``idle_error_increase`` accuracy), ``late_layers``
    (from ``late_from`` of the way on), ``late_idle_layers`` (how many of them are idle),
    ``late_idle_fraction``, ``early_mean_gate`` and ``late_mean_gate``. ``init_mean_gate``
    is the mean transform gate of each layer of the same net at initialization, before
    training (on the same test data).
    """

    depths: list
    units: int
    gate_bias: float
    gate_bias_by_depth: dict
    epochs: int
    learning_rates: list
    momentum: float
    batch_size: int
    late_from: float
    seed: int
    curves: dict
    final_train_loss: dict
    final_train_error: dict
    final_test_loss: dict
    final_test_error: dict
    params: dict
    learning_rate: dict
    gates: dict
    init_mean_gate: list = None

    figure_columns = 3

    @property
    def shallowest(self):
        return min(self.depths)

    @property
    def deepest(self):
        return max(self.depths)

    def gate_result(self):
        """The deepest highway net's :class:`~keras_resnet_lab.analysis.gates.GateResult`
        (for its own figure, ``gate_result().plot(path)``), or None if it diverged."""
        if self.gates is None:
            return None
        return GateResult(**{f.name: self.gates[f.name] for f in dataclasses.fields(GateResult)})

    def _late(self):
        if self.late_from == 0.5:
            return "second half"
        return f"from {self.late_from:.0%} of the way in"

    def first_late(self):
        """Index of the first late layer of the deepest highway net (``late_from`` of the way
        into its gated layers)."""
        layers = len(self.init_mean_gate or (self.gates or {}).get("mean_gate") or [])
        return int(layers * self.late_from)

    def gate_change(self):
        """Mean transform gate of the late layers after training minus at initialization
        (NaN when the deepest highway net diverged or the initial gates were not kept)."""
        if self.gates is None or not self.init_mean_gate:
            return float("nan")
        first = self.first_late()
        return float(np.mean(self.gates["mean_gate"][first:])
                     - np.mean(self.init_mean_gate[first:]))

    def statistics(self):
        """Srivastava et al.'s findings in the registry's units (training errors in points):
        ``srivastava_depth``: ``plain_rise`` and ``highway_rise`` (final training error of
        the deepest minus the shallowest net); ``srivastava_gates`` on the deepest highway
        net: ``idle_fraction`` (late layers whose gate lesion costs at most
        ``idle_error_increase`` test accuracy) and ``gate_change`` (:meth:`gate_change`).
        NaN where the deepest highway net diverged."""
        err = self.final_train_error
        shallow, deep = self.shallowest, self.deepest
        idle = float("nan") if self.gates is None else float(self.gates["late_idle_fraction"])
        return {
            "srivastava_depth": {
                "plain_rise": 100 * (err[f"plain{deep}"] - err[f"plain{shallow}"]),
                "highway_rise": 100 * (err[f"highway{deep}"] - err[f"highway{shallow}"])},
            "srivastava_gates": {"idle_fraction": idle, "gate_change": self.gate_change()},
        }

    def notes(self):
        idle = IDLE_ERROR_INCREASE if self.gates is None else self.gates["idle_error_increase"]
        return {
            "srivastava_depth": (
                f"Depths {'/'.join(str(d) for d in self.depths)}; final training errors of the "
                "trained nets on the whole training set (inference mode), each net at its "
                "best learning rate."),
            "srivastava_gates": (
                f"On highway{self.deepest}: late layers are the {self._late()} of its gated "
                f"layers; a layer is idle when its gate lesion costs at most {100 * idle:g} "
                "point(s) of test accuracy; the gates before training are measured on the "
                "same net (same seed) on the same test data."),
        }

    def describe(self):
        def errors(kind):
            return "/".join(f"{100 * self.final_train_error[f'{kind}{d}']:.1f}%"
                            for d in self.depths)

        depths = "/".join(str(d) for d in self.depths)
        rates = sorted(set(self.learning_rate.values()))
        text = (f"Plain nets of depth {depths} reached training error {errors('plain')} and "
                f"highway nets {errors('highway')} after {self.epochs} epochs of SGD "
                f"(learning rate {'/'.join(f'{r:g}' for r in rates)}, momentum "
                f"{self.momentum:g}, {self.units} units a layer).")
        if self.gates is None:
            text += (f" The depth-{self.deepest} highway net diverged, so its gates were not "
                     "analyzed.")
        else:
            g = self.gates
            text += (f" In highway{self.deepest}, {g['late_idle_layers']} of the "
                     f"{len(g['late_layers'])} late layers are nearly idle (a gate lesion "
                     f"costs at most {100 * g['idle_error_increase']:g} point of test "
                     f"accuracy; {len(g['idle_layers'])} of {len(g['block_names'])} layers in "
                     f"all), with mean gate T {fmt_number(g['early_mean_gate'])} in the early "
                     f"and {fmt_number(g['late_mean_gate'])} in the late layers")
            change = self.gate_change()
            text += (f" ({change:+.3g} since initialization)." if math.isfinite(change)
                     else ".")
        return text

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        epochs = np.arange(1, self.epochs + 1)
        for i, depth in enumerate(self.depths):
            for kind, style in (("plain", "--"), ("highway", "-")):
                curve = self.curves[f"{kind}{depth}"]
                ax1.plot(epochs[:len(curve)], np.asarray(curve, dtype=float), style,
                         color=f"C{i}", label=f"{kind} {depth}")
        ax1.set(xlabel="epoch", ylabel="training loss", yscale="log",
                title="Optimization at depth (dashed: plain)")
        ax1.legend(fontsize=7)
        for kind, marker in (("plain", "s--"), ("highway", "o-")):
            ax2.plot(self.depths, [self.final_train_error[f"{kind}{d}"] for d in self.depths],
                     marker, label=f"{kind}, train")
            ax2.plot(self.depths, [self.final_test_error[f"{kind}{d}"] for d in self.depths],
                     marker, alpha=0.4, label=f"{kind}, test")
        ax2.set(xlabel="depth (layers)", ylabel="error", title="Final error against depth")
        ax2.set_xticks(self.depths)
        ax2.legend(fontsize=7)
        ax3.set(xlabel="highway layer", title=f"Gates of highway{self.deepest}")
        if self.gates is None:
            ax3.text(0.5, 0.5, "diverged: no gate analysis", ha="center", va="center",
                     transform=ax3.transAxes)
        else:
            g = self.gates
            layers = np.arange(1, len(g["mean_gate"]) + 1)
            ax3.plot(layers, g["mean_gate"], "o-", ms=3, color="C0", label="mean gate T")
            if self.init_mean_gate:
                ax3.plot(layers, self.init_mean_gate, ":", color="C0",
                         label="mean gate T at init")
            ax3.set_ylabel("mean transform gate T", color="C0")
            top = max(list(g["mean_gate"]) + list(self.init_mean_gate or []))
            ax3.set_ylim(0, max(0.05, 1.1 * top))
            first_late = len(layers) - len(g["late_layers"])
            ax3.axvspan(first_late + 0.5, len(layers) + 0.5, color="gray", alpha=0.1,
                        label="late layers")
            lesion = ax3.twinx()
            lesion.plot(layers, g["lesion_error_increase"], "s-", ms=3, color="C3",
                        label="error increase, T = 0")
            lesion.axhline(g["idle_error_increase"], color="C3", ls=":",
                           label="nearly-idle limit")
            lesion.set_ylabel("test error increase of the lesion", color="C3")
            handles = ax3.get_legend_handles_labels()
            more = lesion.get_legend_handles_labels()
            ax3.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7,
                       loc="upper right", framealpha=0.9)
        for ax in axes:
            ax.grid(alpha=0.3)


def _depths(depths):
    if isinstance(depths, numbers.Integral) or not hasattr(depths, "__iter__"):
        depths = (depths,)
    depths = [int_at_least("depths", d, 2) for d in depths]
    if len(set(depths)) < 2 or len(set(depths)) != len(depths):
        raise ValueError(f"`depths` must list at least two different depths (integers >= 2) "
                         f"without repeats, got {depths!r}.")
    return sorted(depths)



def _error(accuracy, n):
    """``1 - accuracy`` as the exact fraction (wrong examples) / n."""
    return (n - round(accuracy * n)) / n


def _gate_numbers(gates, late_from):
    """The gate result as a dict plus the late-layer numbers of the finding."""
    increase = gates.lesion_error_increase()
    first_late = int(len(increase) * late_from)
    late_names = gates.block_names[first_late:]
    idle = set(gates.idle_blocks())
    late_idle = sum(name in idle for name in late_names)
    numbers_ = gates.to_dict()
    numbers_.update(
        intact_test_error=1 - gates.intact_accuracy, lesion_error_increase=increase,
        lesion_loss_increase=gates.lesion_loss_increase(), idle_layers=gates.idle_blocks(),
        late_layers=late_names, late_idle_layers=late_idle,
        late_idle_fraction=late_idle / len(late_names),
        early_mean_gate=float(np.mean(gates.mean_gate[:first_late])) if first_late else None,
        late_mean_gate=float(np.mean(gates.mean_gate[first_late:])))
    return numbers_


def compare_highway_depths(train, test, *, depths=(10, 20, 50), units=50, gate_bias=-2.0,
                           epochs=15, learning_rates=(0.01,), momentum=0.9, batch_size=64,
                           late_from=0.5, seed=0, progress_bar=True, verbose=0):
    """Train plain and highway nets at several depths and analyze the deepest highway net's
    gates (Srivastava, Greff & Schmidhuber 2015, arXiv 1507.06228, Figures 1, 2 and 4).

    For every depth ``d`` the plain and the highway :func:`~keras_resnet_lab.models.mlp.
    highway_mlp` (a stem and ``d - 1`` layers of ``units``; highway gate bias
    :func:`gate_bias_at` ``(d, gate_bias)``) are trained with SGD with momentum, once per
    learning rate, each run from ``keras.utils.set_random_seed(seed)`` (the same H weights and
    data order in both nets); each net keeps the run with the lowest final training loss.
    Then :func:`~keras_resnet_lab.analysis.gates.gate_statistics` measures the deepest highway
    net's gates and gate lesions on ``test``. The defaults are the quick benchmark's
    (``benchmarks/highway_srivastava.py --quick``: a short run on a CPU; its run time is in
    benchmarks/results/timings_behind_comments.md).

    Args:
        train: ``(x, y)`` training vectors and integer labels, e.g. the flattened digits of
            ``training_digits(8, channels=1, batch_size=64, flatten=True)``.
        test: ``(x, y)`` test data (final scores and the gate analysis).
        depths: at least two different depths (integers >= 2: stem + ``depth - 1`` layers).
        units: width of every layer.
        gate_bias: the depth-10 highway net's initial gate bias, in [-30, 30] (see
            :func:`gate_bias_at` for the other depths).
        epochs: training epochs of every run.
        learning_rates: one or more learning rates > 0 (several: a search per net).
        momentum: SGD momentum, in [0, 1).
        batch_size: examples per step.
        late_from: the late layers of the deepest highway net start this far in, in [0, 1).
        seed: random seed (>= 0) of every run.
        progress_bar: show a progress bar over the training runs and the gate analysis.
        verbose: Keras ``fit`` verbosity (0, 1 or 2).

    Returns:
        :class:`HighwayDepthComparison` (the classes are the labels ``0 .. max label``).

    Example:
        >>> train, test = training_digits(8, channels=1, batch_size=64, flatten=True)
        >>> result = compare_highway_depths(train, test)
        >>> result.statistics()["srivastava_depth"], result.final_train_error["plain50"]
    """
    import keras

    from keras_resnet_lab.models.mlp import highway_mlp

    train, test, _, num_classes = check_training_data(train, test, batch_size, datasets=False)
    depths = _depths(depths)
    units = positive_int("units", units)
    gate_bias = number_in("gate_bias", gate_bias, -30.0, 30.0)
    epochs = positive_int("epochs", epochs)
    rates = learning_rates_list(learning_rates)
    momentum = number_in("momentum", momentum, 0.0, 1.0, high_open=True)
    batch_size = positive_int("batch_size", batch_size)
    late_from = number_in("late_from", late_from, 0.0, 1.0, high_open=True)
    seed = int_at_least("seed", seed, 0)
    progress_bar = boolean("progress_bar", progress_bar)
    verbose = one_of("verbose", verbose, (0, 1, 2))

    biases = {d: gate_bias_at(d, gate_bias) for d in depths}
    runs = [(kind, d, lr) for kind in ("plain", "highway") for d in depths for lr in rates]
    best, init_gates = {}, None
    for kind, depth, lr in progress(runs, desc=f"highway depths x{len(runs)}",
                                    enabled=progress_bar):
        name = f"{kind}{depth}"
        keras.utils.set_random_seed(seed)
        model = highway_mlp(depth - 1, units, gate_bias=biases[depth], plain=kind == "plain",
                            input_shape=train[0].shape[1:], num_classes=num_classes, name=name)
        if kind == "highway" and depth == depths[-1] and init_gates is None:
            # The same seed builds the same net at every learning rate: its gates before
            # training, on the data the trained gates are measured on.
            init_gates = gate_statistics(model, test, lesions=False,
                                         progress_bar=False).mean_gate
        history = train_arm(model, train, epochs, keras.optimizers.SGD(lr, momentum=momentum),
                            batch_size, verbose=verbose)
        loss, acc = loss_and_accuracy(model, train)
        key = loss if np.isfinite(loss) else np.inf
        if name not in best or key < best[name][0]:
            best[name] = (key, lr, model, history["loss"], loss, _error(acc, len(train[0])))

    names = [f"{kind}{d}" for kind in ("plain", "highway") for d in depths]
    test_scores = {name: loss_and_accuracy(best[name][2], test) for name in names}
    deepest = best[f"highway{depths[-1]}"][2]
    gates = None
    if np.isfinite(test_scores[f"highway{depths[-1]}"][0]):
        gates = _gate_numbers(gate_statistics(deepest, test, progress_bar=progress_bar),
                              late_from)
    return HighwayDepthComparison(
        depths=depths, units=units, gate_bias=gate_bias,
        gate_bias_by_depth={str(d): b for d, b in biases.items()}, epochs=epochs,
        learning_rates=rates, momentum=momentum, batch_size=batch_size, late_from=late_from,
        seed=seed, curves={n: best[n][3] for n in names},
        final_train_loss={n: best[n][4] for n in names},
        final_train_error={n: best[n][5] for n in names},
        final_test_loss={n: test_scores[n][0] for n in names},
        final_test_error={n: _error(test_scores[n][1], len(test[0])) for n in names},
        params={n: int(best[n][2].count_params()) for n in names},
        learning_rate={n: best[n][1] for n in names}, gates=gates, init_mean_gate=init_gates)
