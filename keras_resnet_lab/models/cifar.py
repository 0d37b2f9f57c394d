"""CIFAR-style networks: ResNet-(6n+2), wide, highway and multi-residual, and plain twins."""

from keras_resnet_lab._checks import one_of, positive_int
from keras_resnet_lab.layers.highway import HighwayBlock
from keras_resnet_lab.layers.residual import MultiResidualBlock, ResidualBlock
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem

BLOCKS = {"residual": ResidualBlock, "multi_residual": MultiResidualBlock,
          "highway": HighwayBlock}
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def cifar_network(blocks_per_stage, *, block="residual", widths=(16, 32, 64), preact=False,
                  plain=False, num_classes=10, input_shape=(32, 32, 3), include_top=True,
                  pooling=None, classifier_activation=None, input_tensor=None,
                  drop_path_rate=0.0, stem_width=None, name=None, **block_kwargs):
    """The general CIFAR network: 3x3 stem, one stage per width (stride 2 from the second on).

    Args:
        blocks_per_stage: blocks in each stage (an int, or one int per stage).
        block: ``"residual"``, ``"multi_residual"`` or ``"highway"``.
        widths: output channels of each stage.
        preact: pre-activation blocks (residual kinds only) and a final ``post_bn``.
        plain: the plain twin (no shortcuts).
        stem_width: channels of the stem convolution (default ``widths[0]``).
        **block_kwargs: passed to every block (``shortcut``, ``bottleneck``, ``branches``,
            ``gate_bias``, ``residual_scale``, ``normalization`` ...); the rest as in
            :func:`keras_resnet_lab.models.resnet`.

    Example:
        >>> model = cifar_network(3, block="highway", gate_bias=-2.0, name="highway20")
    """
    block_class = BLOCKS[one_of("block", block, tuple(BLOCKS))]
    widths = tuple(positive_int("widths", w) for w in widths)
    counts = blocks_per_stage
    if isinstance(counts, int):
        counts = (counts,) * len(widths)
    if len(counts) != len(widths):
        raise ValueError(f"`blocks_per_stage` needs one count per stage ({len(widths)}), "
                         f"got {blocks_per_stage!r}.")
    stages = [Stage(w, positive_int("blocks_per_stage", n), 1 if i == 0 else 2)
              for i, (w, n) in enumerate(zip(widths, counts))]
    kwargs = dict(plain=plain)
    if preact:
        if block_class is HighwayBlock:
            raise ValueError("`preact` applies to residual blocks, not block='highway'.")
        kwargs["preact"] = True
    kwargs.update(block_kwargs)
    stem = conv_stem(positive_int("stem_width", stem_width or widths[0]), 3, 1,
                     norm=not preact)
    return build_network(stem, stages, block_class, kwargs, input_shape=input_shape,
                         name=name or f"cifar_{block}", post_norm=preact,
                         include_top=include_top, num_classes=num_classes, pooling=pooling,
                         classifier_activation=classifier_activation,
                         drop_path_rate=drop_path_rate, input_tensor=input_tensor)


def cifar_resnet(depth=20, *, bottleneck=False, preact=False, plain=False, shortcut="A",
                 name=None, **kwargs):
    """CIFAR ResNet-(6n+2) of He et al. (arXiv 1512.03385): 16/32/64 channels, option A.

    ResNet-20 has 0.27M, ResNet-56 0.85M and ResNet-110 1.7M trainable parameters. With
    ``bottleneck=True`` the depth is 9n+2 (ResNet-164 of arXiv 1603.05027, 64/128/256 outputs).

    Args:
        depth: 6n+2 (basic) or 9n+2 (bottleneck) for some n >= 1.
        bottleneck, preact, plain, shortcut: as in :class:`ResidualBlock`.
        name: model name (default ``resnet{depth}[v2][_plain]``).
        **kwargs: as in :func:`cifar_network`.

    Example:
        >>> model = cifar_resnet(20, num_classes=10)
    """
    per_block = 9 if bottleneck else 6
    if (isinstance(depth, bool) or not isinstance(depth, int) or depth < per_block + 2
            or (depth - 2) % per_block):
        raise ValueError(f"`depth` must be {per_block}n+2 for n >= 1 "
                         f"({'bottleneck' if bottleneck else 'basic'} blocks, e.g. "
                         f"{per_block + 2}, {2 * per_block + 2}, ...), got {depth!r}.")
    n = (depth - 2) // per_block
    widths = (64, 128, 256) if bottleneck else (16, 32, 64)
    default = f"resnet{depth}{'v2' if preact else ''}{'_plain' if plain else ''}"
    return cifar_network(n, widths=widths, preact=preact, plain=plain, shortcut=shortcut,
                         bottleneck=bottleneck, stem_width=16, name=name or default, **kwargs)


def wide_resnet(depth=28, k=10, *, plain=False, name=None, **kwargs):
    """Wide ResNet WRN-d-k (Zagoruyko & Komodakis, arXiv 1605.07146): pre-activation basic
    blocks, 16k/32k/64k channels, depth 6n+4, projection shortcuts (WRN-28-10: 36.5M).

    Example:
        >>> model = wide_resnet(16, 4)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6n+4 for n >= 1 (10, 16, 22, 28, 40, ...), "
                         f"got {depth!r}.")
    k = positive_int("k", k)
    kwargs.setdefault("shortcut", "B")
    return cifar_network((depth - 4) // 6, widths=(16 * k, 32 * k, 64 * k), preact=True,
                         plain=plain, stem_width=16,
                         name=name or f"wrn{depth}_{k}{'_plain' if plain else ''}", **kwargs)


def highway_net(blocks_per_stage=3, *, gate_bias=-2.0, plain=False, name=None, **kwargs):
    """A convolutional highway network (Srivastava et al., arXiv 1505.00387) in CIFAR layout.

    Example:
        >>> model = highway_net(3, gate_bias=-2.0)
    """
    return cifar_network(blocks_per_stage, block="highway", gate_bias=gate_bias, plain=plain,
                         name=name or f"highway{'_plain' if plain else ''}", **kwargs)


def multi_residual_net(depth=20, branches=2, *, plain=False, name=None, **kwargs):
    """A multi-residual network (Abdi & Nahavandi, arXiv 1609.05672): a CIFAR ResNet-(6n+2)
    whose blocks sum ``branches`` residual branches.

    Example:
        >>> model = multi_residual_net(14, branches=4)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n+2 for n >= 1, got {depth!r}.")
    kwargs.setdefault("shortcut", "A")
    return cifar_network((depth - 2) // 6, block="multi_residual", branches=branches,
                         plain=plain, name=name or f"multi_resnet{depth}_k{branches}", **kwargs)


def _named(depth):
    def build(**kwargs):
        return cifar_resnet(depth, **kwargs)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"CIFAR ResNet-{depth}: ``cifar_resnet({depth}, **kwargs)``."
    return build


resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 = (
    _named(d) for d in CIFAR_DEPTHS)
