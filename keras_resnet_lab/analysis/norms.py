"""Activation-norm growth ``||h_i|| / ||h_0||`` through a residual chain, and training stability.

A residual chain ``h_{i+1} = h_i + s * F_i(h_i)`` whose branches are not normalized adds a
branch about as large as its input at every block, so at initialization ``||h_L|| / ||h_0||``
grows exponentially with depth: about ``(1 + c s^2)^(L/2)``. Scaling the branch by ``s`` in
0.1-0.3 keeps it bounded (Szegedy et al., arXiv 1602.07261). A weight-shared stack whose batch
norm is shared naively grows faster than one with a batch norm per step whose gamma starts at 0.1
(Jastrzebski et al., arXiv 1710.04773; Liao & Poggio, arXiv 1604.03640).

:func:`hidden_states` and :func:`norm_growth` measure the growth through the blocks of any chain
model (a weight-shared stack is expanded into its steps) or through the steps of one stack
layer. :class:`LossRecorder` and :func:`training_stability` say whether a training run stayed
finite and bounded; the scaling and sharing reproductions share them.
"""

import contextlib
import dataclasses
import math

import keras
import numpy as np

from keras_resnet_lab._checks import boolean, examples, number_in, positive_int
from keras_resnet_lab.analysis._common import batches, progress
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.models.surgery import chain_steps, run_plan


@dataclasses.dataclass
class NormGrowthResult(Result):
    """``||h_i|| / ||h_0||`` at every hidden state of a chain (or of a stack's steps).

    ``names[i]`` names state ``h_i``: ``names[0]`` is the input of the first block (``"<first
    block>.input"``), then the output of each block (its name), or of each step of a
    weight-shared stack (``"<stack>.step<k>"``). ``ratio[i]`` is the mean over examples of
    ``||h_i|| / ||h_0||`` (one norm per example over all its features; examples with
    ``h_0 = 0`` have no ratio and are left out), ``ratio_std`` its standard deviation,
    ``mean_norm[i]`` the mean ``||h_i||``. ``training`` says whether the batch norms
    used batch statistics (what the first training step sees) or their moving statistics.
    """

    model_name: str
    n_examples: int
    training: bool
    names: list
    mean_norm: list
    ratio: list
    ratio_std: list

    figure_columns = 1

    @property
    def final_ratio(self):
        """``||h_L|| / ||h_0||`` (mean over examples) at the last hidden state."""
        return self.ratio[-1]

    def draw_on(self, ax, label=None, **style):
        """Plot the ratio against depth on ``ax`` (log scale); scripts overlay several runs."""
        depth = np.arange(len(self.ratio))
        ratio = np.array([np.nan if v is None else v for v in self.ratio], dtype=float)
        ax.plot(depth, ratio, label=label or self.model_name, **style)
        ax.set_yscale("log")
        ax.set(xlabel="hidden state i (0: input of the first block)",
               ylabel="||h_i|| / ||h_0||")
        ax.grid(alpha=0.3)

    def draw(self, axes):
        self.draw_on(axes[0], marker="o" if len(self.ratio) <= 40 else None)
        axes[0].set_title(f"Norm growth ({'batch' if self.training else 'moving'} statistics)")


def _states_of_stack(layer, x, training, prefix=""):
    states = layer.step_outputs(x, training=training)
    names = [f"{prefix}step{k}" for k in range(1, len(states))]
    return names, list(states[1:])


@contextlib.contextmanager
def _state_preserved(obj):
    """Restore ``obj``'s non-trainable variables (batch-norm moving statistics) on exit:
    a forward pass with ``training=True`` updates them, an analysis must not."""
    variables = list(obj.non_trainable_variables)
    saved = [np.array(v.numpy()) for v in variables]
    try:
        yield
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


def hidden_states(model, x, *, expand_stacks=True, training=False):
    """The hidden states ``h_0, ..., h_L`` of a residual chain on a batch ``x``.

    ``h_0`` is the input of the first block; then come the output of every block, or, with
    ``expand_stacks``, of every step of each weight-shared stack (a layer with
    ``step_outputs``, e.g. :class:`~keras_resnet_lab.layers.shared.SharedResidualStack`).
    Blocks are run without drop-path. With ``training=True`` the batch norms use batch
    statistics; their moving statistics are restored afterwards.

    Args:
        model: a chain model with blocks (see ``keras_resnet_lab.models.chain_steps``), or one
            stack layer (then ``h_0 = x`` and ``h_k`` is the output of step ``k``).
        x: a batch of inputs of the model (or of the stack).
        expand_stacks: list each step of a stack (True) or only the stack's output.
        training: run the batch norms in training mode.

    Returns:
        ``(names, states)``: a list of names and a list of tensors, ``L + 1`` each.

    Example:
        >>> names, states = hidden_states(model, x_test[:64])
        >>> names[:2]
        ['stage1_block1.input', 'stage1_block1']
    """
    if not isinstance(model, keras.Model) and hasattr(model, "step_outputs"):
        with _state_preserved(model):
            names, states = _states_of_stack(model, x, training)
        return ["input"] + names, [x] + states
    steps = chain_steps(model)
    if not any(step.block is not None for step in steps):
        raise ValueError(f"model '{model.name}' has no residual blocks named 'stage{{s}}_"
                         "block{b}'; norm growth is measured through a chain of blocks.")
    names, states = [], []

    def record(step, h):
        if not states:
            names.append(f"{step.name}.input")
            states.append(h)
        if expand_stacks and hasattr(step.operation, "step_outputs"):
            more_names, more = _states_of_stack(step.operation, h, training, f"{step.name}.")
        else:
            more_names, more = [step.name], [step(h, training=training)]
        names.extend(more_names)
        states.extend(more)
        return more[-1]

    with _state_preserved(model):
        run_plan(steps, x, training=training, block_fn=record)
    return names, states


