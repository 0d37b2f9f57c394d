"""Convert keras-hub ResNets (ResNet-18/34/50/101/152, v1 and v2, ResNet-vd) into block chains.

keras.applications has no ResNet-18/34, no ResNet-D and no v1.5 weights; keras-hub has them
(its ``resnet_*`` / ``resnet_vd_*`` presets, converted from timm). A keras-hub
``ResNetBackbone`` is a flat graph of Conv2D/BatchNormalization layers named
``stack{i}_block{j}_{k}_{conv|bn}`` (0-based stacks and blocks); conversion builds the same
network from our :class:`~keras_resnet_lab.layers.ResidualBlock` (``stage{i+1}_block{j+1}``)
with :func:`~keras_resnet_lab.models.builder.build_network` and copies every weight across, as
:func:`~keras_resnet_lab.models.from_keras_applications` does for keras.applications.

How keras-hub's blocks map onto ours (keras-hub 0.32, ``keras_hub/src/models/resnet``):

- no convolution has a bias (nothing to fold); every batch norm has epsilon 1e-5 and momentum
  0.9 (read from the source's layers, not assumed);
- the stride sits on the 3x3 convolution (torchvision's "v1.5", our default), with symmetric
  zero padding, in the *first* block of a stack, for v1 and v2 alike;
- the first block of a stack has a 1x1 projection shortcut (always, even when the shape does
  not change: our shortcut ``"C"`` for that block), except the first stack of
  ``"basic_block"`` networks (identity); v2 projections read the pre-activated input and have
  no batch norm, as ours;
- ``"*_vd"`` blocks average-pool (2x2, ``padding="same"``) before a stride-1 projection: our
  ``avg_down=True``; ``input_conv_filters=[32, 32, 64]`` with 3x3 kernels is our deep stem
  (``conv_stem((32, 32, 64))``);
- v2 (``use_pre_activation=True``) has no batch norm in the stem and max-pools with ``-inf``
  padding; our stem runs that pool as a 3x3 stride-1 ``"same"`` max-pool (which ignores the
  padding) followed by a stride-2 subsampling (``stem_pool_subsample``): the same windows;
- a ``ResNetImageClassifier``'s head (``pooler``, ``output_dropout``, ``predictions``)
  becomes ``avg_pool``/``max_pool`` [-> ``output_dropout``] -> ``predictions``.
"""

import importlib

import keras

from keras_resnet_lab._checks import text_or
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
from keras_resnet_lab.models.chain import block_name

#: keras-hub ``block_type`` -> (bottleneck, vd).
BLOCK_TYPES = {
    "basic_block": (False, False),
    "bottleneck_block": (True, False),
    "basic_block_vd": (False, True),
    "bottleneck_block_vd": (True, True),
}


def from_keras_hub(model, *, name=None):
    """Return our block-structured equivalent of a keras-hub ResNet, weights included.

    Args:
        model: a ``keras_hub.models.ResNetBackbone`` (any ``block_type``: ``"basic_block"``,
            ``"bottleneck_block"``, ``"basic_block_vd"``, ``"bottleneck_block_vd"``; v1 or v2
            ``use_pre_activation``; any stem, stage widths, depths and strides keras-hub
            builds), or a ``keras_hub.models.ResNetImageClassifier`` (an ``ImageClassifier``
            on such a backbone), e.g. from ``from_preset("resnet_50_imagenet")``.
        name: name of the new model (default: the source's name).

    Returns:
        A functional model ``stem -> stage1_block1 ... -> [post_bn, post_relu] -> head`` that
        computes the same function as ``model(x)`` to float32 rounding (max relative
        difference about 1e-6 at 224x224 on random weights; the tests require <= 1e-5). A
        backbone converts to its feature map (as ``include_top=False, pooling=None``); a
        classifier keeps its pooling (``avg_pool`` or ``max_pool``), its dropout
        (``output_dropout``, when its rate is above 0) and its ``predictions`` layer with the
        classifier's activation (None gives logits). The last block of stage ``s`` outputs
        the backbone's ``pyramid_outputs[f"P{s + 1}"]``. Stage ``s`` is keras-hub's
        ``stack{s-1}``, block ``b`` its ``block{b-1}``.

        Like ``model(x)``, the converted model takes *preprocessed* images: a keras-hub
        classifier's ``preprocessor`` (resize, then ``x * scale + offset``, the
        normalization its preset was trained with) runs only in its ``predict``/``fit``, not in
        the graph, and is not part of the conversion. Apply it first, e.g.
        ``classifier.preprocessor.image_converter(images)``.

    Raises:
        ValueError: if ``model`` is not such a model, or uses what has no equivalent here
            (``data_format="channels_first"``, a multi-convolution stem with kernels other
            than 3, a ``*_vd`` stage stride other than 1 or 2, batch norms with differing
            settings, a classifier head other than keras-hub's ``ImageClassifier`` head, a
            weighted layer with no counterpart here).

    Example:
        >>> backbone = keras_hub.models.ResNetBackbone.from_preset("resnet_50_imagenet")
        >>> model = from_keras_hub(backbone)  # doctest: +SKIP

    Paper: He et al., arXiv 1512.03385 / 1603.05027; ResNet-D, He et al., arXiv 1812.01187.
    """
    backbone, classifier = _split(model)
    spec = _spec(backbone)
    converted = _build(backbone, classifier, spec, text_or("name", name, model.name))
    _copy_weights(backbone, classifier, converted, spec)
    return converted


