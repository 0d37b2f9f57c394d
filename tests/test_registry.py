"""keras_resnet_lab.models.registry: every entry of ``MODELS`` builds by name (the graph only, on
small inputs: the parameter count does not depend on the input size) with the trainable
parameters the papers give."""

import numpy as np
import pytest

from keras_resnet_lab import catalog
from keras_resnet_lab.models import MODELS, build_model

#: Trainable parameters of each registered model (batch-norm gamma/beta included, no conv bias
#: before a batch norm). An int is exact (torchvision's count for the ImageNet ResNets and
#: ResNeXt, or worked out below); a string is the paper's figure, to its published digits.
EXPECTED = {
    # He et al., arXiv 1512.03385, Table 6 (CIFAR-10)
    "resnet20": "0.27M", "resnet32": "0.46M", "resnet44": "0.66M", "resnet56": "0.85M",
    "resnet110": "1.7M", "resnet1202": "19.4M",
    # torchvision.models.resnet*/resnext50_32x4d
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50": 25_028_904,
    # He et al., arXiv 1603.05027, Table 2 (pre-activation ResNet-164, bottleneck)
    "resnet164": "1.7M",
    # Zagoruyko & Komodakis, arXiv 1605.07146, Table 1 and 4 (WRN-16-4 2.7M, WRN-28-10 36.5M)
    "wrn16_4": "2.7M", "wrn28_10": 36_479_194,
    # No published figure. highway_net(3): per block H (3x3 conv + batch norm) and gate (3x3
    # conv + bias), 9 * cin * cout * 2 + 3 * cout, and a 1x1 projection + batch norm where the
    # width doubles; with the stem (3x3x3x16 conv + batch norm) and the head (64 x 10 + 10).
    "highway": 249_098,
    # No published figure: ResNet-20's stem and head (1,114) and four times its branches
    # (269,722 - 1,114): option-A shortcuts have no parameters.
    "multi_resnet20_k4": 1_114 + 4 * (269_722 - 1_114),
}
#: Slow to build (600 blocks), past the suite's slow-test mark (docs/ARCHITECTURE.md).
SLOW = {"resnet1202"}


def test_every_registered_model_has_a_figure():
    assert set(EXPECTED) == set(MODELS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(MODELS)])
def test_registered_model_builds_with_its_parameter_count(name):
    shape = (32, 32, 3) if catalog.MODELS[name] == "imagenet" else (8, 8, 3)
    model = build_model(name, input_shape=shape)
    count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    expected = EXPECTED[name]
    if isinstance(expected, int):
        assert count == expected
    else:
        decimals = len(expected.rstrip("M").partition(".")[2])
        assert f"{count / 1e6:.{decimals}f}M" == expected, count
