"""Convert keras.applications ResNets into block-structured models with the same function.

keras.applications builds ResNet50/101/152 (v1) and ResNet50V2/101V2/152V2 as flat graphs of
Conv2D/BatchNormalization layers named ``conv{k}_block{b}_{i}_{conv|bn}``. Conversion builds the
same network from our blocks (``stage{k-1}_block{b}``) and copies every weight across, so the
user's own model (whatever weights it carries) gets every analysis, visualization and export of
the library. Two quirks of the source are kept exactly:

- v1 convolutions carry a bias in front of each batch norm: it is folded into the batch norm's
  moving mean (``BN(conv(x) + b)`` uses ``mean - b``), which is exact.
- v1 strides the first 1x1 convolution of a block (``stride_in_1x1=True``); v2 strides the *last*
  block of each stack, whose shortcut is a 1x1 max-pool (shortcut option ``"A"``), and its last
  1x1 convolution and projection have biases and no batch norm (``use_bias=True``).
"""

import re

import numpy as np

from keras_resnet_lab._checks import text_or
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
from keras_resnet_lab.models.chain import block_name

_BLOCK = re.compile(r"^conv(\d+)_block(\d+)_out$")


def from_keras_applications(source, name=None):
    """Return our block-structured equivalent of a keras.applications ResNet, weights included.

    Args:
        source: a model built by ``keras.applications.ResNet50/101/152`` or
            ``ResNet50V2/101V2/152V2`` (any ``weights``, ``include_top``, ``pooling``,
            ``classes``, ``input_shape``, ``classifier_activation``).
        name: name of the new model (default: the source's name).

    Returns:
        A functional model with blocks ``stage1_block1`` ... computing the same function
        (equal to float32 rounding).

    Raises:
        ValueError: if ``source`` is not such a model.

    Example:
        >>> source = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
        >>> model = from_keras_applications(source)
    """
    layers = {layer.name: layer for layer in getattr(source, "layers", [])}
    if "conv1_conv" not in layers or not any(_BLOCK.match(n) for n in layers):
        raise ValueError("`source` must be a keras.applications ResNet50/101/152 or "
                         "ResNet50V2/101V2/152V2 model (layers 'conv1_conv', "
                         f"'conv2_block1_out', ...); got {getattr(source, 'name', source)!r}.")
    preact = "post_bn" in layers
    counts = {}
    for layer_name in layers:
        match = _BLOCK.match(layer_name)
        if match:
            stack, block = int(match.group(1)), int(match.group(2))
            counts[stack] = max(counts.get(stack, 0), block)
    stacks = sorted(counts)
    model = _build(source, layers, stacks, counts, preact, text_or("name", name, source.name))
    _copy_weights(source, layers, model, stacks, counts, preact)
    return model


def _bn_config(layer):
    config = layer.get_config()
    return dict(bn_momentum=config["momentum"], bn_epsilon=config["epsilon"])


def _build(source, layers, stacks, counts, preact, name):
    stem_bn = _bn_config(layers["conv1_bn" if not preact else "post_bn"])
    stages = []
    for i, stack in enumerate(stacks):
        filters = layers[f"conv{stack}_block1_3_conv"].filters
        if preact:
            # keras.applications v2: stride 2 in the last block of every stack but the last.
            strides = 1 if i == len(stacks) - 1 else 2
            stages.append(Stage(filters, counts[stack], strides, stride_at_end=True,
                                overrides={0: {"shortcut": "C"}}))
        else:
            stages.append(Stage(filters, counts[stack], 1 if i == 0 else 2))
    kwargs = dict(bottleneck=True, preact=preact, **stem_bn)
    if preact:
        kwargs.update(shortcut="A", use_bias=True)
    else:
        kwargs.update(shortcut="B", stride_in_1x1=True)
    include_top = "predictions" in layers
    pooling = "avg" if "avg_pool" in layers else "max" if "max_pool" in layers else None
    top = layers.get("predictions")
    stem = conv_stem(layers["conv1_conv"].filters, 7, 2, norm=not preact, max_pool=True,
                     use_bias=preact, **stem_bn)
    return build_network(
        stem, stages, ResidualBlock, kwargs, input_shape=tuple(source.input.shape[1:]),
        name=name, post_norm=preact, include_top=include_top,
        num_classes=top.units if top is not None else 1000, pooling=pooling,
        classifier_activation=top.get_config()["activation"] if top is not None else None,
        **stem_bn)


def _copy_bn(target, source, conv_bias=None):
    gamma, beta, mean, variance = (np.asarray(w) for w in source.get_weights())
    if conv_bias is not None:
        mean = mean - conv_bias  # BN(z + b) == BN'(z) with moving mean shifted by b
    target.set_weights([gamma, beta, mean, variance])


def _copy_conv_bn(conv, norm, src_conv, src_bn):
    """Copy a (conv with bias -> bn) pair into (conv without bias -> bn), folding the bias."""
    weights = src_conv.get_weights()
    conv.set_weights(weights[:1])
    _copy_bn(norm, src_bn, weights[1] if len(weights) > 1 else None)


def _copy_weights(source, layers, model, stacks, counts, preact):
    def get(name):
        return model.get_layer(name)

    if preact:
        get("stem_conv").set_weights(layers["conv1_conv"].get_weights())
        get("post_bn").set_weights(layers["post_bn"].get_weights())
    else:
        _copy_conv_bn(get("stem_conv"), get("stem_bn"), layers["conv1_conv"], layers["conv1_bn"])
    for s, stack in enumerate(stacks, start=1):
        for b in range(1, counts[stack] + 1):
            block = get(block_name(s, b))
            prefix = f"conv{stack}_block{b}_"
            for i, conv in enumerate(block.convs):
                src_conv = layers[f"{prefix}{i + 1}_conv"]
                if i < len(block.norms):
                    _copy_conv_bn(conv, block.norms[i], src_conv, layers[f"{prefix}{i + 1}_bn"])
                else:
                    conv.set_weights(src_conv.get_weights())
            if preact:
                block.pre_norm.set_weights(layers[f"{prefix}preact_bn"].get_weights())
            if block.projection is not None:
                src = layers[f"{prefix}0_conv"]
                if block.projection_norm is not None:
                    _copy_conv_bn(block.projection, block.projection_norm, src,
                                  layers[f"{prefix}0_bn"])
                else:
                    block.projection.set_weights(src.get_weights())
    if "predictions" in layers:
        get("predictions").set_weights(layers["predictions"].get_weights())
