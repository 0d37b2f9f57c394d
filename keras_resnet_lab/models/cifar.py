"""CIFAR-style networks: ResNet-(6n+2), wide, highway and multi-residual, and plain twins."""

from keras_resnet_lab._checks import (
    MAX_COUNT,
    boolean,
    count,
    is_int,
    one_of,
    positive_int,
    sequence,
    text_or,
)
from keras_resnet_lab.layers.highway import HighwayBlock
from keras_resnet_lab.layers.residual import MultiResidualBlock, ResidualBlock
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem, size_arguments

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
    widths = tuple(positive_int("widths", w) for w in sequence("widths", widths))
    counts = sequence("blocks_per_stage", blocks_per_stage, single=is_int)
    if len(counts) == 1 and is_int(blocks_per_stage):
        counts = counts * len(widths)
    if len(counts) != len(widths):
        raise ValueError(f"`blocks_per_stage` needs one count per stage ({len(widths)}), "
                         f"got {blocks_per_stage!r}.")
    counts = [count("blocks_per_stage", n) for n in counts]
    if sum(counts) > MAX_COUNT:
        raise ValueError(f"`blocks_per_stage`={blocks_per_stage!r} gives {sum(counts):,} blocks, "
                         f"more than the limit of {MAX_COUNT:,} (keras_resnet_lab._checks."
                         "MAX_COUNT; more would take hours to build).")
    stages = [Stage(w, n, 1 if i == 0 else 2) for i, (w, n) in enumerate(zip(widths, counts))]
    preact = boolean("preact", preact)
    kwargs = dict(plain=boolean("plain", plain))
    if preact:
        if block_class is HighwayBlock:
            raise ValueError("`preact` applies to residual blocks, not block='highway'.")
        kwargs["preact"] = True
    kwargs.update(block_kwargs)
    stem_width = positive_int("stem_width", widths[0] if stem_width is None else stem_width)
    stem = conv_stem(stem_width, 3, 1, norm=not preact)
    with size_arguments(blocks_per_stage=blocks_per_stage, widths=widths, stem_width=stem_width):
        return build_network(stem, stages, block_class, kwargs, input_shape=input_shape,
                             name=text_or("name", name, f"cifar_{block}"), post_norm=preact,
                             include_top=include_top, num_classes=num_classes, pooling=pooling,
                             classifier_activation=classifier_activation,
                             drop_path_rate=drop_path_rate, input_tensor=input_tensor)


def _depth(depth, per_block, offset, examples):
    """``depth`` as an int of the form ``per_block * n + offset`` (n >= 1) whose 3 stages of n
    blocks stay within :data:`~keras_resnet_lab._checks.MAX_COUNT`; returns n."""
    largest = per_block * (MAX_COUNT // 3) + offset
    depth = int(depth) if is_int(depth) else depth
    if not is_int(depth) or depth < per_block + offset or (depth - offset) % per_block:
        raise ValueError(f"`depth` must be {per_block}n+{offset} for n >= 1 ({examples}), got "
                         f"{depth!r}.")
    if depth > largest:
        raise ValueError(f"`depth` must be at most {largest:,} ({MAX_COUNT:,} blocks, the limit "
                         "keras_resnet_lab._checks.MAX_COUNT; more would take hours to build), "
                         f"got {depth:,}.")
    return (depth - offset) // per_block


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
    bottleneck = boolean("bottleneck", bottleneck)
    per_block = 9 if bottleneck else 6
    kind = "bottleneck" if bottleneck else "basic"
    n = _depth(depth, per_block, 2, f"{kind} blocks, e.g. {per_block + 2}, {2 * per_block + 2}, "
                                    "...")
    depth = per_block * n + 2
    preact, plain = boolean("preact", preact), boolean("plain", plain)
    widths = (64, 128, 256) if bottleneck else (16, 32, 64)
    default = f"resnet{depth}{'v2' if preact else ''}{'_plain' if plain else ''}"
    with size_arguments(depth=depth):
        return cifar_network(n, widths=widths, preact=preact, plain=plain, shortcut=shortcut,
                             bottleneck=bottleneck, stem_width=16,
                             name=text_or("name", name, default), **kwargs)


def wide_resnet(depth=28, k=10, *, plain=False, name=None, **kwargs):
    """Wide ResNet WRN-d-k (Zagoruyko & Komodakis, arXiv 1605.07146): pre-activation basic
    blocks, 16k/32k/64k channels, depth 6n+4, projection shortcuts (WRN-28-10: 36.5M).

    Example:
        >>> model = wide_resnet(16, 4)
    """
    n = _depth(depth, 6, 4, "10, 16, 22, 28, 40, ...")
    depth = 6 * n + 4
    k = positive_int("k", k)
    plain = boolean("plain", plain)
    kwargs.setdefault("shortcut", "B")
    with size_arguments(depth=depth, k=k):
        return cifar_network(n, widths=(16 * k, 32 * k, 64 * k), preact=True, plain=plain,
                             stem_width=16,
                             name=text_or("name", name,
                                          f"wrn{depth}_{k}{'_plain' if plain else ''}"),
                             **kwargs)


def highway_net(blocks_per_stage=3, *, gate_bias=-2.0, plain=False, name=None, **kwargs):
    """A convolutional highway network (Srivastava et al., arXiv 1505.00387) in CIFAR layout.

    Example:
        >>> model = highway_net(3, gate_bias=-2.0)
    """
    plain = boolean("plain", plain)
    return cifar_network(blocks_per_stage, block="highway", gate_bias=gate_bias, plain=plain,
                         name=text_or("name", name, f"highway{'_plain' if plain else ''}"),
                         **kwargs)


def multi_residual_net(depth=20, branches=2, *, plain=False, name=None, **kwargs):
    """A multi-residual network (Abdi & Nahavandi, arXiv 1609.05672): a CIFAR ResNet-(6n+2)
    whose blocks sum ``branches`` residual branches.

    Example:
        >>> model = multi_residual_net(14, branches=4)
    """
    n = _depth(depth, 6, 2, "8, 14, 20, ...")
    depth = 6 * n + 2
    branches = count("branches", branches)
    kwargs.setdefault("shortcut", "A")
    with size_arguments(depth=depth, branches=branches):
        return cifar_network(n, block="multi_residual", branches=branches,
                             plain=boolean("plain", plain),
                             name=text_or("name", name, f"multi_resnet{depth}_k{branches}"),
                             **kwargs)


def _named(depth):
    def build(**kwargs):
        return cifar_resnet(depth, **kwargs)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"CIFAR ResNet-{depth}: ``cifar_resnet({depth}, **kwargs)``."
    return build


resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 = (
    _named(d) for d in CIFAR_DEPTHS)
