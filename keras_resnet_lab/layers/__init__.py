"""Block layers: residual, highway, multi-residual blocks and weight-shared residual stacks,
and the parts they share."""

from keras_resnet_lab.layers.base import BlockBase
from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization
from keras_resnet_lab.layers.drop_path import drop_path, linear_drop_path_rates
from keras_resnet_lab.layers.highway import HighwayBlock
from keras_resnet_lab.layers.looks_linear import CReLU, LooksLinear, crelu
from keras_resnet_lab.layers.residual import MultiResidualBlock, ResidualBlock
from keras_resnet_lab.layers.shared import SharedResidualStack
from keras_resnet_lab.layers.squeeze_excite import SqueezeExcite

__all__ = ["BlockBase", "CReLU", "FusedBatchNormalization", "HighwayBlock", "LooksLinear",
           "MultiResidualBlock", "ResidualBlock", "SharedResidualStack", "SqueezeExcite", "crelu",
           "drop_path", "linear_drop_path_rates"]
