"""Weight-shared residual stacks: one residual block applied ``n`` times (the RNN view).

Liao & Poggio (arXiv 1604.03640) read a ResNet stage as an unrolled recurrent network: the
same block applied over and over, ``h_{i+1} = h_i + F(h_i)``. Jastrzebski et al. (arXiv
1710.04773) found that sharing the weights of a ResNet's blocks *naively* (one batch norm for
every step) makes activations and gradients explode at initialization and overfits, and that it
is fixed by batch norm that is *not* shared: separate statistics per step (what matters most),
separate gamma/beta per step, and gamma initialized to 0.1.
"""

import keras

from keras_resnet_lab._checks import (
    boolean,
    count,
    is_int,
    number_in,
    positive_int,
    same,
)
from keras_resnet_lab.layers.base import BlockBase
from keras_resnet_lab.layers.drop_path import drop_path


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class SharedResidualStack(BlockBase):
    """One pre-activation residual block applied ``steps`` times with shared weights.

    Step ``i`` computes ``h_{i+1} = h_i + s * F(h_i)`` with
    ``F = bn_a - act - conv1 - bn_b - act - conv2`` (the basic block of He et al. 2016,
    arXiv 1603.05027). The two convolutions are shared by every step; the batch norms are either
    one pair per step (``norm_per_step=True``: own statistics and own gamma/beta, the fix of
    Jastrzebski et al., arXiv 1710.04773, and Liao & Poggio, arXiv 1604.03640) or one pair for
    all steps (``norm_per_step=False``: the naive shared block). Every batch norm's gamma starts
    at ``gamma_init`` (0.1 in Jastrzebski et al.; the naive block of the paper uses 1).

    The whole stack is **one chain block**: in a model it is one layer named
    ``stage{s}_block{b}``, so ``blocks(model)``, surgery (drop, reorder, repeat), lesions and
    export treat it as a unit, with ``shortcut(x) = x`` and ``residual(x) = h_n - x`` (the
    sum of every step's scaled branch). Its steps are exposed by :meth:`step_outputs`
    (``[h_0, ..., h_n]``) and :meth:`step_residual`; ``keras_resnet_lab.analysis.norms``
    expands a stack into its steps that way.

    Every step keeps the shape, so the input must have ``filters`` channels (units) and
    ``strides`` must be 1; there is no plain form and no projection shortcut.

    Args:
        filters: channels (conv form) or units (dense form) of the input and of every step.
        steps: number of applications ``n`` of the block (>= 1).
        norm_per_step: one batch-norm pair per step (True) or one pair shared by all steps.
        gamma_init: initial gamma of every batch norm of the stack (> 0).
        kernel_size: size of the two convolutions (conv form).
        **kwargs: ``form``, ``residual_scale``, ``learnable_scale``, ``drop_path_rate`` (per
            step), ``normalization`` (``"none"`` has no batch norms at all), ``bn_momentum``,
            ``bn_epsilon``, ``use_bias``, ``activation``, ``kernel_initializer``,
            ``kernel_regularizer``, ``seed`` as in ``BlockBase``, and the Keras layer
            arguments (``name``, ``dtype``).

    Example:
        >>> inputs = keras.Input((8, 8, 16))
        >>> stack = SharedResidualStack(16, steps=4, name="stage1_block1")
        >>> y = stack(inputs)
        >>> len(stack.step_outputs(keras.ops.ones((2, 8, 8, 16))))  # h_0 .. h_4
        5
    """

    def __init__(self, filters, steps=2, norm_per_step=True, gamma_init=0.1, kernel_size=3,
                 **kwargs):
        for argument, allowed in (("strides", 1), ("plain", False)):
            if argument in kwargs and not same(kwargs[argument], allowed):
                raise ValueError(f"`{argument}` must be {allowed!r} for a SharedResidualStack "
                                 f"(every step keeps the shape and adds to its input), got "
                                 f"{kwargs[argument]!r}.")
        if same(kwargs.get("shortcut", "B"), "C"):
            raise ValueError("`shortcut` must be 'A' or 'B' for a SharedResidualStack (every "
                             "step's shortcut is the identity); got 'C'.")
        if boolean("avg_down", kwargs.get("avg_down", False)):
            raise ValueError("`avg_down` must be False for a SharedResidualStack (it never "
                             "downsamples).")
        super().__init__(filters, **kwargs)
        self.steps = count("steps", steps)
        self.norm_per_step = boolean("norm_per_step", norm_per_step)
        self.gamma_init = number_in("gamma_init", gamma_init, 0.0, None, low_open=True)
        self.kernel_size = positive_int("kernel_size", kernel_size)

    # -- structure ---------------------------------------------------------------------
    def _build_shortcut(self, in_channels):
        if in_channels != self.filters:
            raise ValueError(
                f"SharedResidualStack '{self.name}' applies one block repeatedly, so its input "
                f"must have `filters`={self.filters} channels, got {in_channels}; put a "
                "projecting block (or a 1x1 convolution) in front of it.")
        super()._build_shortcut(in_channels)

    _size_arguments = ("filters", "kernel_size", "steps")

    def _kernels(self, in_channels):
        return [(self.filters, self.filters, self.kernel_size, 1)] * 2

    def _build_branch(self, in_channels):
        gamma = keras.initializers.Constant(self.gamma_init)
        k = self.kernel_size
        self.conv1 = self._make_conv(self.filters, k, 1, name="conv1")
        self.conv2 = self._make_conv(self.filters, k, 1, normalized=False, name="conv2")
        # Flat list, step after step: [bn_a, bn_b] per step (or once when shared).
        self.norms = []
        if self.normalization == "batch":
            for i in range(self.steps if self.norm_per_step else 1):
                prefix = f"step{i + 1}_" if self.norm_per_step else ""
                self.norms.append(self._make_norm(f"{prefix}preact_bn", gamma))
                self.norms.append(self._make_norm(f"{prefix}bn1", gamma))

    def step_norms(self, step):
        """The batch norms used at one step.

        Args:
            step: 0-based step index, in ``[0, steps)``.

        Returns:
            ``(bn_a, bn_b)`` (before ``conv1`` and before ``conv2``); ``(None, None)`` when
            ``normalization="none"``. With ``norm_per_step=False`` every step gets the same pair.

        Example:
            >>> stack.step_norms(0)[0].gamma  # initialized to gamma_init
        """
        self._check_step(step)
        if not self.norms:
            return None, None
        j = step if self.norm_per_step else 0
        return self.norms[2 * j], self.norms[2 * j + 1]

    def _check_step(self, step):
        if not is_int(step) or not 0 <= step < self.steps:
            raise ValueError(f"`step` must be an int in [0, {self.steps}), got {step!r}.")

    # -- computation -------------------------------------------------------------------
    def _step_branch(self, step, h, training):
        """``s * F(h)`` of step ``step`` (0-based), without drop-path."""
        norm_a, norm_b = self.step_norms(step)
        r = self.activation(self._norm(norm_a, h, training))
        r = self.activation(self._norm(norm_b, self._conv(self.conv1, r), training))
        return self._scale(self._conv(self.conv2, r))

    def _run(self, x, training, drop):
        states = [x]
        for i in range(self.steps):
            branch = self._step_branch(i, states[-1], training)
            if drop:
                branch = drop_path(branch, self.drop_path_rate, self._noise, training)
            states.append(self.merge(states[-1], branch))
        return states

    def _forward(self, x, training):
        return self._run(x, training, drop=True)[-1]

    def _branch(self, x, pre, training):
        # The whole stack's change to its input, h_n - x (each step is scaled inside _run).
        return self._run(x, training, drop=False)[-1] - x

    def step_outputs(self, x, training=False):
        """The hidden states of the steps, without drop-path.

        Args:
            x: the stack's input.
            training: batch norms in training mode (batch statistics; this updates their
                moving statistics, as any training-mode call does).

        Returns:
            ``[h_0, h_1, ..., h_n]``: ``h_0 = x`` and ``h_n`` the stack's output.

        Example:
            >>> h = stack.step_outputs(x)
            >>> float(keras.ops.norm(h[-1]) / keras.ops.norm(h[0]))  # growth through the stack
        """
        self._ensure_built(x)
        return self._run(x, training, drop=False)

    def step_residual(self, x, step, training=False):
        """The scaled branch that one step adds to its input.

        Args:
            x: the step's input ``h_step``.
            step: 0-based step index, in ``[0, steps)``.
            training: batch norms in training mode.

        Returns:
            ``s * F(x)`` with the step's batch norms, so ``h_{step+1} = x + step_residual(x,
            step)``.

        Example:
            >>> r0 = stack.step_residual(x, 0)  # h_1 == x + r0
        """
        self._check_step(step)
        self._ensure_built(x)
        return self._step_branch(step, x, training)

    def residual(self, x, training=False):
        """``h_n - x``: what the whole stack adds to its shortcut (the identity), no drop-path."""
        self._ensure_built(x)
        return self._run(x, training, drop=False)[-1] - x

    def get_config(self):
        config = super().get_config()
        config.update(steps=self.steps, norm_per_step=self.norm_per_step,
                      gamma_init=self.gamma_init, kernel_size=self.kernel_size)
        return config

