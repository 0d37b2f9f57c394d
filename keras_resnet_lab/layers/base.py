"""The part every block shares: shortcut, drop-path, scaling, and the ``y = shortcut + F`` call.

A block is one Keras layer computing ``y = post(shortcut(x) + drop_path(s * F(x)))``. Subclasses
only say how the branch ``F`` is made (:meth:`_build_branch`) and computed (:meth:`_branch`);
this class owns everything else (a subclass defines ``_build_branch(in_channels)`` and
``_branch(x, pre, training)``), so every block family exposes the same parts to the analyses:
``shortcut(x)``, ``residual(x)`` (the scaled branch ``s * F(x)``) and ``call(x)``.

The convolutions' conventions (symmetric padding, strided 1x1 as subsampling) are
``layers/conv.py``'s; how ``norm(conv(x))`` is computed at inference (the batch norm folded
into the convolution) is ``layers/fusion.py``'s.
"""

import math
import zlib

import keras
from keras import ops

from keras_resnet_lab._checks import (
    INT32_MAX,
    boolean,
    is_int,
    keras_object,
    memory,
    number_in,
    one_of,
    positive_int,
)
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization
from keras_resnet_lab.layers.conv import Conv2D, symmetric_padding
from keras_resnet_lab.layers.drop_path import drop_path
from keras_resnet_lab.layers.fusion import conv_norm

SHORTCUTS = ("A", "B", "C")
FORMS = ("conv", "dense")
NORMALIZATIONS = ("batch", "none")


