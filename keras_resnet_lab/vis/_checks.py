"""Argument checks of the visualizations: images, class and filter indices, seeds."""

import numpy as np

from keras_resnet_lab._checks import (
    boolean,
    examples,
    finite_outputs,
    integer,
    is_int,
    number_in,
    one_of,
    positive_int,
)

__all__ = ["as_images", "boolean", "check_finite_model", "check_index", "check_indices",
           "check_range", "check_seed", "integer", "is_int", "number_in", "one_of",
           "positive_int"]


def as_images(model, images, name="images"):
    """``images`` as a float32 batch matching ``model``'s input shape, or a ValueError
    (:func:`keras_resnet_lab._checks.examples`).

    A single image (no batch axis) gets one. Images of another size are *rejected*, not
    resized: an explanation of a silently resized image would not be one of the user's image.
    """
    from keras_resnet_lab.vis._tkv import single_input

    return examples(name, images, labels=None, shape=tuple(single_input(model).shape[1:]),
                    model_name=model.name, inputs="images", single=True)


def check_finite_model(model, x):
    """Refuse ``model`` when its outputs on ``x`` (a few images) are NaN or infinite: its
    weights diverged or are corrupt, and every map or image made from it would be noise (or,
    normalized, all zeros). The analyses refuse such a model the same way."""
    import keras

    from keras_resnet_lab.vis._tkv import single_input

    # A model over the bare input tensor: called with an array, whether ``model`` was built
    # on ``[input]`` (tf-keras-vis style) or on ``input``.
    net = keras.Model(single_input(model), model.outputs[0], name=model.name)
    finite_outputs(net, np.asarray(x[:8], dtype=np.float32))


def check_index(name, value, size, what):
    """Return ``value`` as an int in ``[0, size)``; the error says the range and what it counts."""
    if not is_int(value) or not 0 <= int(value) < size:
        raise ValueError(f"`{name}` must be an int in [0, {size - 1}] ({what}), got {value!r}.")
    return int(value)


def check_indices(name, value, size, what, count=None):
    """``value`` (an int or a sequence of ints) as a list of ints in ``[0, size)``.

    With ``count``, a single int is repeated ``count`` times and a sequence must have
    ``count`` items.
    """
    if is_int(value):
        values = [value] * (count or 1)
    elif isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        values = list(value)
        if count is not None and len(values) != count:
            raise ValueError(f"`{name}` must be one int or {count} ints (one per image), got "
                             f"{len(values)}.")
    else:
        raise ValueError(f"`{name}` must be an int or a non-empty sequence of ints, got "
                         f"{value!r}.")
    return [check_index(name, v, size, what) for v in values]


def check_seed(seed):
    """Return ``seed`` as an int >= 0 (or None)."""
    if seed is None:
        return None
    if not is_int(seed) or seed < 0:
        raise ValueError(f"`seed` must be None or an int >= 0, got {seed!r}.")
    return int(seed)


def check_range(name, value):
    """Return ``value`` as a ``(low, high)`` pair of floats with low < high."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (low, high) of numbers, got {value!r}.") \
            from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"`{name}` must be a pair (low, high) of finite numbers with "
                         f"low < high, got {value!r}.")
    return low, high
