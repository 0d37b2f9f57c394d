"""keras_resnet_lab: build, train, dissect, visualize and export residual networks (Keras 3).

Example:
    >>> from keras_resnet_lab import ResidualBlock, cifar_resnet, blocks
    >>> model = cifar_resnet(20, num_classes=10)
    >>> [b.name for b in blocks(model)][:3]
    ['stage1_block1', 'stage1_block2', 'stage1_block3']
"""

__version__ = "0.1.0"

from keras_resnet_lab.layers import (  # noqa: E402
    BlockBase,
    FusedBatchNormalization,
    HighwayBlock,
    MultiResidualBlock,
    ResidualBlock,
    SharedResidualStack,
    SqueezeExcite,
)
from keras_resnet_lab.models import (  # noqa: E402
    BlockInfo,
    blocks,
    build_model,
    cifar_network,
    cifar_resnet,
    find_block,
    highway_mlp,
    highway_net,
    multi_residual_net,
    residual_mlp,
    resnet,
    resnext,
    stages,
    wide_resnet,
)

__all__ = [
    "BlockBase", "BlockInfo", "FusedBatchNormalization", "HighwayBlock", "MultiResidualBlock",
    "ResidualBlock", "SharedResidualStack", "SqueezeExcite", "__version__", "blocks", "build_model",
    "cifar_network", "cifar_resnet", "find_block", "highway_mlp", "highway_net",
    "multi_residual_net", "residual_mlp", "resnet", "resnext", "stages", "wide_resnet",
]
