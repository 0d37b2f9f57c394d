"""What the command line can name before TensorFlow loads: models, their options, datasets.

The command line checks its arguments against these tables first, so that ``--help``,
``--version`` and every argument error answer in a fraction of a second, before a byte is
written. The builders (``keras_resnet_lab.models.registry``) and the data pipelines
(``keras_resnet_lab.data``) take their names from here; ``tests/test_catalog.py`` builds
every model with every option to check the tables against the builders.
"""

import dataclasses

CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
IMAGENET_DEPTHS = (18, 34, 50, 101, 152)

#: Every model name of ``build_model`` and its family (which options it takes). A ResNet name
#: with ``v2`` appended is its pre-activation version (``resnet56v2``, ``resnet50v2``).
MODELS = {
    **{f"resnet{d}": "cifar" for d in CIFAR_DEPTHS},
    **{f"resnet{d}": "imagenet" for d in IMAGENET_DEPTHS},
    "resnet164": "cifar",
    "wrn16_4": "cifar",
    "wrn28_10": "cifar",
    "resnext50": "imagenet",
    "highway": "highway",
    "multi_resnet20_k4": "cifar",
}

#: Builder keyword -> (command-line flag, families that take it).
MODEL_OPTIONS = {
    "drop_path_rate": ("--drop-path", ("cifar", "imagenet", "highway")),
    "learnable_scale": ("--learnable-scale", ("cifar", "imagenet", "highway")),
    "zero_init_residual": ("--zero-init-residual", ("cifar", "imagenet")),
    "se_ratio": ("--se-ratio", ("cifar", "imagenet")),
    "avg_down": ("--avg-down", ("cifar", "imagenet", "highway")),
    "stem": ("--stem", ("imagenet",)),
    "output_stride": ("--output-stride", ("imagenet",)),
}

#: The datasets of ``load_dataset``: the embedded digits (offline) and tensorflow-datasets ones.
DATASETS = ("digits", "cifar10", "cifar100", "imagenet2012")


def model_base(name):
    """``(registered name, preact)`` of a model name (``"resnet56v2"`` -> ``("resnet56",
    True)``); ValueError naming the known models for an unknown one."""
    if not isinstance(name, str):
        raise ValueError(f"the model name must be a string, got {name!r}.")
    base, preact = (name[:-2], True) if name.endswith("v2") else (name, False)
    if base not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))} "
                         "(append 'v2' to a ResNet name for pre-activation).")
    return base, preact


def check_model_options(name, options, flag="--model"):
    """Refuse model options that the family of model ``name`` does not take, naming the
    command-line flag, the value given and the models that take it.

    Example:
        >>> check_model_options("resnet50", {"stem": "deep", "avg_down": True})
    """
    base, _ = model_base(name)
    family = MODELS[base]
    for key, value in options.items():
        option, families = MODEL_OPTIONS[key]
        if family not in families:
            takers = ", ".join(n for n, f in MODELS.items() if f in families)
            kinds = " and ".join(_FAMILY_NAMES[f] for f in families)
            shown = "" if value is True else f" {value!r}"
            raise ValueError(f"{option}{shown} is an option of the {kinds} ({takers}); "
                             f"{flag} {name} does not take it.")


_FAMILY_NAMES = {"cifar": "CIFAR networks", "imagenet": "ImageNet ResNets",
                 "highway": "highway network"}


@dataclasses.dataclass(frozen=True)
class TrainingComparison:
    """A training comparison of :mod:`keras_resnet_lab.analysis.comparisons`: the function
    ``keras_resnet_lab.analysis.<module>.<function>``, what it compares, and its 8x8 digits
    (image channels, flattened for dense nets, cut to whole batches of 64)."""

    module: str
    function: str
    description: str
    channels: int
    flatten: bool
    whole_batches: bool


COMPARISONS = {
    "highway": TrainingComparison(
        "highway_depth", "compare_highway_depths",
        "plain against highway dense nets at depths 10, 20, 50 (Srivastava et al. 1507.06228)",
        1, True, True),
    "scaling": TrainingComparison(
        "scaling", "compare_residual_scales",
        "residual branch scale s = 1, 0.3, 0.1 in a 30-block stack without batch norm "
        "(Szegedy et al. 1602.07261)", 3, False, True),
    "sharing": TrainingComparison(
        "sharing", "compare_weight_sharing",
        "one block applied 6 times with shared or per-step batch norm, against 6 blocks "
        "(Liao & Poggio 1604.03640, Jastrzebski et al. 1710.04773)", 3, False, True),
    "looks_linear": TrainingComparison(
        "looks_linear", "compare_initializations",
        "a 50-layer plain net from the looks-linear or the He initialization "
        "(Balduzzi et al. 1702.08591)", 3, False, True),
    "multires": TrainingComparison(
        "multi_residual", "compare_multi_residual",
        "8 blocks of k = 1 against 2 blocks of k = 4 branches at equal parameters "
        "(Abdi & Nahavandi 1609.05672)", 3, False, False),
    "depth": TrainingComparison(
        "degradation", "compare_depths",
        "plain and residual CIFAR networks of 8 and 56 layers trained alike with SGD, step "
        "schedule and warm-up (He et al. 1512.03385)", 3, False, True),
    # channels 0: no digits; the experiment builds its own inputs (networks at
    # initialization, regression tasks).
    "shattering": TrainingComparison(
        "shattering", "shattering",
        "gradients along a line of inputs of plain and residual dense nets with batch norm at "
        "initialization, against depth (Balduzzi et al. 1702.08591)", 0, False, False),
    "hessian": TrainingComparison(
        "hessian", "zero_init_hessian",
        "the loss Hessian at zero initialization of linear nets with shortcuts of 1, 2 and 3 "
        "layers, against depth (Li et al. 1611.01186)", 0, False, False),
}
