"""Models by name, for the command line: ``build_model("resnet20", num_classes=10)``."""

import functools

from keras_resnet_lab import catalog
from keras_resnet_lab._checks import boolean, text
from keras_resnet_lab.models import cifar, resnet

_BUILDERS = {"cifar": cifar.cifar_resnet, "imagenet": resnet.resnet}
_SPECIAL = {
    "resnet164": functools.partial(cifar.cifar_resnet, 164, bottleneck=True, preact=True),
    "wrn16_4": functools.partial(cifar.wide_resnet, 16, 4),
    "wrn28_10": functools.partial(cifar.wide_resnet, 28, 10),
    "resnext50": functools.partial(resnet.resnext, 50, 32, 4),
    "highway": cifar.highway_net,
    "multi_resnet20_k4": functools.partial(cifar.multi_residual_net, 20, 4),
}
#: Every model name (``keras_resnet_lab.catalog.MODELS``, which the command line checks
#: before TensorFlow loads) -> its builder.
MODELS = {name: _SPECIAL.get(name) or functools.partial(_BUILDERS[family],
                                                        int(name.removeprefix("resnet")))
          for name, family in catalog.MODELS.items()}


def build_model(name, *, plain=False, **kwargs):
    """Build a registered model by name (see ``MODELS``); ``plain=True`` gives its plain twin.

    Names ``resnet20/32/44/56/110/1202`` are the CIFAR ResNets, ``resnet18/34/50/101/152`` the
    ImageNet ones (append ``v2`` for pre-activation: ``resnet56v2``, ``resnet50v2``).

    Example:
        >>> model = build_model("resnet20", num_classes=10, input_shape=(32, 32, 3))
    """
    text("name", name)
    try:
        base, preact = catalog.model_base(name)
    except ValueError as error:
        raise ValueError(f"`name` must be a registered model: {error}") from None
    if preact:
        kwargs["preact"] = True
    return MODELS[base](plain=boolean("plain", plain), **kwargs)
