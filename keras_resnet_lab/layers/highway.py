"""Highway blocks: a learned gate between transforming and carrying (arXiv 1505.00387)."""

import numbers

import keras
from keras import ops

from keras_resnet_lab._checks import number_in, positive_int
from keras_resnet_lab.layers.base import BlockBase


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class HighwayBlock(BlockBase):
    """A highway layer ``y = T(x) * H(x) + (1 - T(x)) * C(x)`` as one Keras layer.

    ``H`` is a convolution (or dense layer) with normalization and activation, the transform
    gate ``T = sigmoid(W_T x + b_T)`` has its bias initialized negative so that the layer starts
    by mostly carrying (Srivastava, Greff & Schmidhuber 2015, arXiv 1505.00387 / 1507.06228),
    and the carry ``C`` is the identity, or a projection when channels or stride change
    (``shortcut`` as in :class:`ResidualBlock`). Written as ``y = C(x) + T(x) * (H(x) - C(x))``
    (the gated update of Greff et al., arXiv 1612.07771), the block has the same parts as a
    residual block: ``shortcut(x) = C(x)`` and ``residual(x) = T(x) * (H(x) - C(x))``, so
    deleting the branch sets ``T = 0`` (the layer only carries).

    Args:
        filters: output channels (or units, ``form="dense"``).
        kernel_size: size of the ``H`` and gate convolutions.
        gate_bias: initial bias of the transform gate (negative: -1 to -3 for nets of depth
            about 10 to 30 in the paper).
        **kwargs: ``strides``, ``form``, ``shortcut``, ``plain`` (``y = H(x)``),
            ``residual_scale``, ``drop_path_rate``, ``normalization``, ``activation`` ... as in
            ``BlockBase``.

    Example:
        >>> y = HighwayBlock(16, gate_bias=-2.0)(keras.ops.ones((2, 8, 8, 16)))
    """

    def __init__(self, filters, kernel_size=3, gate_bias=-2.0, **kwargs):
        super().__init__(filters, **kwargs)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.gate_bias = number_in("gate_bias", gate_bias)

    def _kernels(self, in_channels):
        kernel = (in_channels, self.filters, self.kernel_size, 1)
        return [kernel] if self.plain else [kernel, kernel]

    def _build_branch(self, in_channels):
        k, s = self.kernel_size, self.strides
        self.transform_conv = self._make_conv(self.filters, k, s, name="transform_conv")
        self.transform_norm = self._make_norm("transform_bn")
        self.gate_conv = None
        if not self.plain:
            self.gate_conv = self._make_conv(
                self.filters, k, s, normalized=False, name="gate_conv", bias=True,
                bias_initializer=keras.initializers.Constant(self.gate_bias))

    def transform(self, x, training=False):
        """``H(x)``: the candidate the gate lets through."""
        self._ensure_built(x)
        return self._transform(x, training)

    def transform_gate(self, x):
        """``T(x)`` in (0, 1): how much of ``H(x)`` replaces the carry, per unit."""
        if self.plain:
            raise ValueError(f"block '{self.name}' is plain (plain=True): it has no gate.")
        self._ensure_built(x)
        return self._gate(x)

    def with_gate(self, x, gate, training=False):
        """The block's output with its transform gate replaced by ``gate``.

        ``y = C(x) + gate * (H(x) - C(x))`` (scaled like the branch): ``gate=0`` is the lesion
        of Srivastava et al. (arXiv 1507.06228), where the layer only carries, ``y = C(x)``
        exactly; ``gate=1`` passes ``H(x)`` alone; ``gate=self.transform_gate(x)`` is the
        block itself (at inference).

        Args:
            x: the block's input.
            gate: a number in [0, 1] or a tensor broadcastable to ``T(x)``.
            training: passed to the normalizations.

        Example:
            >>> carried = block.with_gate(x, 0.0)  # == block.shortcut(x)
        """
        if self.plain:
            raise ValueError(f"block '{self.name}' is plain (plain=True): it has no gate.")
        if isinstance(gate, (numbers.Real, bool)):
            gate = number_in("gate", gate, 0.0, 1.0)
        self._ensure_built(x)
        pre = self._preactivate(x, training)
        carry = self._shortcut(x, pre, training)
        return self.merge(carry, self._scale(gate * (self._transform(x, training) - carry)))

    def _transform(self, x, training):
        h = self._conv_norm(self.transform_conv, self.transform_norm, x, training)
        return self.activation(h)

    def _gate(self, x):
        return ops.sigmoid(self._conv(self.gate_conv, x))

    def _branch(self, x, pre, training):
        h = self._transform(x, training)
        if self.plain:
            return h
        return self._gate(x) * (h - self._shortcut(x, pre, training))

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, gate_bias=self.gate_bias)
        return config