def _check_inputs(model, x):
    if isinstance(model, keras.Model):
        expected, kind = tuple(model.inputs[0].shape[1:]), "model"
    else:
        if not model.built:
            raise ValueError(f"layer '{model.name}' is not built; call it on an input first.")
        rank = 4 if getattr(model, "form", "conv") == "conv" else 2
        expected, kind = (None,) * (rank - 2) + (model.input_channels,), "layer"
    if isinstance(x, tuple) and len(x) == 2:  # (x, y) data: the labels are not needed
        x = x[0]
    return examples("x", x, labels=None, shape=expected, model_name=model.name,
                    model_kind=kind)


def _norms(state):
    flat = np.asarray(state, dtype=np.float64).reshape(int(state.shape[0]), -1)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.linalg.norm(flat, axis=1)


def norm_growth(model, x, *, expand_stacks=True, training=False, batch_size=256,
                max_examples=None, progress_bar=False):
    """Mean ``||h_i|| / ||h_0||`` over examples at every hidden state of a residual chain.

    At initialization, unnormalized residual branches make the ratio grow exponentially with
    depth unless they are scaled down (Szegedy et al., arXiv 1602.07261); a naively shared
    stack grows faster than one with a batch norm per step (Jastrzebski et al., arXiv
    1710.04773). See :func:`hidden_states` for which states are measured.

    Args:
        model: a chain model, or one stack layer (a built layer with ``step_outputs``).
        x: inputs (an array, or an ``(x, y)`` pair whose labels are ignored).
        expand_stacks: measure every step of a weight-shared stack.
        training: batch norms in training mode (batch statistics); the model's moving
            statistics are left unchanged.
        batch_size: examples per forward pass (with ``training=True`` this is also the batch
            whose statistics the batch norms use).
        max_examples: use only the first examples of ``x``.
        progress_bar: show a progress bar.

    Returns:
        :class:`NormGrowthResult`.

    Example:
        >>> result = norm_growth(model, x_test[:256])
        >>> result.final_ratio  # ||h_L|| / ||h_0||
    """
    if not isinstance(model, keras.Model) and not hasattr(model, "step_outputs"):
        raise ValueError("`model` must be a chain keras.Model or a stack layer with "
                         f"`step_outputs`, got {type(model).__name__}.")
    expand_stacks = boolean("expand_stacks", expand_stacks)
    training = boolean("training", training)
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    x = _check_inputs(model, x)
    if max_examples is not None:
        x = x[:positive_int("max_examples", max_examples)]
    names, per_batch = None, []
    for lo, hi in progress(batches(len(x), batch_size), desc=f"norms {model.name}",
                           enabled=progress_bar):
        names, states = hidden_states(model, x[lo:hi], expand_stacks=expand_stacks,
                                      training=bool(training))
        per_batch.append(np.stack([_norms(s) for s in states], axis=1))
    norms = np.concatenate(per_batch)
    # An example whose h_0 is exactly zero (every unit of a narrow ReLU stem off) has no
    # ratio: it is left out (NaN when no example has one).
    defined = norms[:, 0] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = norms[defined] / norms[defined, :1]
    nan = np.full(norms.shape[1], np.nan)
    return NormGrowthResult(
        model_name=model.name, n_examples=len(x), training=bool(training), names=names,
        mean_norm=norms.mean(0).tolist(),
        ratio=(ratio.mean(0) if len(ratio) else nan).tolist(),
        ratio_std=(ratio.std(0) if len(ratio) else nan).tolist())