class BlockBase(keras.layers.Layer):
    """Base of the residual-type blocks (not used directly).

    Args:
        filters: output channels (conv form) or units (dense form).
        strides: spatial stride of the block (conv form only; 1 for dense).
        form: ``"conv"`` (NHWC images) or ``"dense"`` (feature vectors, the MLP experiments).
        shortcut: ``"A"`` parameter-free (strided identity, zero-padded channels), ``"B"``
            projection only when the shape changes, ``"C"`` always a projection.
        plain: if True the block has no shortcut at all: ``y = post(F(x))`` (the plain twin).
        residual_scale: constant ``s`` in (0, 1] multiplying the branch before the addition
            (Szegedy et al., arXiv 1602.07261).
        learnable_scale: multiply the branch by a learned scalar ``alpha`` as well (ReZero,
            arXiv 2003.04887; with ``normalization="none"`` this is SkipInit, arXiv 2002.10444).
        learnable_scale_init: initial ``alpha`` (0: the block starts as its shortcut).
        avg_down: a strided projection shortcut average-pools first and then projects with a
            stride-1 1x1 convolution (ResNet-D, "Bag of Tricks", arXiv 1812.01187).
        drop_path_rate: probability of dropping the branch per example while training
            (stochastic depth, arXiv 1603.09382); inactive at inference.
        normalization: ``"batch"`` or ``"none"``.
        bn_momentum, bn_epsilon: batch-normalization settings.
        use_bias: add a bias to the convolutions that no normalization follows.
        activation: activation name or callable.
        kernel_initializer, kernel_regularizer: for every convolution / dense kernel.
        seed: seed of the drop-path noise.
    """

    def __init__(self, filters, strides=1, form="conv", shortcut="B", plain=False,
                 residual_scale=1.0, drop_path_rate=0.0, normalization="batch",
                 bn_momentum=0.9, bn_epsilon=1e-5, use_bias=False, activation="relu",
                 kernel_initializer="he_normal", kernel_regularizer=None, seed=None,
                 learnable_scale=False, learnable_scale_init=0.0, avg_down=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.strides = positive_int("strides", strides, INT32_MAX, "TensorFlow's int32 sizes")
        self.form = one_of("form", form, FORMS)
        if self.form == "dense" and self.strides != 1:
            raise ValueError(f"`strides` must be 1 for form='dense', got {strides!r}.")
        self.shortcut_type = one_of("shortcut", shortcut, SHORTCUTS)
        self.plain = boolean("plain", plain)
        self.residual_scale = number_in("residual_scale", residual_scale, 0.0, 1.0, low_open=True)
        self.drop_path_rate = number_in("drop_path_rate", drop_path_rate, 0.0, 1.0,
                                        high_open=True)
        if self.plain and self.drop_path_rate > 0:
            raise ValueError("`drop_path_rate` must be 0 for a plain block (plain=True has no "
                             f"shortcut to fall back on), got {drop_path_rate!r}.")
        self.normalization = one_of("normalization", normalization, NORMALIZATIONS)
        self.bn_momentum = number_in("bn_momentum", bn_momentum, 0.0, 1.0)
        self.bn_epsilon = number_in("bn_epsilon", bn_epsilon, 0.0, None, low_open=True)
        self.use_bias = boolean("use_bias", use_bias)
        self.activation = keras_object("activation", activation, keras.activations.get)
        self.kernel_initializer = keras_object("kernel_initializer", kernel_initializer,
                                               keras.initializers.get, allow_none=False)
        self.kernel_regularizer = keras_object("kernel_regularizer", kernel_regularizer,
                                               keras.regularizers.get)
        self.seed = seed_check("seed", seed, allow_none=True)
        self.learnable_scale = boolean("learnable_scale", learnable_scale)
        self.learnable_scale_init = number_in("learnable_scale_init", learnable_scale_init)
        if self.learnable_scale and self.plain:
            raise ValueError("`learnable_scale` needs a shortcut; a plain block (plain=True) "
                             "would start as a zero function.")
        self.avg_down = boolean("avg_down", avg_down)
        self.alpha = None
        self._noise = keras.random.SeedGenerator(seed) if self.drop_path_rate > 0 else None
        self.input_channels = None

    # -- construction helpers shared by the subclasses ------------------------------------
    def _make_conv(self, filters, kernel_size=1, strides=1, groups=1, normalized=True,
                   name=None, kernel_initializer=None, bias_initializer="zeros", bias=None,
                   dilation_rate=1):
        """A convolution (conv form) or dense layer (dense form) of this block.

        It has a bias when ``use_bias`` is set and no batch norm follows it (``normalized``
        says whether one would), unless ``bias`` forces the choice.
        """
        init = kernel_initializer or self.sublayer_initializer(name)
        if bias is None:
            bias = self.use_bias and not (normalized and self.normalization == "batch")
        if self.form == "dense":
            return keras.layers.Dense(filters, use_bias=bias, name=name, kernel_initializer=init,
                                      dtype=self.dtype_policy,
                                      bias_initializer=bias_initializer,
                                      kernel_regularizer=self.kernel_regularizer)
        common = dict(groups=groups, use_bias=bias, name=name, dtype=self.dtype_policy,
                      dilation_rate=dilation_rate, kernel_initializer=init,
                      bias_initializer=bias_initializer,
                      kernel_regularizer=self.kernel_regularizer)
        if kernel_size == 1:  # a strided 1x1 convolution subsamples (layers/conv.py)
            return Conv2D(filters, 1, subsample=strides, padding="same", **common)
        return Conv2D(filters, kernel_size, strides=strides,
                      padding="same" if strides == 1 else "valid", **common)

    def sublayer_initializer(self, name):
        """The block's kernel initializer for its sublayer ``name``, drawing its own values.

        A Keras 3 random initializer fixes its seed when it is created, so one instance returns
        the same values at every call for the same shape: sharing it, same-shaped kernels of a
        block (``conv1``/``conv2`` of a basic block, a highway gate and its ``H``) would start
        out identical. Each sublayer gets a copy seeded with the instance's seed plus a stable
        hash of its name: reproducible, independent of the order the sublayers are made in
        (a plain twin's kernels equal its residual network's), and drawing nothing from the
        global random state.
        """
        init = self.kernel_initializer
        seed = getattr(init, "seed", None)
        if name is None or not is_int(seed):
            return init  # deterministic (zeros, ...) or a SeedGenerator: new values per call
        config = init.get_config()
        config["seed"] = (seed + zlib.crc32(name.encode("utf-8"))) % (2 ** 31)
        return type(init).from_config(config)

    def _make_norm(self, name, gamma_initializer="ones"):
        """A batch normalization of this block, or None when ``normalization='none'``."""
        if self.normalization == "none":
            return None
        return FusedBatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                                       name=name, dtype=self.dtype_policy,
                                       gamma_initializer=gamma_initializer)

    @staticmethod
    def _conv(layer, x):
        """``layer(x)``, padded symmetrically when strided (as in He et al. and torch)."""
        return layer(symmetric_padding(layer, x))

    def _norm(self, layer, x, training):
        return x if layer is None else layer(x, training=training)

    #: Fold each convolution's batch norm into it at inference (``layers/fusion.py``); False
    #: runs them as two layers (the same function, one rounding apart). Class-wide
    #: (``BlockBase.fold_batch_norm = False``) or per block.
    fold_batch_norm = True

    def _conv_norm(self, conv, norm, x, training):
        """``norm(conv(x))`` (``conv`` padded as in :meth:`_conv`), computed by
        :func:`keras_resnet_lab.layers.fusion.conv_norm`."""
        return conv_norm(conv, norm, symmetric_padding(conv, x), training,
                         fold=self.fold_batch_norm)

    # -- shortcut --------------------------------------------------------------------------
    def _needs_projection(self, in_channels):
        if self.plain:
            return False
        if self.shortcut_type == "C":
            return True
        if self.shortcut_type == "B":
            return in_channels != self.filters or self.strides != 1
        return False

    def _projection_normalized(self):
        """Whether a normalization follows the projection (v1 style); v2 overrides."""
        return True

    def _build_shortcut(self, in_channels):
        if self.shortcut_type == "A" and in_channels > self.filters and not self.plain:
            raise ValueError(
                f"shortcut='A' can zero-pad channels but not drop them: the input has "
                f"{in_channels} channels and `filters` is {self.filters}; use shortcut='B'.")
        self.projection = None
        self.projection_norm = None
        self.subsample = None
        if self._needs_projection(in_channels):
            normed = self._projection_normalized()
            pooled = self.avg_down and self.strides > 1
            if pooled:
                self.subsample = keras.layers.AveragePooling2D(
                    self.strides, self.strides, padding="same", name="shortcut_avg_pool",
                    dtype=self.dtype_policy)
            self.projection = self._make_conv(self.filters, 1, 1 if pooled else self.strides,
                                              normalized=normed, name="shortcut_conv")
            if normed:
                self.projection_norm = self._make_norm("shortcut_bn")
        elif self.strides > 1 and not self.plain:
            self.subsample = keras.layers.MaxPooling2D(1, self.strides, name="shortcut_pool",
                                                       dtype=self.dtype_policy)

    def _shortcut(self, x, pre, training):
        """The shortcut path; ``pre`` is the pre-activated input (v2 projections read it)."""
        if self.projection is not None:
            source = pre if self.subsample is None else self.subsample(pre)
            return self._conv_norm(self.projection, self.projection_norm, source, training)
        if self.subsample is not None:
            x = self.subsample(x)
        extra = self.filters - int(x.shape[-1])
        if extra > 0:
            x = ops.pad(x, ((0, 0),) * (len(x.shape) - 1) + ((0, extra),))
        return x

    # -- the call ------------------------------------------------------------------------
    def _preactivate(self, x, training):
        """Computation shared by both paths before they split (v2's BN + activation)."""
        return x

    def _post(self, y):
        """Computation after the addition (v1's activation)."""
        return y

    # -- size estimate (the memory guard) ---------------------------------------------------
    def _kernels(self, in_channels):
        """``[(in, out, kernel_size, groups), ...]``: the branch's convolutions (or dense
        layers) on ``in_channels`` inputs, for :meth:`estimate_size`; every block class
        defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define _kernels(in_channels) "
                                  "for the memory guard (estimate_size)")

    #: Block arguments the memory guard's message lists (those that set the size).
    _size_arguments = ("filters", "kernel_size")

    def estimate_size(self, input_shape):
        """Estimated ``(parameters, activations)`` of the block on inputs of ``input_shape``
        (no batch axis; activation values for one example), from the arguments alone.

        Nothing is built: :meth:`build` and the network builders check the estimate with
        :func:`keras_resnet_lab._checks.memory` before allocating any weight. Sizes left open
        (None) count as 1.

        Example:
            >>> ResidualBlock(64).estimate_size((8, 8, 64))  # two 3x3 convolutions
            (74240, 20480)
        """
        input_shape = tuple(input_shape)
        in_channels = int(input_shape[-1])
        output = self.compute_output_shape((1,) + input_shape)[1:]
        positions = math.prod(1 if d is None else int(d) for d in output[:-1])
        parameters = 0
        activations = math.prod(1 if d is None else int(d) for d in input_shape)
        kernels = list(self._kernels(in_channels))
        if self._needs_projection(in_channels):
            kernels.append((in_channels, self.filters, 1, 1))
        for cin, cout, kernel, groups in kernels:
            spatial = kernel * kernel if self.form == "conv" else 1
            parameters += spatial * cin * cout // groups + 4 * cout  # kernel; norm or bias
            activations += 2 * positions * cout  # the output and its normalized copy
        return parameters, activations * getattr(self, "steps", 1)

    def _check_memory(self, input_shape):
        parameters, activations = self.estimate_size(input_shape)
        arguments = {a: getattr(self, a) for a in self._size_arguments if hasattr(self, a)}
        arguments["input channels"] = input_shape[-1]
        memory(f"{type(self).__name__} '{self.name}'", parameters, activations, arguments)

    def build(self, input_shape):
        rank = 4 if self.form == "conv" else 2
        if len(input_shape) != rank or input_shape[-1] is None:
            expected = "(batch, height, width, channels)" if rank == 4 else "(batch, features)"
            raise ValueError(f"{type(self).__name__} '{self.name}' (form={self.form!r}) expects "
                             f"inputs of shape {expected} with known channels, got "
                             f"{tuple(input_shape)}.")
        self._check_memory(tuple(input_shape)[1:])
        self.input_channels = int(input_shape[-1])
        # Keras checks every later call against this: rank and channels, with a clear error.
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={-1: self.input_channels})
        self._build_shortcut(self.input_channels)
        self._build_branch(self.input_channels)
        if self.learnable_scale:
            self.alpha = self.add_weight(
                name="alpha", shape=(),
                initializer=keras.initializers.Constant(self.learnable_scale_init))
        # Build every sub-layer by tracing the call once on a symbolic input.
        self._forward(keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype), False)

    def _forward(self, x, training):
        pre = self._preactivate(x, training)
        branch = self._branch(x, pre, training)
        if self.plain:
            return self._post(branch)
        branch = self._scale(branch)
        branch = drop_path(branch, self.drop_path_rate, self._noise, training)
        return self.merge(self._shortcut(x, pre, training), branch)

    def call(self, x, training=None):
        self._check_dtype(x)
        return self._forward(x, training)

    def _check_dtype(self, x):
        if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype)):
            raise ValueError(f"{type(self).__name__} '{self.name}' expects floating-point "
                             f"inputs, got dtype {keras.backend.standardize_dtype(x.dtype)}; "
                             "cast images to float32 first.")

    def _ensure_built(self, x):
        if not self.built:
            self.build(tuple(x.shape))

    def shortcut(self, x, training=False):
        """The shortcut path alone: what the block outputs when its branch is deleted."""
        if self.plain:
            raise ValueError(f"block '{self.name}' is plain (plain=True): it has no shortcut.")
        self._ensure_built(x)
        return self._shortcut(x, self._preactivate(x, training), training)

    def residual(self, x, training=False):
        """The branch ``s * F(x)`` that the block adds to its shortcut (no drop-path)."""
        self._ensure_built(x)
        branch = self._branch(x, self._preactivate(x, training), training)
        return branch if self.plain else self._scale(branch)

    def _scale(self, branch):
        if self.residual_scale != 1.0:
            branch = branch * self.residual_scale
        if self.alpha is not None:
            branch = branch * ops.cast(self.alpha, branch.dtype)
        return branch

    def merge(self, shortcut, residual):
        """Combine the two paths as the block does: ``post(shortcut + residual)``.

        ``block.merge(block.shortcut(x), block.residual(x))`` equals ``block(x)`` at
        inference; analyses pass modified paths (``stop_gradient`` on one of them, a zero
        branch ...) to take the block apart without changing its code.
        """
        return self._post(shortcut + residual)

    def compute_output_shape(self, input_shape):
        if self.form == "dense":
            return tuple(input_shape[:-1]) + (self.filters,)
        batch, height, width = input_shape[:3]
        return (batch, _strided(height, self.strides), _strided(width, self.strides),
                self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, strides=self.strides, form=self.form,
            shortcut=self.shortcut_type, plain=self.plain, residual_scale=self.residual_scale,
            drop_path_rate=self.drop_path_rate, normalization=self.normalization,
            bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, use_bias=self.use_bias,
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            seed=self.seed, learnable_scale=self.learnable_scale,
            learnable_scale_init=self.learnable_scale_init, avg_down=self.avg_down)
        return config


def _strided(size, stride):
    return None if size is None else int(math.ceil(size / stride))
