"""The one general network assembler: stem, stages of named blocks, head.

Every builder of the library (ImageNet and CIFAR ResNets, plain twins, wide, ResNeXt,
highway, multi-residual, MLPs, and converted keras.applications models) describes its
network as a :class:`Stage` list and a stem, and lets :func:`build_network` assemble it.
"""

import contextlib
import contextvars
import dataclasses
import math
import random

import keras

from keras_resnet_lab._checks import (
    MAX_COUNT,
    boolean,
    count,
    is_int,
    keras_object,
    memory,
    number_in,
    one_of,
    positive_int,
    sequence,
    shape,
    shown,
    text,
)
from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization
from keras_resnet_lab.layers.drop_path import linear_drop_path_rates
from keras_resnet_lab.models.chain import block_name

POOLINGS = (None, "avg", "max")

#: Block arguments that set a network's size, listed by the memory guard's message.
_SIZE_KWARGS = ("width", "groups", "branches", "kernel_size", "steps", "se_ratio")

_SIZES = contextvars.ContextVar("keras_resnet_lab_size_arguments", default=())


@contextlib.contextmanager
def size_arguments(**arguments):
    """Within the block, :func:`build_network`'s memory guard lists ``arguments`` (the public
    builder's arguments that set the network's size) when it refuses a network.

    Example:
        >>> with size_arguments(depth=depth, k=k):
        ...     model = cifar_network(...)
    """
    token = _SIZES.set(_SIZES.get() + tuple(arguments.items()))
    try:
        yield
    finally:
        _SIZES.reset(token)


@dataclasses.dataclass
class Stage:
    """A stage: ``blocks`` blocks of ``filters`` outputs; the first (or, with
    ``stride_at_end``, the last) block has stride ``strides``. ``kwargs`` are extra keyword
    arguments of every block of the stage, ``overrides`` maps a 0-based block position to
    extra keyword arguments of that block."""

    filters: int
    blocks: int
    strides: int = 1
    stride_at_end: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)
    kwargs: dict = dataclasses.field(default_factory=dict)


def _block_kwargs(stages, block_kwargs, rates):
    """``kwargs`` of every block, in chain order."""
    index = 0
    for s, stage in enumerate(stages, start=1):
        for b in range(stage.blocks):
            strided = b == (stage.blocks - 1 if stage.stride_at_end else 0)
            kwargs = dict(block_kwargs)
            kwargs.update(filters=stage.filters, strides=stage.strides if strided else 1,
                          name=block_name(s, b + 1))
            if rates[index] > 0:
                kwargs["drop_path_rate"] = rates[index]
            kwargs.update(stage.kwargs)
            kwargs.update(stage.overrides.get(b, {}))
            yield kwargs
            index += 1


def _probe_key(kwargs):
    """Blocks with equal keys have the same arguments (but their names and drop-path rates):
    one probe estimates them all. Objects other than plain values count by identity."""
    plain = (str, int, float, bool, type(None))
    return tuple((k, (v > 0) if k == "drop_path_rate" else v if isinstance(v, plain) else id(v))
                 for k, v in kwargs.items() if k != "name")


def estimate_network(stem, stages, block_class, block_kwargs, input_shape, include_top,
                     num_classes, drop_path_rate=0.0):
    """Estimated ``(parameters, activations)`` (activations for one example) of the network
    :func:`build_network` would assemble, from the arguments alone: every block's arguments
    are validated on a probe instance that is never built (no weight is allocated, and the
    global random state is left as it was).

    The stem counts when it carries an ``estimate(input_shape) -> (parameters, activations,
    output_shape)`` attribute (:func:`conv_stem` stems do; :func:`dense_estimate` makes one
    for a dense stem).
    """
    total = sum(stage.blocks for stage in stages)
    rates = linear_drop_path_rates(drop_path_rate, total) if total else []
    activations = math.prod(1 if d is None else d for d in input_shape)
    parameters, current = 0, None  # the stem's output shape, when the stem says it
    if getattr(stem, "estimate", None) is not None:
        parameters, a, current = stem.estimate(tuple(input_shape))
        activations += a
    probes = []
    state = random.getstate()
    try:
        for kwargs in _block_kwargs(stages, block_kwargs, rates):
            key = _probe_key(kwargs)
            probe = next((b for k, b in probes if k == key), None)
            if probe is None:
                probe = _probe(block_class, kwargs)
                probes.append((key, probe))
            if current is not None and current[-1] is not None:
                p, a = probe.estimate_size(current)
                parameters, activations = parameters + p, activations + a
                current = tuple(probe.compute_output_shape((1,) + current)[1:])
    finally:
        random.setstate(state)
    if include_top and current is not None and current[-1] is not None:
        parameters += (current[-1] + 1) * num_classes
        activations += num_classes
    return parameters, activations


