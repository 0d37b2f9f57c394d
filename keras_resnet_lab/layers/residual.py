"""Residual blocks: basic and bottleneck, v1 and v2, grouped, wide, SE, multi-branch."""

import keras
from keras import ops

from keras_resnet_lab._checks import INT32_MAX, boolean, count, is_int, number_in, positive_int
from keras_resnet_lab.layers.base import BlockBase
from keras_resnet_lab.layers.squeeze_excite import SqueezeExcite


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class ResidualBlock(BlockBase):
    """A residual block ``y = shortcut(x) + F(x)`` as one Keras layer.

    Post-activation (v1, He et al. 2015, arXiv 1512.03385): ``y = relu(shortcut(x) + F(x))``
    with ``F = conv-bn-relu-...-conv-bn``. Pre-activation (v2, He et al. 2016, arXiv
    1603.05027): ``y = shortcut(x) + F(x)`` with ``F = bn-relu-conv-...-conv``; a v2
    projection shortcut reads the pre-activated input. Basic blocks are two ``k x k``
    convolutions; bottleneck blocks ``1x1 -> 3x3 -> 1x1``. The inner width is
    ``filters * width`` (basic) or ``filters // 4 * width`` (bottleneck), so ``width`` gives wide
    ResNets (arXiv 1605.07146) and, with ``groups``, ResNeXt (arXiv 1611.05431).

    Args:
        filters: output channels (or units, ``form="dense"``).
        kernel_size: size of the spatial convolutions (3).
        strides: stride of the block; applied to the 3x3 convolution (torchvision's "v1.5"),
            or to the first 1x1 of a bottleneck when ``stride_in_1x1=True`` (the original
            Caffe/keras.applications ResNet v1).
        bottleneck: bottleneck (1x1, 3x3, 1x1) instead of basic (3x3, 3x3).
        preact: pre-activation v2 instead of post-activation v1.
        width: multiplier of the inner width (> 0).
        groups: groups of the 3x3 convolution (cardinality); must divide the inner width.
        se_ratio: squeeze-excite ratio in (0, 1]; 0 disables it (arXiv 1709.01507).
        zero_init_residual: start the branch at zero (last BN gamma = 0, or the last
            convolution's kernel = 0 when no BN follows it), so the block starts as its shortcut.
        branches: number of parallel residual branches summed onto the shortcut
            (multi-residual networks, arXiv 1609.05672).
        stride_in_1x1: see ``strides``.
        dilation_rate: dilation of the spatial convolutions (dense-prediction backbones keep
            resolution and dilate instead of striding; needs ``strides=1``).
        **kwargs: ``form``, ``shortcut``, ``plain``, ``residual_scale``, ``drop_path_rate``,
            ``normalization``, ``bn_momentum``, ``bn_epsilon``, ``use_bias``, ``activation``,
            ``kernel_initializer``, ``kernel_regularizer``, ``seed`` as in ``BlockBase``, and the
            usual Keras layer arguments (``name``, ``dtype``).

    Example:
        >>> inputs = keras.Input((32, 32, 16))
        >>> y = ResidualBlock(32, strides=2, shortcut="A", name="stage2_block1")(inputs)
        >>> tuple(y.shape)
        (None, 16, 16, 32)
    """

    def __init__(self, filters, kernel_size=3, strides=1, bottleneck=False, preact=False,
                 width=1.0, groups=1, se_ratio=0.0, zero_init_residual=False, branches=1,
                 stride_in_1x1=False, dilation_rate=1, **kwargs):
        super().__init__(filters, strides=strides, **kwargs)
        self.kernel_size = positive_int("kernel_size", kernel_size, INT32_MAX,
                                        "TensorFlow's int32 sizes")
        self.bottleneck = boolean("bottleneck", bottleneck)
        self.preact = boolean("preact", preact)
        self.width = number_in("width", width, 0.0, None, low_open=True)
        self.groups = positive_int("groups", groups)
        self.se_ratio = number_in("se_ratio", se_ratio, 0.0, 1.0)
        self.zero_init_residual = boolean("zero_init_residual", zero_init_residual)
        self.branches = count("branches", branches)
        self.stride_in_1x1 = boolean("stride_in_1x1", stride_in_1x1)
        self.dilation_rate = positive_int("dilation_rate", dilation_rate, INT32_MAX,
                                          "TensorFlow's int32 sizes")
        if self.dilation_rate > 1 and (self.strides > 1 or self.form == "dense"):
            raise ValueError(f"`dilation_rate`={dilation_rate!r} needs strides=1 and "
                             f"form='conv' (got strides={self.strides}, form={self.form!r}).")
        if self.bottleneck and self.filters < 4:
            raise ValueError(f"`filters` must be >= 4 for a bottleneck block (inner width is "
                             f"filters // 4), got {filters!r}.")
        inner = (self.filters // 4 if self.bottleneck else self.filters) * self.width
        if inner > 2 ** 62:  # also an infinite product
            raise ValueError(f"`width`={width!r} times {self.filters} filters gives an inner "
                             f"width of {inner:.3g} channels; it must be below 2**62.")
        self.inner_filters = max(1, int(round(inner)))
        if self.inner_filters % self.groups:
            raise ValueError(f"`groups`={self.groups} must divide the inner width "
                             f"{self.inner_filters} (filters={self.filters}, width={self.width}, "
                             f"bottleneck={self.bottleneck}).")
        if self.groups > 1 and self.form == "dense":
            raise ValueError(f"`groups` must be 1 for form='dense', got {groups!r}.")

    # -- structure ---------------------------------------------------------------------
    def _unit_specs(self):
        """(filters, kernel, strides, groups) of each convolution of one branch."""
        s, k, inner = self.strides, self.kernel_size, self.inner_filters
        if not self.bottleneck:
            return [(inner, k, s, 1), (self.filters, k, 1, 1)]
        s1, s3 = (s, 1) if self.stride_in_1x1 else (1, s)
        return [(inner, 1, s1, 1), (inner, 3, s3, self.groups), (self.filters, 1, 1, 1)]

    def _projection_normalized(self):
        return not self.preact

    _size_arguments = ("filters", "kernel_size", "width", "groups", "branches")

    def _kernels(self, in_channels):
        kernels = []
        for _ in range(self.branches):
            channels = in_channels
            for filters, kernel, _, groups in self._unit_specs():
                kernels.append((channels, filters, kernel, groups))
                channels = filters
            if self.se_ratio > 0:
                hidden = max(1, int(round(self.filters * self.se_ratio)))
                kernels += [(self.filters, hidden, 1, 1), (hidden, self.filters, 1, 1)]
        return kernels

    def _build_branch(self, in_channels):
        # Flat lists (branch after branch): Keras saves flat lists of layers reliably.
        specs = self._unit_specs()
        last = len(specs) - 1
        self.pre_norm = self._make_norm("preact_bn") if self.preact else None
        self.convs, self.norms, self.se_layers = [], [], []
        for b in range(self.branches):
            prefix = "" if self.branches == 1 else f"branch{b + 1}_"
            for i, (filters, kernel, strides, groups) in enumerate(specs):
                normed = not self.preact or i < last
                zero_kernel = self.zero_init_residual and i == last and (
                    not normed or self.normalization == "none")
                self.convs.append(self._make_conv(
                    filters, kernel, strides, groups, normalized=normed,
                    name=f"{prefix}conv{i + 1}",
                    dilation_rate=self.dilation_rate if kernel > 1 else 1,
                    kernel_initializer="zeros" if zero_kernel else None))
                if normed and self.normalization == "batch":
                    gamma = "zeros" if self.zero_init_residual and i == last else "ones"
                    self.norms.append(self._make_norm(f"{prefix}bn{i + 1}", gamma))
            if self.se_ratio > 0:
                self.se_layers.append(SqueezeExcite(self.se_ratio, name=f"{prefix}se",
                                                    dtype=self.dtype_policy))

    def branch_layers(self, index=0):
        """The (convolutions, batch norms, squeeze-excite or None) of branch ``index``."""
        n_conv = len(self.convs) // self.branches
        n_norm = len(self.norms) // self.branches
        se = self.se_layers[index] if self.se_layers else None
        return (self.convs[index * n_conv:(index + 1) * n_conv],
                self.norms[index * n_norm:(index + 1) * n_norm], se)

    # -- computation -------------------------------------------------------------------
    def _preactivate(self, x, training):
        if not self.preact:
            return x
        return self.activation(self._norm(self.pre_norm, x, training))

    def _post(self, y):
        return y if self.preact else self.activation(y)

    def branch(self, x, index=0, training=False):
        """Branch ``F_index(x)`` alone (unscaled); ``index`` < ``branches``."""
        if not is_int(index) or not 0 <= index < self.branches:
            raise ValueError(f"`index` must be in [0, {self.branches}), got {index!r}.")
        self._ensure_built(x)
        return self._one_branch(int(index), self._preactivate(x, training), training)

    def _one_branch(self, b, h, training):
        convs, norms, se = self.branch_layers(b)
        last = len(convs) - 1
        for i, conv in enumerate(convs):
            h = self._conv_norm(conv, norms[i] if i < len(norms) else None, h, training)
            if i < last:
                h = self.activation(h)
        return h if se is None else se(h)

    def _branch(self, x, pre, training):
        total = self._one_branch(0, pre, training)
        for b in range(1, self.branches):
            total = ops.add(total, self._one_branch(b, pre, training))
        return total

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, bottleneck=self.bottleneck,
                      preact=self.preact, width=self.width, groups=self.groups,
                      se_ratio=self.se_ratio, zero_init_residual=self.zero_init_residual,
                      branches=self.branches, stride_in_1x1=self.stride_in_1x1,
                      dilation_rate=self.dilation_rate)
        return config


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class MultiResidualBlock(ResidualBlock):
    """A multi-residual block ``y = shortcut(x) + sum_k F_k(x)`` (arXiv 1609.05672).

    The same block as :class:`ResidualBlock` with ``branches`` parallel branches of identical
    shape and separate weights; an unrolled network of ``n`` such blocks has ``(k + 1) ** n``
    paths. ``branch(x, i)`` returns one branch.

    Args:
        filters: output channels.
        branches: number of residual branches k (>= 1, default 2).
        **kwargs: every other :class:`ResidualBlock` argument.

    Example:
        >>> y = MultiResidualBlock(16, branches=4)(keras.ops.ones((2, 8, 8, 16)))
    """

    def __init__(self, filters, branches=2, **kwargs):
        super().__init__(filters, branches=branches, **kwargs)
