"""Batch normalization that trains with TensorFlow's fused kernel.

Keras 3's ``BatchNormalization`` computes a training step out of separate operations: the
batch mean, the squared differences, their mean, then the normalization, and in the backward
pass the gradient of each. TensorFlow has one kernel for all of it, ``FusedBatchNormV3`` (with
``FusedBatchNormGradV3`` for the gradients; oneDNN on a CPU, cuDNN on a GPU), which reads the
activations fewer times, so a training step is faster (measured in
benchmarks/results/timings_behind_comments.md and by benchmarks/models_bench.py). The function
is the same: the outputs, the gradients and the moving statistics agree to float32 rounding
(tested). The layer's own epsilon is passed unchanged: cuDNN's lower bound on it (1e-5, which
made TensorFlow's ``tf.nn.fused_batch_norm`` raise small epsilons to 1.001e-5) is 0 since
cuDNN 7.5.
"""

import math

import keras
from keras import ops

_FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step runs TensorFlow's fused kernel.

    The same arguments, weights, configuration and function as Keras's layer (a drop-in:
    ``isinstance(layer, keras.layers.BatchNormalization)`` holds). In training mode, on the
    TensorFlow backend, for a 4-D input normalized over its last axis in float16, bfloat16 or
    float32, without a mask, ``synchronized`` or ``renorm``, the batch statistics, the
    normalization and their gradients run as one ``FusedBatchNormV3`` operation; the moving
    statistics are updated exactly as Keras does (with the biased batch variance). Everything
    else, inference included, is Keras's own computation. The blocks and builders of this
    package use it for every batch norm.

    ``FusedBatchNormalization.fused = False`` turns the fused kernel off for every instance
    (benchmarks/models_bench.py measures both).

    Example:
        >>> norm = FusedBatchNormalization()
        >>> y = norm(keras.ops.ones((2, 4, 4, 8)), training=True)
    """

    #: Class-wide switch for the fused training kernel (see the class docstring).
    fused = True

    def _fusable(self, inputs, mask):
        rank = len(inputs.shape)
        return (self.fused and mask is None and not self.synchronized and not self.renorm
                and keras.backend.backend() == "tensorflow" and rank == 4
                and self.axis in (-1, rank - 1)
                and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), "float32")
        beta = self.beta if self.center else tf.zeros((channels,), "float32")
        empty = tf.constant([], "float32")
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta,
            mean=empty, variance=empty, epsilon=self.epsilon, exponential_avg_factor=1.0,
            data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n - 1) batch variance for the moving average;
        # Keras averages the biased one.
        count = math.prod(inputs.shape[:-1]) if None not in inputs.shape else None
        if count is None:  # a dynamic batch: counted at run time
            count = ops.cast(ops.size(inputs) // channels, "float32")
            variance = variance * ops.maximum(count - 1.0, 1.0) / count
        elif count > 1:
            variance = variance * ((count - 1) / count)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum))
        return ops.cast(outputs, self.compute_dtype)