def _probe(block_class, kwargs):
    """``block_class(**kwargs)``; its ValueError also lists the builder's size arguments
    (:func:`size_arguments`) that led to the block's arguments."""
    try:
        return block_class(**kwargs)
    except ValueError as error:
        if not _SIZES.get():
            raise
        raise ValueError(f"{error} (block '{kwargs.get('name')}' of a network built with "
                         f"{_listed()})") from None


def build_network(stem, stages, block_class, block_kwargs, *, input_shape, name,
                  post_norm=False, include_top=True, num_classes=1000, pooling=None,
                  classifier_activation=None, drop_path_rate=0.0, input_tensor=None,
                  bn_momentum=0.9, bn_epsilon=1e-5):
    """Assemble ``stem -> stage{s}_block{b} ... -> [post norm] -> head`` as a functional model.

    Every argument is checked before anything is built: at most
    :data:`~keras_resnet_lab._checks.MAX_COUNT` blocks, and the estimated float32 parameters
    and batch-1 activations (:func:`estimate_network`) within the memory limit of
    :func:`keras_resnet_lab._checks.memory` (the message gives the figure and the size
    arguments, see :func:`size_arguments`).

    Args:
        stem: callable ``x -> x`` that adds the stem layers (named ``stem_*``).
        stages: list of :class:`Stage`.
        block_class: the block layer class.
        block_kwargs: keyword arguments shared by every block.
        input_shape: input shape without the batch axis.
        name: model name.
        post_norm: add ``post_bn`` + ``post_relu`` after the last block (pre-activation nets).
        include_top: add global average pooling and the ``predictions`` dense layer.
        num_classes: outputs of ``predictions``.
        pooling: without the top: None (4D feature map), ``"avg"`` or ``"max"``.
        classifier_activation: activation of ``predictions``; None gives logits.
        drop_path_rate: the largest per-block drop-path rate; rates grow linearly from 0 at
            the first block to this value at the last (timm's schedule).
        input_tensor: optional Keras tensor to use as the input.
        bn_momentum, bn_epsilon: settings of the head's batch norm.
    """
    one_of("pooling", pooling, POOLINGS)
    num_classes = positive_int("num_classes", num_classes)
    include_top = boolean("include_top", include_top)
    post_norm = boolean("post_norm", post_norm)
    name = text("name", name)
    drop_path_rate = number_in("drop_path_rate", drop_path_rate, 0.0, 1.0, high_open=True)
    bn_momentum = number_in("bn_momentum", bn_momentum, 0.0, 1.0)
    bn_epsilon = number_in("bn_epsilon", bn_epsilon, 0.0, None, low_open=True)
    keras_object("classifier_activation", classifier_activation, keras.activations.get)
    if input_tensor is not None:
        if not keras.utils.is_keras_tensor(input_tensor):
            raise ValueError(f"`input_tensor` must be None or a Keras tensor "
                             f"(keras.Input(...)), got {type(input_tensor).__name__}.")
        input_shape = tuple(input_tensor.shape[1:])
    else:
        input_shape = shape("input_shape", input_shape)
    for s, stage in enumerate(stages, start=1):
        count(f"blocks of stage {s}", stage.blocks)
    total = sum(stage.blocks for stage in stages)
    if total > MAX_COUNT:
        raise ValueError(f"the network would have {total:,} blocks, more than the limit of "
                         f"{MAX_COUNT:,} (keras_resnet_lab._checks.MAX_COUNT): it would take "
                         f"hours to build; reduce {_listed()}.")
    parameters, activations = estimate_network(stem, stages, block_class, block_kwargs,
                                               input_shape, include_top, num_classes,
                                               drop_path_rate)
    arguments = dict(_SIZES.get())
    arguments.update((k, v) for k, v in block_kwargs.items()
                     if k in _SIZE_KWARGS and v is not None)
    arguments.setdefault("input_shape", input_shape)
    if include_top:
        arguments.setdefault("num_classes", num_classes)
    memory(f"model '{name}'", parameters, activations, arguments)

    if input_tensor is None:
        inputs = keras.Input(shape=input_shape, name="input")
    else:
        inputs = input_tensor
    x = stem(inputs)
    rates = linear_drop_path_rates(drop_path_rate, total)
    for kwargs in _block_kwargs(stages, block_kwargs, rates):
        x = block_class(**kwargs)(x)
    if post_norm:
        x = FusedBatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, name="post_bn")(x)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    x = head(x, include_top, num_classes, pooling, classifier_activation)
    return keras.Model(inputs, x, name=name)


