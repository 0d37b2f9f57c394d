"""The command line's catalog (checked before TensorFlow loads) against the real builders:
every name builds, and each model option is taken exactly by the families the catalog says."""

import pytest

from keras_resnet_lab import catalog
from keras_resnet_lab.analysis import comparisons
from keras_resnet_lab.data import DATASETS
from keras_resnet_lab.models import build_model
from keras_resnet_lab.models.registry import MODELS

OPTIONS = {"drop_path_rate": 0.1, "learnable_scale": True, "zero_init_residual": True,
           "se_ratio": 0.25, "avg_down": True, "stem": "deep", "output_stride": 16}
#: One model of each family (and a wide and a multi-residual CIFAR net).
REPRESENTATIVES = ("resnet20", "resnet18", "highway", "wrn16_4", "multi_resnet20_k4")


def test_names_agree_with_the_builders_and_pipelines():
    assert set(MODELS) == set(catalog.MODELS)
    assert tuple(DATASETS) == catalog.DATASETS
    assert comparisons.COMPARISONS is catalog.COMPARISONS
    assert catalog.model_base("resnet56v2") == ("resnet56", True)
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        catalog.model_base("resnet21")


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_each_option_is_taken_by_the_families_the_catalog_names(name):
    shape = (64, 64, 3) if catalog.MODELS[name] == "imagenet" else (16, 16, 3)
    for key, value in OPTIONS.items():
        flag, families = catalog.MODEL_OPTIONS[key]
        if catalog.MODELS[name] in families:
            build_model(name, input_shape=shape, num_classes=10, **{key: value})
            catalog.check_model_options(name, {key: value})
        else:
            with pytest.raises((TypeError, ValueError)):
                build_model(name, input_shape=shape, num_classes=10, **{key: value})
            with pytest.raises(ValueError, match=f"{flag}.*{name} does not take it"):
                catalog.check_model_options(name, {key: value})
