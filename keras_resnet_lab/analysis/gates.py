"""Highway gates (Srivastava, Greff & Schmidhuber 2015, arXiv 1507.06228).

A highway layer computes ``y = C(x) + T(x) * (H(x) - C(x))``: the transform gate
``T = sigmoid(W_T x + b_T)`` decides, per unit and per example, how much of the candidate
``H(x)`` replaces the carried input ``C(x)``. Srivastava et al. look at the trained gates in two
ways: the mean gate activity of every unit over the data (with the gate bias initialized
negative, many stay nearly closed), and the *gate lesion*, setting ``T = 0`` in one layer so
that it only carries, and measuring what that costs: on MNIST the layers 15-45 of a 50-layer
net could be lesioned at almost no cost, on CIFAR-100 most layers mattered.

:func:`transform_gates` records ``T`` of every gated layer, :func:`gate_statistics` summarizes
it per layer and lesions every gate (a :class:`GateResult`, with ``to_json`` and ``plot``).
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, number_in, positive_int, sequence
from keras_resnet_lab.analysis._common import (
    batches,
    check_data,
    per_example_loss,
    progress,
)
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.layers.highway import HighwayBlock
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.surgery import chain_steps, run_plan, skip_block
from keras_resnet_lab.training.recipes import output_applies_softmax

#: A unit whose mean gate over the data is below this is counted as idle (``T(x) < 0.1``:
#: the layer carries more than 90% of that unit's input unchanged on average).
GATE_THRESHOLD = 0.1
#: A layer is *nearly idle* when its gate lesion (``T = 0``) costs at most this much accuracy
#: (1 percentage point).
IDLE_ERROR_INCREASE = 0.01


@dataclasses.dataclass
class GateResult(Result):
    """Per gated layer: the transform-gate activity over the data and the cost of its lesion.

    ``mean_gate[i]`` is the mean of ``T`` over examples and units (and positions, conv form)
    of layer ``i``; ``example_std[i]`` the mean over units of the standard deviation of ``T``
    across examples (how selective the gates are); ``unit_mean_gate[i]`` the mean ``T`` of
    every unit; ``idle_unit_fraction[i]`` the fraction of units whose mean ``T`` is below
    ``gate_threshold``. ``lesion_loss[i]`` / ``lesion_accuracy[i]`` are the model's loss and
    accuracy with ``T = 0`` in layer ``i`` alone (None when lesions were not measured); a
    layer is *nearly idle* when that lesion costs at most ``idle_error_increase`` accuracy.
    """

    model_name: str
    n_examples: int
    block_names: list
    gate_threshold: float
    idle_error_increase: float
    mean_gate: list
    example_std: list
    idle_unit_fraction: list
    unit_mean_gate: list
    intact_loss: float
    intact_accuracy: float
    lesion_loss: list
    lesion_accuracy: list

    figure_columns = 3

    def lesion_loss_increase(self):
        """Loss increase of each single-layer gate lesion (None where not measured)."""
        return [None if v is None else v - self.intact_loss for v in self.lesion_loss]

    def lesion_error_increase(self):
        """Error (1 - accuracy) increase of each single-layer gate lesion."""
        return [None if v is None else self.intact_accuracy - v for v in self.lesion_accuracy]

    def idle_blocks(self):
        """Names of the nearly idle layers: lesioning their gate costs at most
        ``idle_error_increase`` accuracy.

        Raises:
            ValueError: if the lesions were not measured.
        """
        if any(v is None for v in self.lesion_accuracy):
            raise ValueError("`idle_blocks` needs the gate lesions: run gate_statistics with "
                             "lesions=True.")
        return [name for name, inc in zip(self.block_names, self.lesion_error_increase())
                if inc <= self.idle_error_increase]

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        idx = np.arange(1, len(self.block_names) + 1)
        mean, std = np.asarray(self.mean_gate), np.asarray(self.example_std)
        ax1.plot(idx, mean, "o-", ms=3, label="mean T")
        ax1.fill_between(idx, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), alpha=0.2,
                         label="+- std over examples")
        ax1.plot(idx, self.idle_unit_fraction, "s-", ms=3, color="C2",
                 label=f"fraction of units with mean T < {self.gate_threshold:g}")
        ax1.set(xlabel="layer", ylabel="transform gate", ylim=(0, 1),
                title="Transform-gate activity")
        ax1.legend(fontsize=7, loc="center")
        widths = {len(u) for u in self.unit_mean_gate}
        if len(widths) == 1:
            units = np.sort(np.asarray(self.unit_mean_gate), axis=1)[:, ::-1]
            image = ax2.imshow(units.T, aspect="auto", origin="lower", cmap="viridis",
                               vmin=0, vmax=1, extent=(0.5, len(idx) + 0.5, 0, units.shape[1]))
            ax2.figure.colorbar(image, ax=ax2, label="mean T of the unit")
        ax2.set(xlabel="layer", ylabel="unit (sorted)", title="Mean gate per unit")
        if all(v is not None for v in self.lesion_accuracy):
            ax3.plot(idx, 1 - np.asarray(self.lesion_accuracy), "o-", ms=3, color="C3",
                     label="T = 0 in this layer")
            ax3.axhline(1 - self.intact_accuracy, color="gray", ls="--", label="intact")
            ax3.axhline(1 - self.intact_accuracy + self.idle_error_increase, color="gray",
                        ls=":", label="nearly-idle limit")
            ax3.legend(fontsize=7)
        ax3.set(xlabel="layer", ylabel="error", title="Gate lesion (the layer only carries)")
        for ax in (ax1, ax3):
            ax.grid(alpha=0.3)


def gate_blocks(model):
    """The gated highway layers of ``model`` (non-plain :class:`HighwayBlock` blocks), in order.

    Args:
        model: a chain model (see ``keras_resnet_lab.models.blocks``).

    Returns:
        A list of ``BlockInfo``.

    Raises:
        ValueError: if the model has no gated highway layer.

    Example:
        >>> [b.name for b in gate_blocks(highway_mlp(3))]
        ['stage1_block1', 'stage1_block2', 'stage1_block3']
    """
    gated = [b for b in blocks(model) if isinstance(b.layer, HighwayBlock) and not b.layer.plain]
    if not gated:
        raise ValueError(f"model '{model.name}' has no gated highway layer (a HighwayBlock "
                         "with plain=False); gate analyses need a highway network.")
    return gated


def _per_unit(gate):
    """``T`` as ``(batch, units)``: averaged over spatial positions in the conv form."""
    gate = np.asarray(gate, dtype=np.float64)
    return gate.reshape(gate.shape[0], -1, gate.shape[-1]).mean(axis=1)


def transform_gates(model, x):
    """The transform gate ``T`` of every gated highway layer on the inputs ``x``.

    The model runs once as a chain; each gated layer's gate is evaluated on the input that
    layer receives (inference mode).

    Args:
        model: a chain model with highway layers.
        x: a batch of inputs.

    Returns:
        ``{layer name: array (batch, units)}`` in chain order (conv form: the gate averaged
        over spatial positions, per channel).

    Example:
        >>> gates = transform_gates(model, x_test[:64])
        >>> gates["stage1_block1"].mean()
    """
    names = {b.name for b in gate_blocks(model)}
    gates = {}

    def recorded(step, h):
        if step.name in names:
            gates[step.name] = _per_unit(step.operation.transform_gate(h))
        return step(h)

    run_plan(chain_steps(model), np.asarray(x, dtype=np.float32), block_fn=recorded)
    return gates


def gate_lesions(model, data, names, *, batch_size=256, progress_bar=True):
    """Loss and accuracy of ``model`` with ``T = 0`` in each layer of ``names``, one at a time.

    A lesioned layer only carries, ``y = C(x)`` (the same as deleting its branch with
    ``keras_resnet_lab.models.surgery.drop_blocks``). All lesions run in one pass through the
    chain: at each lesioned layer a copy of the batch that carries instead joins the batch, and
    every later step runs on the intact batch and all copies at once, so the cost is one
    forward pass over a batch that grows up to ``len(names) + 1`` times (memory grows the same
    way: lower ``batch_size`` for wide convolutional nets).

    Args:
        model: a chain model with highway layers and a classifier head.
        data: ``(x, y)`` inputs and integer labels.
        names: names of gated highway layers to lesion (a single name is accepted too).
        batch_size: examples per pass.
        progress_bar: show a progress bar.

    Returns:
        ``(intact, [per name])``, each a dict ``{"loss", "accuracy"}``.

    Example:
        >>> intact, lesioned = gate_lesions(model, (x, y), ["stage1_block3"])
    """
    names = sequence("names", names, single=lambda v: isinstance(v, str))
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    gated = {b.name for b in gate_blocks(model)}
    missing = [n for n in names if n not in gated]
    if missing:
        raise ValueError(f"`names` must be gated highway layers of '{model.name}' "
                         f"({', '.join(sorted(gated))}), got {missing}.")
    x, y = check_data(model, data)
    return _lesion_scores(model, x, y, list(names), batch_size, progress_bar)


def _lesion_scores(model, x, y, names, batch_size, progress_bar):
    from keras import ops

    steps = chain_steps(model)
    wanted = set(names)
    order = [s.name for s in steps if s.block is not None and s.name in wanted]
    from_logits = not output_applies_softmax(model)
    totals = np.zeros((len(order) + 1, 2))  # loss sum, correct count
    for lo, hi in progress(batches(len(x), batch_size), desc=f"gate lesions {model.name}",
                           enabled=progress_bar):
        n = hi - lo
        h, copies = ops.convert_to_tensor(x[lo:hi]), None
        for step in steps:
            out = step(h if copies is None else ops.concatenate([h, copies], axis=0))
            if step.block is not None and step.name in wanted:
                carried = skip_block(step.operation, h)
                copies = carried if copies is None else ops.concatenate(
                    [out[n:], carried], axis=0)
            elif copies is not None:
                copies = out[n:]
            h = out[:n]
        out = np.asarray(h if copies is None else ops.concatenate([h, copies], axis=0))
        labels = np.tile(np.asarray(y[lo:hi]), len(order) + 1)
        loss = np.asarray(per_example_loss(out, labels, from_logits)).reshape(-1, n)
        correct = (out.argmax(axis=-1) == labels).reshape(-1, n)
        totals[:, 0] += loss.sum(axis=1)
        totals[:, 1] += correct.sum(axis=1)
    scores = [{"loss": t[0] / len(x), "accuracy": t[1] / len(x)} for t in totals]
    by_name = dict(zip(order, scores[1:]))
    return scores[0], [by_name[n] for n in names]


def gate_statistics(model, data, *, gate_threshold=GATE_THRESHOLD,
                    idle_error_increase=IDLE_ERROR_INCREASE, lesions=True, batch_size=256,
                    max_examples=None, progress_bar=True):
    """Srivastava et al.'s transform-gate statistics and gate lesions (arXiv 1507.06228).

    For every gated highway layer: the mean of ``T`` over the data and units, its spread over
    examples, the mean ``T`` of each unit and the fraction of units whose mean ``T`` is below
    ``gate_threshold``; with ``lesions``, the loss and accuracy of the model with ``T = 0``
    in that layer alone (it only carries: ``y = C(x)``, the same as deleting the layer's
    branch with ``keras_resnet_lab.models.surgery``).

    Args:
        model: a chain model with highway layers and a classifier head.
        data: ``(x, y)`` inputs and integer labels.
        gate_threshold: a unit is idle when its mean ``T`` is below this, in (0, 1).
        idle_error_increase: a layer is nearly idle when its gate lesion costs at most this
            accuracy, in [0, 1].
        lesions: also lesion every gate (all in one pass, see :func:`gate_lesions`).
        batch_size: examples per pass.
        max_examples: use only the first examples of ``data``.
        progress_bar: show progress bars.

    Returns:
        :class:`GateResult`.

    Example:
        >>> result = gate_statistics(highway, (x_test, y_test))
        >>> result.mean_gate, result.idle_blocks()
    """
    gate_threshold = number_in("gate_threshold", gate_threshold, 0.0, 1.0, low_open=True,
                               high_open=True)
    idle_error_increase = number_in("idle_error_increase", idle_error_increase, 0.0, 1.0)
    lesions = boolean("lesions", lesions)
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    gated = gate_blocks(model)
    x, y = check_data(model, data, max_examples)
    names = [b.name for b in gated]
    collected = {name: [] for name in names}
    for lo, hi in progress(batches(len(x), batch_size), desc=f"gates {model.name}",
                           enabled=progress_bar):
        for name, gate in transform_gates(model, x[lo:hi]).items():
            collected[name].append(gate)
    per_layer = [np.concatenate(collected[name]) for name in names]
    unit_mean = [g.mean(axis=0) for g in per_layer]
    intact, scores = _lesion_scores(model, x, y, names if lesions else [], batch_size,
                                    progress_bar)
    lesion_loss = [s["loss"] for s in scores] if lesions else [None] * len(names)
    lesion_acc = [s["accuracy"] for s in scores] if lesions else [None] * len(names)
    return GateResult(
        model_name=model.name, n_examples=len(x), block_names=names,
        gate_threshold=gate_threshold, idle_error_increase=idle_error_increase,
        mean_gate=[float(g.mean()) for g in per_layer],
        example_std=[float(g.std(axis=0).mean()) for g in per_layer],
        idle_unit_fraction=[float((u < gate_threshold).mean()) for u in unit_mean],
        unit_mean_gate=[u.tolist() for u in unit_mean],
        intact_loss=intact["loss"], intact_accuracy=intact["accuracy"],
        lesion_loss=lesion_loss, lesion_accuracy=lesion_acc)
