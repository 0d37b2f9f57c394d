"""ImageNet ResNets (He et al., arXiv 1512.03385 / 1603.05027), their plain twins, ResNeXt."""

from keras_resnet_lab._checks import boolean, one_of, positive_int, text_or
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem, size_arguments

#: depth -> (bottleneck, blocks per stage)
IMAGENET_DEPTHS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}


STEMS = ("classic", "deep")
OUTPUT_STRIDES = (8, 16, 32)


def resnet(depth=50, *, preact=False, plain=False, include_top=True, num_classes=1000,
           input_shape=(224, 224, 3), pooling=None, classifier_activation=None,
           input_tensor=None, drop_path_rate=0.0, shortcut="B", stem_width=64, stem="classic",
           output_stride=32, name=None, **block_kwargs):
    """An ImageNet ResNet-18/34/50/101/152, v1 or v2, or its plain twin.

    Four stages of 64/128/256/512 channels (x4 at a bottleneck's output), stride 2 at the
    first block of stages 2-4 (on the 3x3 convolution, torchvision's "v1.5"; pass
    ``stride_in_1x1=True`` for the original), 7x7/2 convolution + 3x3/2 max-pool stem, no
    convolution bias in front of a batch norm: ResNet-18 has 11.69M and ResNet-50 25.56M
    trainable parameters, as in the paper.

    Args:
        depth: 18, 34, 50, 101 or 152.
        preact: pre-activation (v2, arXiv 1603.05027) blocks and a final ``post_bn``.
        plain: the plain twin: the same layers, no shortcuts.
        include_top, num_classes, input_shape, pooling, classifier_activation, input_tensor:
            as in keras.applications (``classifier_activation=None`` gives logits).
        drop_path_rate: stochastic depth, linear over the blocks up to this rate.
        shortcut: ``"A"``, ``"B"`` (default, projection when the shape changes) or ``"C"``.
        stem_width: channels of the stem convolution (the deep stem uses
            ``(stem_width, stem_width, 2 * stem_width)``; ResNet-D uses 32).
        stem: ``"classic"`` (7x7/2 convolution) or ``"deep"`` (three 3x3 convolutions,
            ResNet-C/D of arXiv 1812.01187). With ``avg_down=True`` (a block argument) and
            ``stem="deep", stem_width=32`` this is ResNet-50-D (25.58M parameters).
        output_stride: 32 (classification), 16 or 8: the last stages keep their resolution
            and dilate their 3x3 convolutions instead of striding (dense prediction, as
            timm's ``output_stride``).
        name: model name (default ``resnet{depth}[v2][_plain]``).
        **block_kwargs: any other :class:`ResidualBlock` argument (``width``, ``groups``,
            ``se_ratio``, ``zero_init_residual``, ``residual_scale``, ``stride_in_1x1`` ...).

    Example:
        >>> model = resnet(50, num_classes=10, input_shape=(64, 64, 3))
    """
    depth = one_of("depth", depth, tuple(IMAGENET_DEPTHS))
    bottleneck, counts = IMAGENET_DEPTHS[depth]
    expansion = 4 if bottleneck else 1
    stem = one_of("stem", stem, STEMS)
    output_stride = one_of("output_stride", output_stride, OUTPUT_STRIDES)
    preact, plain = boolean("preact", preact), boolean("plain", plain)
    stages, net_stride, dilation = [], 4, 1
    for i, n in enumerate(counts):
        stride, previous = (1 if i == 0 else 2), dilation
        if net_stride >= output_stride:
            dilation, stride = dilation * stride, 1
        else:
            net_stride *= stride
        stage = Stage(64 * 2 ** i * expansion, n, stride)
        if dilation > 1:
            stage.kwargs = {"dilation_rate": dilation}
            stage.overrides = {0: {"dilation_rate": previous}}
        stages.append(stage)
    default_name = f"resnet{depth}{'v2' if preact else ''}{'_plain' if plain else ''}"
    kwargs = dict(bottleneck=bottleneck, preact=preact, plain=plain, shortcut=shortcut)
    kwargs.update(block_kwargs)
    width = positive_int("stem_width", stem_width)
    stem = conv_stem(width if stem == "classic" else (width, width, 2 * width), 7, 2,
                     norm=not preact, max_pool=True)
    with size_arguments(stem_width=width):
        return build_network(stem, stages, ResidualBlock, kwargs, input_shape=input_shape,
                             name=text_or("name", name, default_name), post_norm=preact,
                             include_top=include_top, num_classes=num_classes, pooling=pooling,
                             classifier_activation=classifier_activation,
                             drop_path_rate=drop_path_rate, input_tensor=input_tensor)


def resnext(depth=50, cardinality=32, base_width=4, **kwargs):
    """ResNeXt (Xie et al., arXiv 1611.05431): a bottleneck ResNet with grouped 3x3 convolutions.

    The inner width of a stage with ``c`` output channels is
    ``c / 4 * cardinality * base_width / 64`` (ResNeXt-50 32x4d: 25.03M parameters).

    Example:
        >>> model = resnext(50, 32, 4, num_classes=10, input_shape=(64, 64, 3))
    """
    depth = one_of("depth", depth, (50, 101, 152))
    cardinality = positive_int("cardinality", cardinality)
    base_width = positive_int("base_width", base_width)
    kwargs.setdefault("name", f"resnext{depth}_{cardinality}x{base_width}d")
    with size_arguments(cardinality=cardinality, base_width=base_width):
        return resnet(depth, groups=cardinality, width=cardinality * base_width / 64, **kwargs)


def _named(depth):
    def build(**kwargs):
        return resnet(depth, **kwargs)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"ImageNet ResNet-{depth}: ``resnet({depth}, **kwargs)``."
    return build


resnet18, resnet34, resnet50, resnet101, resnet152 = (_named(d) for d in IMAGENET_DEPTHS)