def _listed():
    sizes = dict(_SIZES.get())
    return ", ".join(f"{k}={shown(v)}" for k, v in sizes.items()) or "the blocks per stage"


def head(x, include_top, num_classes, pooling, classifier_activation):
    """keras.applications' head: pooling and the ``predictions`` layer."""
    rank = len(x.shape)
    if include_top:
        if rank == 4:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return keras.layers.Dense(num_classes, activation=classifier_activation,
                                  name="predictions")(x)
    if rank == 4 and pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if rank == 4 and pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def conv_stem(filters, kernel_size=3, strides=1, norm=True, max_pool=False, use_bias=False,
              bn_momentum=0.9, bn_epsilon=1e-5):
    """A stem ``conv [-> bn -> relu] [-> 3x3/2 max pool]`` with torch-style symmetric padding.

    ``kernel_size=7, strides=2, max_pool=True`` is the ImageNet stem; ``3, 1`` the CIFAR stem.
    ``filters`` may be a tuple: one 3x3 convolution per entry, the first strided (the "deep
    stem" of ResNet-C/D, arXiv 1812.01187: ``(32, 32, 64)``). Pre-activation networks pass
    ``norm=False``: the last convolution is then not normalized (the first block does it).
    """
    widths = tuple(positive_int("filters", w) for w in sequence("filters", filters,
                                                                  single=is_int))
    kernel_size = positive_int("kernel_size", kernel_size)
    strides = positive_int("strides", strides)

    def estimate(input_shape):
        """(parameters, activations, output shape) of the stem on ``input_shape``."""
        if len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be (height, width, channels) for a network "
                             f"with a convolutional stem, got {input_shape!r}.")
        height, width, channels = input_shape
        parameters = activations = 0
        for i, filters_i in enumerate(widths):
            kernel = kernel_size if len(widths) == 1 else 3
            stride = strides if i == 0 else 1
            if stride > 1:
                height, width = (None if d is None else (d - 1) // stride + 1
                                 for d in (height, width))
            channels_in = 1 if channels is None else channels
            parameters += kernel * kernel * channels_in * filters_i + 4 * filters_i
            channels = filters_i
            activations += 2 * (height or 1) * (width or 1) * channels
        if max_pool:
            height, width = (None if d is None else (d - 1) // 2 + 1 for d in (height, width))
            activations += (height or 1) * (width or 1) * channels
        return parameters, activations, (height, width, channels)

    def stem(x):
        for i, width in enumerate(widths):
            suffix = "" if len(widths) == 1 else str(i + 1)
            kernel = kernel_size if len(widths) == 1 else 3
            stride = strides if i == 0 else 1
            if stride > 1:
                x = keras.layers.ZeroPadding2D((kernel - 1) // 2, name=f"stem_pad{suffix}")(x)
            x = keras.layers.Conv2D(width, kernel, strides=stride, use_bias=use_bias,
                                    padding="same" if stride == 1 else "valid",
                                    kernel_initializer="he_normal", name=f"stem_conv{suffix}")(x)
            if norm or i < len(widths) - 1:
                x = FusedBatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon,
                                            name=f"stem_bn{suffix}")(x)
                x = keras.layers.Activation("relu", name=f"stem_relu{suffix}")(x)
        if max_pool:
            x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
            x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
        return x

    stem.estimate = estimate
    return stem


def dense_estimate(units, bias=True):
    """The ``estimate`` of a dense stem ``[flatten ->] dense(units)`` (see
    :func:`estimate_network`): attach it as ``stem.estimate``."""

    def estimate(input_shape):
        features = math.prod(1 if d is None else d for d in input_shape)
        return features * units + (units if bias else 0), 2 * units, (units,)

    return estimate
