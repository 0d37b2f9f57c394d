"""SGD with *coupled* weight decay (L2 added to the gradient), as in Caffe and PyTorch.

Keras's ``weight_decay`` argument is *decoupled*: before each update it does
``w -= lr * wd * w`` outside the momentum buffer. The ResNet papers (He et al. 2015, arXiv
1512.03385) used Caffe/Torch SGD, whose weight decay is added to the gradient,
``g <- g + wd * w``, and so goes through the momentum buffer. With momentum ``mu`` the
coupled decay acts, at steady state, about ``1 / (1 - mu)`` times (10x for 0.9) stronger than
the decoupled one with the same ``wd``. This optimizer reproduces the coupled form.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

__all__ = ["CoupledWeightDecaySGD"]


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class CoupledWeightDecaySGD(keras.optimizers.SGD):
    """SGD (with momentum) whose weight decay is L2 added to the gradient before momentum.

    Each step, for every trainable variable not excluded with ``exclude_from_weight_decay``:
    ``g' = g + l2 * w``, then the usual Keras SGD update with ``g'``:
    ``v = momentum * v - lr * g'``; ``w = w + v``. This is exactly gradient descent on
    ``loss + (l2 / 2) * sum(w ** 2)`` (Caffe ``weight_decay``, PyTorch
    ``SGD(weight_decay=...)``), as used by He et al. 2015 (arXiv 1512.03385) with l2 = 1e-4.

    Args:
        learning_rate: float or ``LearningRateSchedule``.
        momentum: momentum in [0, 1].
        nesterov: whether to use Nesterov momentum.
        l2: coupled weight-decay coefficient (>= 0).
        **kwargs: other ``keras.optimizers.SGD`` arguments, except ``weight_decay``.

    Example:
        >>> opt = CoupledWeightDecaySGD(0.1, momentum=0.9, l2=1e-4)  # doctest: +SKIP
        >>> model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")  # doctest: +SKIP
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        l2=0.0,
        name="CoupledWeightDecaySGD",
        **kwargs,
    ):
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "weight_decay must not be given to CoupledWeightDecaySGD (it would add a "
                "second, decoupled decay); use l2=..., got "
                f"weight_decay={kwargs['weight_decay']!r}"
            )
        kwargs.pop("weight_decay", None)
        if (
            isinstance(l2, bool)
            or not isinstance(l2, numbers.Real)
            or not math.isfinite(l2)
            or l2 < 0
        ):
            raise ValueError(f"l2 must be a finite number >= 0, got l2={l2!r}")
        super().__init__(
            learning_rate=learning_rate,
            momentum=float(momentum),
            nesterov=nesterov,
            name=name,
            **kwargs,
        )
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2 > 0 and self._use_weight_decay(variable):
            gradient = ops.convert_to_tensor(gradient)
            gradient = ops.add(
                gradient,
                ops.multiply(ops.cast(self.l2, variable.dtype), ops.convert_to_tensor(variable)),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config["l2"] = self.l2
        return config
