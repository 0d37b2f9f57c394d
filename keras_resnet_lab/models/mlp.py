"""Fully-connected residual and highway networks, for the MLP experiments of the papers."""

import keras

from keras_resnet_lab.layers._checks import one_of, positive_int
from keras_resnet_lab.models.builder import Stage, build_network
from keras_resnet_lab.models.cifar import BLOCKS


def residual_mlp(n_blocks=8, units=64, *, input_shape=(64,), block="residual", plain=False,
                 num_classes=10, include_top=True, classifier_activation=None,
                 drop_path_rate=0.0, name=None, **block_kwargs):
    """A dense network: flatten -> dense stem -> ``n_blocks`` dense blocks -> classifier.

    Args:
        n_blocks: number of blocks (one stage).
        units: width of every block.
        input_shape: any input shape; it is flattened.
        block: ``"residual"``, ``"multi_residual"`` or ``"highway"`` (dense form).
        plain: the plain twin.
        **block_kwargs: passed to every block (``normalization``, ``gate_bias`` ...).

    Example:
        >>> model = residual_mlp(10, 50, input_shape=(64,), block="highway", gate_bias=-2.0)
    """
    block_class = BLOCKS[one_of("block", block, tuple(BLOCKS))]
    units = positive_int("units", units)

    def stem(x):
        if len(x.shape) > 2:
            x = keras.layers.Flatten(name="stem_flatten")(x)
        x = keras.layers.Dense(units, kernel_initializer="he_normal", name="stem_dense")(x)
        return keras.layers.Activation("relu", name="stem_relu")(x)

    kwargs = dict(form="dense", plain=plain)
    kwargs.update(block_kwargs)
    return build_network(stem, [Stage(units, positive_int("n_blocks", n_blocks))], block_class,
                         kwargs, input_shape=input_shape,
                         name=name or f"{block}_mlp{n_blocks}{'_plain' if plain else ''}",
                         include_top=include_top, num_classes=num_classes,
                         classifier_activation=classifier_activation,
                         drop_path_rate=drop_path_rate)