def _split(model):
    """``(backbone, classifier or None)``, or a ValueError for anything else."""
    module = type(model).__module__ or ""
    hub = None
    if module.startswith("keras_hub"):
        try:
            hub = importlib.import_module("keras_hub")
        except ImportError:  # pragma: no cover - a keras_hub object without keras_hub
            hub = None
    if hub is not None:
        if isinstance(model, hub.models.ResNetBackbone):
            return model, None
        if isinstance(model, hub.models.ImageClassifier) and isinstance(
                getattr(model, "backbone", None), hub.models.ResNetBackbone):
            for attribute in ("pooler", "output_dropout", "output_dense"):
                if getattr(model, attribute, None) is None:
                    raise ValueError(f"`model` ({type(model).__name__} '{model.name}') has no "
                                     f"`{attribute}`: only keras-hub's ImageClassifier head "
                                     "(pooler, output_dropout, predictions) converts.")
            return model.backbone, model
        if isinstance(getattr(model, "backbone", None), hub.models.Backbone):
            backbone = model.backbone
            raise ValueError(f"`model` must have a keras_hub.models.ResNetBackbone; "
                             f"{type(model).__name__} '{model.name}' has a "
                             f"{type(backbone).__name__}, which has no block-chain "
                             "equivalent here.")
    hint = ""
    if isinstance(model, keras.Model) and any(
            layer.name == "conv2_block1_out" for layer in model.layers):
        hint = " (a keras.applications ResNet converts with from_keras_applications)"
    raise ValueError("`model` must be a keras_hub.models.ResNetBackbone or "
                     "keras_hub.models.ResNetImageClassifier; got "
                     f"{type(model).__name__} {getattr(model, 'name', model)!r}{hint}.")


def _config_value(backbone, key):
    config = backbone.get_config()
    if key not in config:
        raise ValueError(f"`model`'s backbone '{backbone.name}' has no `{key}` in its "
                         "configuration: not a keras-hub ResNetBackbone this converter knows "
                         "(written for keras-hub 0.32).")
    return config[key]


