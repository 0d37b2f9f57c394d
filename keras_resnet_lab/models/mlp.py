"""Fully-connected residual and highway networks, for the MLP experiments of the papers."""

import keras

from keras_resnet_lab._checks import one_of, positive_int
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


def highway_mlp(depth=10, units=50, *, gate_bias=-2.0, plain=False, input_shape=(64,),
                num_classes=10, normalization="none", use_bias=True, name=None, **block_kwargs):
    """A thin fully-connected highway network, or its plain twin (Srivastava, Greff &
    Schmidhuber 2015, arXiv 1507.06228).

    ``flatten -> dense stem (units, ReLU) -> depth highway layers -> classifier``. A highway
    layer is ``y = x + T(x) * (H(x) - x)`` with ``H(x) = relu(W_H x + b_H)`` and
    ``T(x) = sigmoid(W_T x + b_T)``, ``b_T`` initialized to ``gate_bias``; the plain twin's
    layer is ``y = H(x)``, the same ``H`` with the same initialization (He normal), so the
    two nets differ only by the gate and the carry. As in the paper's depth experiment there
    is no batch normalization by default, and the dense layers carry a bias.

    Args:
        depth: number of highway (or plain) layers between the stem and the classifier.
        units: width of every layer (thin: 50 in the paper's MNIST experiments).
        gate_bias: initial transform-gate bias (-1 to -3 for depths of about 10 to 30 in the
            paper; ignored by the plain twin, which has no gate).
        plain: build the plain twin ``y = H(x)``.
        input_shape: any input shape; it is flattened.
        num_classes: outputs of the (logit) classifier.
        normalization: ``"none"`` (the paper) or ``"batch"``.
        use_bias: biases on the ``H`` layers (always on the gate).
        name: model name (default ``highway_mlp{depth}`` or ``plain_mlp{depth}``).
        **block_kwargs: more :class:`~keras_resnet_lab.layers.HighwayBlock` arguments.

    Returns:
        A functional chain model with blocks ``stage1_block1 ... stage1_block{depth}``.

    Example:
        >>> highway = highway_mlp(50, 50, gate_bias=-2.0, input_shape=(64,))
        >>> plain = highway_mlp(50, 50, plain=True, input_shape=(64,))
    """
    depth = positive_int("depth", depth)
    return residual_mlp(depth, units, input_shape=input_shape, block="highway", plain=plain,
                        num_classes=num_classes, gate_bias=gate_bias,
                        normalization=normalization, use_bias=use_bias,
                        name=name or f"{'plain' if plain else 'highway'}_mlp{depth}",
                        **block_kwargs)
