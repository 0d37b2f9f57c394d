"""Network builders, the ordered-blocks helper, and keras.applications / keras-hub conversion."""

from keras_resnet_lab.models.builder import Stage, build_network, conv_stem, head
from keras_resnet_lab.models.chain import BlockInfo, block_name, blocks, find_block, stages
from keras_resnet_lab.models.cifar import (
    CIFAR_DEPTHS,
    cifar_network,
    cifar_resnet,
    highway_net,
    multi_residual_net,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
    resnet1202,
    wide_resnet,
)
from keras_resnet_lab.models.convert import from_keras_applications
from keras_resnet_lab.models.finetune import (
    freeze_batch_norm,
    freeze_stages,
    learned_scales,
    replace_head,
)
from keras_resnet_lab.models.grow import identity_block, insert_blocks
from keras_resnet_lab.models.hub import from_keras_hub
from keras_resnet_lab.models.mlp import highway_mlp, plain_mlp, residual_mlp
from keras_resnet_lab.models.registry import MODELS, build_model
from keras_resnet_lab.models.resnet import (
    IMAGENET_DEPTHS,
    resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext,
)
from keras_resnet_lab.models.surgery import (
    ChainStep,
    DeletedBlock,
    PlanStep,
    chain_plan,
    chain_steps,
    drop_blocks,
    identity_shortcut,
    plan_model,
    reorder_blocks,
    repeat_block,
    run_plan,
    skip_block,
)

__all__ = [
    "ChainStep", "DeletedBlock", "PlanStep", "chain_plan", "chain_steps", "drop_blocks",
    "identity_shortcut", "plan_model", "reorder_blocks", "repeat_block", "run_plan",
    "skip_block",
    "CIFAR_DEPTHS", "IMAGENET_DEPTHS", "MODELS", "BlockInfo", "Stage", "block_name", "blocks",
    "build_model", "build_network", "cifar_network", "cifar_resnet", "conv_stem",
    "find_block", "freeze_batch_norm", "freeze_stages", "from_keras_applications",
    "from_keras_hub", "head",
    "identity_block", "insert_blocks", "learned_scales", "replace_head", "highway_net",
    "multi_residual_net",
    "highway_mlp", "plain_mlp", "residual_mlp", "resnet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet20", "resnet32",
    "resnet44", "resnet56", "resnet110", "resnet1202", "resnext", "stages", "wide_resnet",
]