# -- training stability -------------------------------------------------------------------
@dataclasses.dataclass
class TrainingStability(Result):
    """Whether a training run stayed finite and bounded.

    ``losses`` are the training losses in order (one per batch from :class:`LossRecorder`);
    ``reference`` is the loss they are compared with (the chance-level loss
    ``ln(num_classes)`` when given, else the first loss). The run *diverged* when a loss was
    NaN or infinite (``first_nonfinite`` is its index) or the largest loss exceeded
    ``blowup_factor * reference`` (``peak_ratio = max(losses) / reference``).
    """

    losses: list
    reference: float
    blowup_factor: float
    finite: bool
    first_nonfinite: object
    peak_ratio: object
    final_loss: object
    diverged: bool

    figure_columns = 1

    def draw_on(self, ax, label=None, **style):
        """Plot the loss per batch (log scale) on ``ax``; the run is cut where it went
        non-finite (marked with a cross)."""
        losses = np.array([np.nan if v is None else v for v in self.losses], dtype=float)
        if len(losses) < 10:
            style.setdefault("marker", "o")
        line, = ax.plot(np.arange(len(losses)), losses, label=label, **style)
        if self.first_nonfinite is not None:
            ax.plot([self.first_nonfinite], [np.nanmax(losses) if np.isfinite(losses).any()
                                             else self.reference], "x", ms=10,
                    color=line.get_color())
        ax.set_yscale("log")
        ax.set(xlabel="training step", ylabel="training loss")
        ax.grid(alpha=0.3)

    def draw(self, axes):
        self.draw_on(axes[0])
        axes[0].axhline(self.reference * self.blowup_factor, color="gray", ls="--",
                        label="blow-up threshold")
        axes[0].set_title("diverged" if self.diverged else "stable")


def training_stability(losses, *, reference=None, blowup_factor=10.0):
    """Summarize a training run's losses: did they stay finite and below a blow-up bound?

    Args:
        losses: training losses in order (per batch or per epoch); NaN/inf allowed.
        reference: the loss to compare with, > 0 (e.g. ``math.log(num_classes)``, the loss of
            a uniform prediction); default: the first loss.
        blowup_factor: a loss above ``blowup_factor * reference`` counts as a blow-up (> 1).

    Returns:
        :class:`TrainingStability`.

    Example:
        >>> training_stability([2.3, 1.9, float("nan")]).diverged
        True
        >>> training_stability([2.3, 1.2, 0.8], reference=math.log(10)).peak_ratio < 1.0
        True
    """
    values = np.asarray(list(losses), dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("`losses` is empty: record at least one training loss.")
    blowup_factor = number_in("blowup_factor", blowup_factor, 1.0, None, low_open=True)
    if reference is None:
        reference = float(values[0])
        if not math.isfinite(reference) or reference <= 0:
            raise ValueError(f"the first loss ({reference!r}) cannot serve as `reference`; "
                             "pass a positive `reference` (e.g. math.log(num_classes)).")
    reference = number_in("reference", reference, 0.0, None, low_open=True)
    bad = np.flatnonzero(~np.isfinite(values))
    first_bad = int(bad[0]) if bad.size else None
    finite_part = values[:first_bad] if first_bad is not None else values
    peak = float(finite_part.max() / reference) if finite_part.size else None
    diverged = first_bad is not None or (peak is not None and peak > blowup_factor)
    return TrainingStability(
        losses=values.tolist(), reference=reference, blowup_factor=blowup_factor,
        finite=first_bad is None, first_nonfinite=first_bad, peak_ratio=peak,
        final_loss=float(values[-1]), diverged=bool(diverged))


class LossRecorder(keras.callbacks.Callback):
    """A callback that records the training loss of every batch (for :func:`training_stability`).

    Keras reports a running mean of the loss over the epoch, weighted by batch size; the
    recorder recovers each batch's own loss from it (exact when the batches of an epoch have
    equal size, e.g. a training set cut to a multiple of the batch size). With
    ``stop_on_nonfinite`` it stops training at the first NaN/inf loss, as
    ``keras.callbacks.TerminateOnNaN`` does.

    Args:
        stop_on_nonfinite: stop training at the first non-finite loss.

    Example:
        >>> recorder = LossRecorder()
        >>> model.fit(x, y, epochs=2, callbacks=[recorder])  # doctest: +SKIP
        >>> recorder.stability(reference=math.log(10)).diverged  # doctest: +SKIP
    """

    def __init__(self, stop_on_nonfinite=True):
        super().__init__()
        self.stop_on_nonfinite = bool(stop_on_nonfinite)
        self.losses = []
        self._previous_mean = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        if not logs or "loss" not in logs:
            return
        mean = float(logs["loss"])
        k = batch + 1
        loss = mean
        if k > 1 and math.isfinite(mean) and math.isfinite(self._previous_mean):
            loss = k * mean - (k - 1) * self._previous_mean
        elif k > 1 and math.isfinite(mean):
            loss = float("nan")  # a finite mean after a non-finite one cannot be recovered
        self._previous_mean = mean
        self.losses.append(float(loss))
        if self.stop_on_nonfinite and not math.isfinite(loss):
            self.model.stop_training = True

    def stability(self, *, reference=None, blowup_factor=10.0):
        """:func:`training_stability` of the recorded losses."""
        return training_stability(self.losses, reference=reference,
                                  blowup_factor=blowup_factor)