def _spec(backbone):
    """The backbone's layout, checked: a dict of what :func:`_build` needs."""
    block_type = _config_value(backbone, "block_type")
    if block_type not in BLOCK_TYPES:
        raise ValueError(f"unsupported keras-hub `block_type`={block_type!r}; "
                         f"supported: {', '.join(map(repr, BLOCK_TYPES))}.")
    data_format = getattr(backbone, "data_format", "channels_last")
    if data_format != "channels_last":
        raise ValueError(f"unsupported keras-hub `data_format`={data_format!r}: our blocks "
                         "are NHWC; build the backbone with data_format='channels_last' (the "
                         "weights are the same, e.g. from_preset(..., "
                         "data_format='channels_last')).")
    bottleneck, vd = BLOCK_TYPES[block_type]
    preact = bool(_config_value(backbone, "use_pre_activation"))
    stem_filters = [int(f) for f in _config_value(backbone, "input_conv_filters")]
    stem_kernels = [int(k) for k in _config_value(backbone, "input_conv_kernel_sizes")]
    if len(stem_filters) > 1 and any(k != 3 for k in stem_kernels):
        raise ValueError(f"unsupported keras-hub stem `input_conv_kernel_sizes`="
                         f"{stem_kernels}: a stem of several convolutions converts only with "
                         "3x3 kernels (the ResNet-vd deep stem); a single convolution may have "
                         "any kernel size.")
    filters = [int(f) for f in _config_value(backbone, "stackwise_num_filters")]
    counts = [int(n) for n in _config_value(backbone, "stackwise_num_blocks")]
    strides = [int(s) for s in _config_value(backbone, "stackwise_num_strides")]
    for i, s in enumerate(strides):
        if vd and not preact and s not in (1, 2):
            raise ValueError(f"unsupported keras-hub `stackwise_num_strides`[{i}]={s} with "
                             f"block_type={block_type!r}: its shortcut average-pools 2x2 with "
                             f"stride {s}; our avg-down shortcut pools {s}x{s} (only strides 1 "
                             "and 2 agree).")
    norms = [layer for layer in backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    settings = {(float(n.epsilon), float(n.momentum), bool(n.center), bool(n.scale))
                for n in norms}
    if len(settings) != 1:
        raise ValueError(f"`model`'s batch norms have differing (epsilon, momentum, center, "
                         f"scale) settings {sorted(settings)}; a conversion needs one setting "
                         "(keras-hub builds every batch norm with epsilon 1e-5, momentum 0.9).")
    epsilon, momentum, center, scale = settings.pop()
    if not (center and scale):
        raise ValueError("`model`'s batch norms have center=False or scale=False; "
                         "keras-hub's ResNet batch norms have both.")
    return dict(block_type=block_type, bottleneck=bottleneck, vd=vd, preact=preact,
                stem_filters=stem_filters, stem_kernels=stem_kernels, filters=filters,
                counts=counts, strides=strides, bn_epsilon=epsilon, bn_momentum=momentum,
                # keras-hub gives the first block of every stack a projection shortcut, but
                # not the first stack of a plain "basic_block" network.
                projection=[block_type != "basic_block" or i > 0 for i in range(len(counts))])


def _stem(spec, bn):
    """Our stem for the backbone's: :func:`conv_stem`, with v2's ``-inf``-padded max-pool."""
    widths = tuple(spec["stem_filters"])
    kernel = spec["stem_kernels"][0] if len(widths) == 1 else 3
    preact = spec["preact"]
    base = conv_stem(widths if len(widths) > 1 else widths[0], kernel, 2, norm=not preact,
                     max_pool=not preact, **bn)
    if not preact:
        return base

    def stem(x):
        # keras-hub v2 pads with -inf before its 3x3/2 max-pool (no ReLU precedes it, so zero
        # padding would differ): a stride-1 "same" max-pool ignores its padding and its windows
        # at even positions are exactly those of the padded stride-2 pool.
        x = base(x)
        x = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="stem_pool")(x)
        return keras.layers.MaxPooling2D(1, strides=2, name="stem_pool_subsample")(x)

    def estimate(input_shape):
        parameters, activations, (height, width, channels) = base.estimate(input_shape)
        activations += (height or 1) * (width or 1) * channels
        height, width = (None if d is None else (d - 1) // 2 + 1 for d in (height, width))
        activations += (height or 1) * (width or 1) * channels
        return parameters, activations, (height, width, channels)

    stem.estimate = estimate
    return stem


def _build(backbone, classifier, spec, name):
    bn = dict(bn_momentum=spec["bn_momentum"], bn_epsilon=spec["bn_epsilon"])
    expansion = 4 if spec["bottleneck"] else 1
    stages = []
    for i, (filters, n, stride) in enumerate(zip(spec["filters"], spec["counts"],
                                                 spec["strides"])):
        overrides = {0: {"shortcut": "C"}} if spec["projection"][i] else {}
        stages.append(Stage(filters * expansion, n, stride, overrides=overrides))
    kwargs = dict(bottleneck=spec["bottleneck"], preact=spec["preact"], shortcut="B",
                  avg_down=spec["vd"], **bn)
    pooling = None if classifier is None else classifier.pooling
    model = build_network(
        _stem(spec, bn), stages, ResidualBlock, kwargs,
        input_shape=tuple(backbone.input.shape[1:]), name=name, post_norm=spec["preact"],
        include_top=False, pooling=pooling, **bn)
    if classifier is None:
        return model
    x = model.output
    rate = float(classifier.output_dropout.rate)
    if rate > 0:
        x = keras.layers.Dropout(rate, name="output_dropout")(x)
    dense = classifier.output_dense
    x = keras.layers.Dense(dense.units, activation=dense.get_config()["activation"],
                           name="predictions")(x)
    return keras.Model(model.input, x, name=name)


def _copy_weights(backbone, classifier, model, spec):
    def source(layer_name):
        try:
            return backbone.get_layer(layer_name)
        except ValueError:
            raise ValueError(f"`model`'s backbone '{backbone.name}' has no layer "
                             f"'{layer_name}': not a keras-hub ResNetBackbone layout this "
                             "converter knows (written for keras-hub 0.32).") from None

    copied = set()

    def copy(target, layer_name):
        target.set_weights(source(layer_name).get_weights())
        copied.add(layer_name)

    n_stem = len(spec["stem_filters"])
    for k in range(1, n_stem + 1):
        suffix = "" if n_stem == 1 else str(k)
        copy(model.get_layer(f"stem_conv{suffix}"), f"conv{k}_conv")
        if k < n_stem or not spec["preact"]:
            copy(model.get_layer(f"stem_bn{suffix}"), f"conv{k}_bn")
    for s, n in enumerate(spec["counts"]):
        for b in range(n):
            block = model.get_layer(block_name(s + 1, b + 1))
            prefix = f"stack{s}_block{b}_"
            for i, conv in enumerate(block.convs):
                copy(conv, f"{prefix}{i + 1}_conv")
                if i < len(block.norms):
                    copy(block.norms[i], f"{prefix}{i + 1}_bn")
            if spec["preact"]:
                copy(block.pre_norm, f"{prefix}pre_activation_bn")
            if block.projection is not None:
                copy(block.projection, f"{prefix}0_conv")
                if block.projection_norm is not None:
                    copy(block.projection_norm, f"{prefix}0_bn")
    if spec["preact"]:
        copy(model.get_layer("post_bn"), "post_bn")
    left = [layer.name for layer in backbone.layers if layer.weights and layer.name not in copied]
    if left:
        raise ValueError(f"`model`'s backbone '{backbone.name}' has weighted layers with no "
                         f"counterpart here: {', '.join(left)} (written for keras-hub 0.32).")
    if classifier is not None:
        model.get_layer("predictions").set_weights(classifier.output_dense.get_weights())
