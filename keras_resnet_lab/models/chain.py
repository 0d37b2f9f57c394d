"""The one way every module finds the blocks of a model: ``blocks(model)``.

Every network of the library is ``stem -> stage1_block1 -> ... -> stageS_blockB -> head``, a
Keras functional model whose blocks are single layers named ``stage{s}_block{b}``.
"""

import dataclasses
import re

import keras

from keras_resnet_lab._checks import is_int
from keras_resnet_lab.layers.base import BlockBase

#: ``stage{s}_block{b}``, or ``stage{s}_block{b}_{k}`` for the k-th block inserted after it.
BLOCK_NAME = re.compile(r"^stage(\d+)_block(\d+)(?:_(\d+))?$")


@dataclasses.dataclass(frozen=True)
class BlockInfo:
    """One block of a model: its layer, name, stage (1-based), place in the stage (1-based) and
    position in the whole chain (0-based)."""

    name: str
    stage: int
    block: int
    index: int
    layer: keras.layers.Layer


def block_name(stage, block):
    """The canonical name of block ``block`` of stage ``stage`` (both 1-based)."""
    return f"stage{stage}_block{block}"


def blocks(model):
    """The ordered blocks of ``model``, as :class:`BlockInfo` records.

    A block is a :class:`~keras_resnet_lab.layers.BlockBase` layer named ``stage{s}_block{b}``
    (or ``stage{s}_block{b}_{k}``, inserted by ``insert_blocks``); blocks are ordered by stage,
    then by place in the stage.

    Args:
        model: a Keras model built by this library, converted from keras.applications, or
            loaded from a ``.keras`` file.

    Raises:
        ValueError: if the model has no such block.

    Example:
        >>> [b.name for b in blocks(cifar_resnet(20))][:2]
        ['stage1_block1', 'stage1_block2']
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    found = []
    for layer in model.layers:
        match = BLOCK_NAME.match(layer.name)
        if match and isinstance(layer, BlockBase):
            found.append((int(match.group(1)), int(match.group(2)), int(match.group(3) or 0),
                          layer))
    if not found:
        raise ValueError(f"model '{model.name}' has no residual/highway blocks named "
                         "'stage{s}_block{b}'; build it with keras_resnet_lab.models or convert "
                         "it with keras_resnet_lab.models.from_keras_applications.")
    found.sort(key=lambda item: item[:3])
    return [BlockInfo(layer.name, stage, block, i, layer)
            for i, (stage, block, _, layer) in enumerate(found)]


def find_block(model, block):
    """The :class:`BlockInfo` of ``block`` (a name or a 0-based index, negative allowed)."""
    chain = blocks(model)
    if isinstance(block, str):
        for info in chain:
            if info.name == block:
                return info
        names = ", ".join(info.name for info in chain)
        raise ValueError(f"unknown block {block!r}; the blocks of '{model.name}' are: {names}.")
    if not is_int(block) or not -len(chain) <= block < len(chain):
        raise ValueError(f"`block` must be a block name or an int index in [{-len(chain)}, "
                         f"{len(chain)}) (block index), got {block!r}.")
    return chain[int(block)]


def stages(model):
    """``{stage: [BlockInfo, ...]}`` in order."""
    grouped = {}
    for info in blocks(model):
        grouped.setdefault(info.stage, []).append(info)
    return grouped
