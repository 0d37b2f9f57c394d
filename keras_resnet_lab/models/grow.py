"""Growing a trained network: insert identity-initialized residual blocks into its chain."""

import keras

from keras_resnet_lab import _checks
from keras_resnet_lab._checks import is_int, one_of, sequence, text, text_or
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.chain import find_block
from keras_resnet_lab.models.surgery import chain_steps

KINDS = ("zero_init", "rezero")


def identity_block(after, kind="zero_init", name=None):
    """A new residual block that computes the identity on ``after``'s outputs until trained.

    It has ``after``'s width and form and no stride. ``kind="zero_init"``: the last batch-norm
    gamma (or, without a batch norm behind it, the last kernel) starts at 0 (Goyal et al.,
    arXiv 1706.02677); ``kind="rezero"``: the branch is multiplied by a learned alpha that
    starts at 0 (ReZero, arXiv 2003.04887). The new block is post-activation when ``after``
    is a post-activation residual block (its outputs are ReLU outputs, which a ReLU keeps),
    pre-activation otherwise (no ReLU after the addition).
    """
    one_of("kind", kind, KINDS)
    preact = not (isinstance(after, ResidualBlock) and not after.preact)
    kwargs = dict(filters=after.filters, form=after.form, preact=preact, shortcut="B",
                  normalization=after.normalization, bn_momentum=after.bn_momentum,
                  bn_epsilon=after.bn_epsilon, name=name)
    if isinstance(after, ResidualBlock):
        kwargs.update(bottleneck=after.bottleneck, width=after.width, groups=after.groups)
    if kind == "zero_init":
        kwargs["zero_init_residual"] = True
    else:
        kwargs.update(learnable_scale=True, learnable_scale_init=0.0)
    return ResidualBlock(**kwargs)


def insert_blocks(model, after, count=1, kind="zero_init", name=None):
    """A deeper model: ``count`` identity-initialized blocks after each block in ``after``.

    The original layers are shared and untouched, so the new model computes exactly the
    function of ``model`` until it is trained (the future work of "Visualizing Residual
    Networks", arXiv 1701.02362: insert blocks into a trained network and train further).
    The new blocks are named ``{block}_{k}`` (``stage2_block3_1``, ...) so that
    :func:`~keras_resnet_lab.models.blocks` lists them in place.

    Args:
        model: a block chain (built by this library, converted or loaded).
        after: block names or indices after which to insert.
        count: blocks to insert after each (>= 1).
        kind: ``"zero_init"`` or ``"rezero"`` (see :func:`identity_block`).
        name: name of the new model.

    Example:
        >>> deeper = insert_blocks(model, after=["stage1_block3", "stage2_block3"], count=2)
    """
    count = _checks.count("count", count)
    kind = one_of("kind", kind, KINDS)
    name = text("name", name, allow_none=True)
    names = sequence("after", after, single=lambda v: isinstance(v, str) or is_int(v))
    if len(names) * count > _checks.MAX_COUNT:
        raise ValueError(f"`count`={count} after {len(names)} blocks inserts more than "
                         f"{_checks.MAX_COUNT:,} blocks (keras_resnet_lab._checks.MAX_COUNT).")
    targets = set()
    for n in names:
        try:
            targets.add(find_block(model, n).name)
        except ValueError as error:
            raise ValueError(f"`after`: {error}") from None
    source = model.inputs[0]
    inputs = keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype, name="input")
    x = inputs
    for step in chain_steps(model):
        x = step(x, training=None)  # None: batch norms follow fit/predict as usual
        if step.block is not None and step.name in targets:
            for k in range(1, count + 1):
                x = identity_block(step.operation, kind, name=f"{step.name}_{k}")(x)
    return keras.Model(inputs, x, name=text_or("name", name, f"{model.name}_grown"))
