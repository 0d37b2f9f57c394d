"""Squeeze-and-excitation channel gating (Hu et al. 2017, arXiv 1709.01507)."""

import keras
from keras import ops

from keras_resnet_lab._checks import keras_object, number_in


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class SqueezeExcite(keras.layers.Layer):
    """Rescale channels by a gate computed from their global average.

    Args:
        ratio: bottleneck ratio of the gate, in (0, 1]; hidden units = max(1, channels * ratio).

    Example:
        >>> y = SqueezeExcite(0.25)(keras.ops.ones((2, 4, 4, 8)))
    """

    def __init__(self, ratio=0.25, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.ratio = number_in("ratio", ratio, 0.0, 1.0, low_open=True)
        self.kernel_initializer = keras_object("kernel_initializer", kernel_initializer,
                                               keras.initializers.get, allow_none=False)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = max(1, int(round(channels * self.ratio)))
        self.reduce = keras.layers.Dense(hidden, activation="relu", name="reduce",
                                         kernel_initializer=self.kernel_initializer,
                                         dtype=self.dtype_policy)
        self.expand = keras.layers.Dense(channels, activation="sigmoid", name="expand",
                                         dtype=self.dtype_policy)
        self.reduce.build((input_shape[0], channels))
        self.expand.build((input_shape[0], hidden))

    def call(self, x):
        axes = tuple(range(1, len(x.shape) - 1))
        pooled = ops.mean(x, axis=axes) if axes else x
        gate = self.expand(self.reduce(pooled))
        if axes:
            gate = ops.reshape(gate, (-1,) + (1,) * len(axes) + (x.shape[-1],))
        return x * gate

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(ratio=self.ratio,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
