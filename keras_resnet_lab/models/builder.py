"""The one general network assembler: stem, stages of named blocks, head.

Every builder of the library (ImageNet and CIFAR ResNets, plain twins, wide, ResNeXt,
highway, multi-residual, MLPs, and converted keras.applications models) describes its
network as a :class:`Stage` list and a stem, and lets :func:`build_network` assemble it.
"""

import dataclasses

import keras

from keras_resnet_lab._checks import one_of, positive_int
from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization
from keras_resnet_lab.layers.drop_path import linear_drop_path_rates
from keras_resnet_lab.models.chain import block_name

POOLINGS = (None, "avg", "max")


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


def build_network(stem, stages, block_class, block_kwargs, *, input_shape, name,
                  post_norm=False, include_top=True, num_classes=1000, pooling=None,
                  classifier_activation=None, drop_path_rate=0.0, input_tensor=None,
                  bn_momentum=0.9, bn_epsilon=1e-5):
    """Assemble ``stem -> stage{s}_block{b} ... -> [post norm] -> head`` as a functional model.

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
    positive_int("num_classes", num_classes)
    if input_tensor is None:
        inputs = keras.Input(shape=tuple(input_shape), name="input")
    else:
        inputs = input_tensor
    x = stem(inputs)
    total = sum(stage.blocks for stage in stages)
    rates = linear_drop_path_rates(drop_path_rate, total)
    index = 0
    for s, stage in enumerate(stages, start=1):
        positive_int(f"blocks of stage {s}", stage.blocks)
        for b in range(stage.blocks):
            strided = b == (stage.blocks - 1 if stage.stride_at_end else 0)
            kwargs = dict(block_kwargs)
            kwargs.update(filters=stage.filters, strides=stage.strides if strided else 1,
                          name=block_name(s, b + 1))
            if rates[index] > 0:
                kwargs["drop_path_rate"] = rates[index]
            kwargs.update(stage.kwargs)
            kwargs.update(stage.overrides.get(b, {}))
            x = block_class(**kwargs)(x)
            index += 1
    if post_norm:
        x = FusedBatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, name="post_bn")(x)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    x = head(x, include_top, num_classes, pooling, classifier_activation)
    return keras.Model(inputs, x, name=name)


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
    widths = tuple(filters) if isinstance(filters, (tuple, list)) else (filters,)

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

    return stem
