"""keras_resnet_lab: build, train, dissect, visualize and export residual networks (Keras 3).

Example:
    >>> from keras_resnet_lab import ResidualBlock, cifar_resnet, blocks
    >>> model = cifar_resnet(20, num_classes=10)
    >>> [b.name for b in blocks(model)][:3]
    ['stage1_block1', 'stage1_block2', 'stage1_block3']
"""

import os as _os

__version__ = "0.1.0"

#: Set (to "1") only while the ``keras-resnet-lab`` console script imports the package, so that
#: ``--help``, ``--version`` and argument errors answer before TensorFlow loads; the command
#: then loads the layers and models itself (``keras_resnet_lab.cli.load_library``). Every
#: other ``import keras_resnet_lab`` registers every serializable class at once
#: (:mod:`keras_resnet_lab.saving`), so every file the package writes loads after it.
DEFER_IMPORTS = "KERAS_RESNET_LAB_DEFER_IMPORTS"

__all__ = [
    "BlockBase", "BlockInfo", "FusedBatchNormalization", "HighwayBlock", "MultiResidualBlock",
    "ResidualBlock", "SharedResidualStack", "SqueezeExcite", "__version__", "blocks", "build_model",
    "cifar_network", "cifar_resnet", "find_block", "from_keras_hub", "highway_mlp", "highway_net",
    "multi_residual_net", "residual_mlp", "resnet", "resnext", "stages", "wide_resnet",
]

if _os.environ.get(DEFER_IMPORTS) != "1":
    from keras_resnet_lab.saving import register_all as _register_all

    _register_all()  # every serializable class: optimizers, schedules and losses too
    from keras_resnet_lab.layers import (
        BlockBase,
        FusedBatchNormalization,
        HighwayBlock,
        MultiResidualBlock,
        ResidualBlock,
        SharedResidualStack,
        SqueezeExcite,
    )
    from keras_resnet_lab.models import (
        BlockInfo,
        blocks,
        build_model,
        cifar_network,
        cifar_resnet,
        find_block,
        from_keras_hub,
        highway_mlp,
        highway_net,
        multi_residual_net,
        residual_mlp,
        resnet,
        resnext,
        stages,
        wide_resnet,
    )
else:
    def __getattr__(name):
        """The public names, imported on first use (deferred start of the console script)."""
        if name in __all__:
            from keras_resnet_lab import layers, models

            return getattr(layers if hasattr(layers, name) else models, name)
        raise AttributeError(f"module 'keras_resnet_lab' has no attribute {name!r}")
