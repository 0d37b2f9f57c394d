"""Classification loss for integer labels, with optional label smoothing.

Keras 3's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; the categorical one
has it but wants one-hot labels. ``SparseCategoricalCrossentropyWithSmoothing`` takes
integer labels (as our datasets give them), one-hots them inside the loss and applies
label smoothing (Szegedy et al. 2016, arXiv 1512.00567): the target becomes
``(1 - eps) * one_hot + eps / num_classes``.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

__all__ = ["SparseCategoricalCrossentropyWithSmoothing", "classification_loss"]


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy for integer labels with label smoothing ``eps`` over all classes.

    The number of classes is the last dimension of ``y_pred``. Labels may have shape
    ``(batch,)`` or ``(batch, 1)``. With ``label_smoothing=0`` it equals
    ``SparseCategoricalCrossentropy``.

    Args:
        from_logits: whether ``y_pred`` are logits (True) or probabilities (False).
        label_smoothing: ``eps`` in [0, 1).
        reduction: Keras loss reduction.
        name: loss name.

    Example:
        >>> loss = SparseCategoricalCrossentropyWithSmoothing(True, 0.1)  # doctest: +SKIP
        >>> loss([1], [[0.0, 2.0, 0.0]])  # doctest: +SKIP
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy_with_smoothing",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, numbers.Real)
            or not math.isfinite(label_smoothing)
            or not 0.0 <= label_smoothing < 1.0
        ):
            raise ValueError(
                "label_smoothing must be a number in [0, 1), "
                f"got label_smoothing={label_smoothing!r}"
            )
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        num_classes = y_pred.shape[-1]
        one_hot = ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing)
        return config


def classification_loss(from_logits, label_smoothing=0.0):
    """The loss ``compile_model`` uses: sparse cross-entropy, smoothed when asked.

    Args:
        from_logits: whether the model outputs logits.
        label_smoothing: ``eps`` in [0, 1); 0 gives Keras's ``SparseCategoricalCrossentropy``.

    Example:
        >>> classification_loss(from_logits=True).name
        'sparse_categorical_crossentropy'
    """
    if label_smoothing == 0:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=bool(from_logits))
    return SparseCategoricalCrossentropyWithSmoothing(
        from_logits=from_logits, label_smoothing=label_smoothing
    )
