"""Fine-tuning helpers: frozen batch norm, frozen stages, a new head, learned branch scales."""

import keras

from keras_resnet_lab import _keras_compat
from keras_resnet_lab._checks import memory, positive_int, sequence, text, text_or
from keras_resnet_lab.models.builder import head
from keras_resnet_lab.models.chain import blocks

STEM_PREFIX = "stem"


def _batch_norms(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        yield layer
    for sub in _keras_compat.sublayers(layer):
        yield from _batch_norms(sub)


def freeze_batch_norm(model):
    """Put every batch norm of ``model`` (inside blocks too) in inference mode, in place.

    Keras 3 runs a ``BatchNormalization`` with ``trainable=False`` in inference mode: it uses
    and keeps its moving statistics, and its gamma/beta stop training, while every other
    layer trains on. Re-compile the model afterwards.

    Returns:
        The number of batch-norm layers frozen.

    Example:
        >>> n = freeze_batch_norm(model)
    """
    count = 0
    for layer in model.layers:
        for norm in _batch_norms(layer):
            norm.trainable = False
            count += 1
    return count


def freeze_stages(model, names):
    """Freeze the stem and/or whole stages by name, in place (re-compile afterwards).

    Args:
        model: a block-structured model.
        names: iterable of ``"stem"`` and ``"stage{s}"`` names (``"stage1"``, ...).

    Returns:
        The names of the layers frozen.

    Raises:
        ValueError: for a name that is neither ``"stem"`` nor a stage of the model.

    Example:
        >>> freeze_stages(model, ["stem", "stage1", "stage2"])
    """
    chain = blocks(model)
    valid = [STEM_PREFIX] + sorted({f"stage{b.stage}" for b in chain})
    names = sequence("names", names, single=lambda v: isinstance(v, str))
    for name in names:
        if name not in valid:
            raise ValueError(f"`names`: unknown stage name {name!r}; valid names are: "
                             f"{', '.join(valid)}.")
    frozen = []
    for layer in model.layers:
        stage = layer.name.split("_")[0]
        if stage in names and not isinstance(layer, keras.layers.InputLayer):
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def replace_head(model, num_classes, classifier_activation=None, name=None):
    """A new model sharing every layer of ``model`` up to its head, with a fresh classifier.

    The features are taken from the input of ``model``'s ``avg_pool`` (or ``max_pool``)
    layer when it has one, otherwise from its output; a new ``avg_pool`` + ``predictions``
    with ``num_classes`` outputs is added.

    Example:
        >>> digits_model = replace_head(from_keras_applications(resnet50), 10)
    """
    num_classes = positive_int("num_classes", num_classes)
    text("name", name, allow_none=True)
    features = None
    for pool in ("avg_pool", "max_pool"):
        try:
            features = model.get_layer(pool).input
            break
        except ValueError:
            continue
    if features is None:
        features = model.output
    channels = features.shape[-1] or 1
    memory(f"the head of '{model.name}'", (channels + 1) * num_classes, num_classes,
           {"num_classes": num_classes})
    outputs = head(features, True, num_classes, None, classifier_activation)
    return keras.Model(model.inputs, outputs,
                       name=text_or("name", name, f"{model.name}_{num_classes}way"))


def learned_scales(model):
    """``{block name: alpha}`` of the blocks with a learnable branch scale (ReZero/SkipInit)."""
    return {b.name: float(keras.ops.convert_to_numpy(b.layer.alpha))
            for b in blocks(model) if b.layer.alpha is not None}
