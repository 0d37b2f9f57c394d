"""The blocks' convolutions, with the conventions of the papers' torch and Caffe networks.

Two choices make a block compute what those networks compute:

- a strided ``k x k`` convolution pads its input symmetrically, ``(k - 1) // 2`` on every side,
  and then runs unpadded (:func:`symmetric_padding`): TensorFlow's ``padding="same"`` puts the
  extra row and column at the end only when the stride is 2, a different function;
- a strided 1x1 convolution is a :class:`Conv2D` with ``subsample=s``: every ``s``-th
  position, then a stride-1 1x1 convolution. That is the same function, and it avoids
  TensorFlow's oneDNN kernel for the input gradient of a strided 1x1 convolution, which
  corrupts memory on odd batch sizes (README, "Performance").
"""

import keras
from keras import ops

from keras_resnet_lab._checks import positive_int


def symmetric_padding(conv, x):
    """``x`` zero-padded by ``(k - 1) // 2`` on both sides of each spatial axis when ``conv``
    is a strided, unpadded ``k x k`` ``Conv2D`` (channels last); else ``x`` unchanged."""
    if isinstance(conv, keras.layers.Conv2D) and conv.strides[0] > 1:
        pad = (conv.kernel_size[0] - 1) // 2
        if pad:
            x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return x


def _is_one(value):
    return value == 1 or (isinstance(value, (tuple, list)) and all(v == 1 for v in value))


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` that can subsample its input first: ``subsample=s`` with a 1x1
    kernel is the strided 1x1 convolution, computed as ``x[:, ::s, ::s]`` and a stride-1 1x1
    convolution (the same function; see the module docstring for why).

    Everything else (weights, arguments, ``convolution_op``) is Keras's layer; with
    ``subsample=1`` it is Keras's layer exactly. The blocks make all their convolutions one,
    so ``conv.subsample`` gives each one's step. It keeps Keras's class name on purpose: a
    ``.keras`` file names a block's weights after its sublayers' classes (``convs/conv2d``,
    ``convs/conv2d_1``, ...), so every file written before this layer existed still loads.

    Args:
        filters, kernel_size, strides, **kwargs: as for ``keras.layers.Conv2D``.
        subsample: keep every ``subsample``-th row and column of the input (>= 1); above 1
            only for a 1x1 kernel of stride 1 (which then has stride ``subsample``).

    Example:
        >>> conv = Conv2D(8, 1, subsample=2)
        >>> tuple(conv(keras.ops.ones((2, 5, 5, 4))).shape)
        (2, 3, 3, 8)
    """

    def __init__(self, filters, kernel_size, strides=1, subsample=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        self.subsample = positive_int("subsample", subsample)
        if self.subsample > 1 and not (_is_one(self.kernel_size) and _is_one(self.strides)):
            raise ValueError(f"`subsample`={subsample!r} needs a 1x1 kernel of stride 1 (the "
                             f"subsampled input then has the strided 1x1 convolution's "
                             f"output), got kernel_size={kernel_size!r}, strides={strides!r}.")

    def _subsampled(self, inputs):
        s = self.subsample
        if s == 1:
            return inputs
        if self.data_format == "channels_first":
            return inputs[:, :, ::s, ::s]
        return inputs[:, ::s, ::s, :]

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(self._subsampled(inputs), kernel)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.subsample > 1:
            for axis in (2, 3) if self.data_format == "channels_first" else (1, 2):
                if shape[axis] is not None:
                    shape[axis] = -(-int(shape[axis]) // self.subsample)
        return super().compute_output_shape(tuple(shape))

    def get_config(self):
        config = super().get_config()
        config["subsample"] = self.subsample
        return config
