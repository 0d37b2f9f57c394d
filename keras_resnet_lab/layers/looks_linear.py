"""Looks-linear networks: CReLU and mirrored weights start exactly linear (arXiv 1702.08591)."""

import keras
import numpy as np
from keras import ops

from keras_resnet_lab._checks import is_int, number_in
from keras_resnet_lab._checks import seed as seed_check


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
def crelu(x):
    """Concatenated ReLU ``[relu(x), relu(-x)]`` on the last axis (doubles the features).

    Shang et al. (arXiv 1603.05201); the looks-linear initialization of Balduzzi et al. (arXiv
    1702.08591) pairs it with mirrored weights. The second half is computed as ``relu(x) - x``
    (the same values) so that its gradient is right at ``x = 0`` too.

    Args:
        x: a tensor.

    Example:
        >>> crelu(keras.ops.convert_to_tensor([[-1.0, 2.0]]))  # [[0, 2, 1, 0]]
    """
    positive = ops.relu(x)
    # relu(x) - x equals relu(-x) bit for bit, and its derivative (relu'(x) - 1) makes the two
    # halves' derivatives differ by exactly 1 everywhere, x = 0 included (where both relu'
    # are 0): a looks-linear network then has the gradient of its linear map at every input.
    return ops.concatenate([positive, positive - x], axis=-1)


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class CReLU(keras.layers.Layer):
    """A layer computing :func:`crelu` (Shang et al., arXiv 1603.05201), as used by the
    looks-linear initialization of Balduzzi et al. (arXiv 1702.08591).

    Example:
        >>> CReLU()(keras.ops.ones((2, 3))).shape
        (2, 6)
    """

    def call(self, x):
        return crelu(x)

    def compute_output_shape(self, input_shape):
        last = input_shape[-1]
        return tuple(input_shape[:-1]) + (None if last is None else 2 * last,)


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class LooksLinear(keras.initializers.Initializer):
    """Mirrored kernel ``[W; -W]`` for a layer that reads a CReLU: ``[W; -W]^T [relu(x);
    relu(-x)] = W^T x``, so a CReLU network starts exactly linear (Balduzzi et al., arXiv
    1702.08591). ``W`` is orthogonal (times ``gain``).

    Args:
        gain: multiplier of the orthogonal matrix.
        seed: None, an int (the same matrix at every call) or a ``keras.random.SeedGenerator``
            (a new matrix at every call).

    Example:
        >>> keras.layers.Dense(8, kernel_initializer=LooksLinear())
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = number_in("gain", gain, 0.0, None, low_open=True)
        if not isinstance(seed, keras.random.SeedGenerator):
            seed = seed_check("seed", seed, allow_none=True)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        shape = tuple(int(s) for s in shape)
        fan_in = int(np.prod(shape[:-1]))
        if len(shape) < 2 or fan_in % 2:
            raise ValueError(f"LooksLinear needs a kernel whose input size is even (it reads a "
                             f"CReLU), got kernel shape {shape}.")
        half = keras.initializers.Orthogonal(self.gain, seed=self.seed)(
            (fan_in // 2, shape[-1]), dtype=dtype)
        kernel = ops.concatenate([half, -half], axis=0)
        return ops.reshape(kernel, shape)

    def get_config(self):
        seed = self.seed if is_int(self.seed) else None
        return {"gain": self.gain, "seed": seed}
