"""Models by name, for the command line: ``build_model("resnet20", num_classes=10)``."""

import functools

from keras_resnet_lab._checks import boolean, text
from keras_resnet_lab.models import cifar, resnet

MODELS = {}
for _depth in cifar.CIFAR_DEPTHS:
    MODELS[f"resnet{_depth}"] = functools.partial(cifar.cifar_resnet, _depth)
for _depth in resnet.IMAGENET_DEPTHS:
    # ImageNet-layout ResNets; "resnet18" etc. are unambiguous, 50/101/152 are ImageNet too.
    MODELS.setdefault(f"resnet{_depth}", functools.partial(resnet.resnet, _depth))
MODELS.update({
    "resnet164": functools.partial(cifar.cifar_resnet, 164, bottleneck=True, preact=True),
    "wrn16_4": functools.partial(cifar.wide_resnet, 16, 4),
    "wrn28_10": functools.partial(cifar.wide_resnet, 28, 10),
    "resnext50": functools.partial(resnet.resnext, 50, 32, 4),
    "highway": cifar.highway_net,
    "multi_resnet20_k4": functools.partial(cifar.multi_residual_net, 20, 4),
})


def build_model(name, *, plain=False, **kwargs):
    """Build a registered model by name (see ``MODELS``); ``plain=True`` gives its plain twin.

    Names ``resnet20/32/44/56/110/1202`` are the CIFAR ResNets, ``resnet18/34/50/101/152`` the
    ImageNet ones (append ``v2`` for pre-activation: ``resnet56v2``, ``resnet50v2``).

    Example:
        >>> model = build_model("resnet20", num_classes=10, input_shape=(32, 32, 3))
    """
    text("name", name)
    base, preact = (name[:-2], True) if name.endswith("v2") else (name, False)
    if base not in MODELS:
        raise ValueError(f"`name` must be a registered model, got the unknown model {name!r}; "
                         f"known models: {', '.join(sorted(MODELS))} "
                         "(append 'v2' to a ResNet name for pre-activation).")
    if preact:
        kwargs["preact"] = True
    return MODELS[base](plain=boolean("plain", plain), **kwargs)
