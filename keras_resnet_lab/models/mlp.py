"""Fully-connected residual and highway networks, for the MLP experiments of the papers."""

import keras

from keras_resnet_lab._checks import boolean, count, one_of, positive_int, text_or
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.layers.looks_linear import LooksLinear, crelu
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.models.builder import (
    Stage,
    build_network,
    dense_estimate,
    size_arguments,
)
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

    stem.estimate = dense_estimate(units)
    n_blocks = count("n_blocks", n_blocks)
    plain = boolean("plain", plain)
    kwargs = dict(form="dense", plain=plain)
    kwargs.update(block_kwargs)
    with size_arguments(n_blocks=n_blocks, units=units):
        return build_network(stem, [Stage(units, n_blocks)], block_class, kwargs,
                             input_shape=input_shape,
                             name=text_or("name", name, f"{block}_mlp{n_blocks}"
                                                        f"{'_plain' if plain else ''}"),
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
    depth = count("depth", depth)
    plain = boolean("plain", plain)
    return residual_mlp(depth, units, input_shape=input_shape, block="highway", plain=plain,
                        num_classes=num_classes, gate_bias=gate_bias,
                        normalization=normalization, use_bias=use_bias,
                        name=text_or("name", name, f"{'plain' if plain else 'highway'}_mlp{depth}"),
                        **block_kwargs)


#: Initializations of :func:`plain_mlp`.
INITS = ("looks_linear", "he_relu", "he_crelu")


def plain_mlp(blocks=25, width=32, *, init="looks_linear", input_shape=(64,), num_classes=10,
              seed=0, name=None):
    """A deep plain dense network (no shortcuts, no normalization, no biases in the blocks) with the
    looks-linear initialization of Balduzzi et al. (arXiv 1702.08591) or the usual one.

    ``flatten -> stem_dense -> stage1_block1 ... stage1_block{blocks} -> predictions``: each
    block is a plain pre-activation dense ``ResidualBlock`` (``act -> dense -> act -> dense``,
    no bias), so the network has ``2 * blocks`` hidden layers of ``width`` units.

    - ``"looks_linear"``: CReLU activations (:func:`~keras_resnet_lab.layers.looks_linear.crelu`),
      every dense layer that reads a CReLU starts as the mirrored orthogonal kernel ``[W; -W]``
      (:class:`~keras_resnet_lab.layers.looks_linear.LooksLinear`) and the stem is orthogonal:
      the whole network is exactly linear (an orthogonal map up to the classifier) at
      initialization;
    - ``"he_relu"``: the usual initialization, ReLU and He-normal kernels;
    - ``"he_crelu"``: the looks-linear architecture (CReLU, twice the fan-in) with He-normal
      kernels, so that only the initialization differs from ``"looks_linear"``.

    Args:
        blocks: number of two-layer blocks (``2 * blocks`` hidden layers).
        width: units per hidden layer.
        init: one of :data:`INITS`.
        input_shape: any input shape; it is flattened.
        num_classes: outputs of the (logit) classifier.
        seed: seed of the hidden kernels (one ``keras.random.SeedGenerator`` draws them in
            layer order); the classifier's draw follows Keras's global seed
            (``keras.utils.set_random_seed``).
        name: model name (default ``{init}_plain{2 * blocks}``).

    Returns:
        A functional chain model with blocks ``stage1_block1 ... stage1_block{blocks}``.

    Example:
        >>> model = plain_mlp(25, 32, init="looks_linear", input_shape=(8, 8, 3))
        >>> model.name
        'looks_linear_plain50'
    """
    init = one_of("init", init, INITS)
    blocks = count("blocks", blocks)
    width = positive_int("width", width)
    num_classes = positive_int("num_classes", num_classes)
    noise = keras.random.SeedGenerator(seed_check("seed", seed))
    looks_linear = init == "looks_linear"

    def stem(x):
        x = keras.layers.Flatten(name="stem_flatten")(x)
        kernel = (keras.initializers.Orthogonal(seed=noise) if looks_linear
                  else keras.initializers.HeNormal(seed=noise))
        return keras.layers.Dense(width, kernel_initializer=kernel, name="stem_dense")(x)

    stem.estimate = dense_estimate(width)

    block_kwargs = dict(
        form="dense", preact=True, plain=True, normalization="none",
        activation="relu" if init == "he_relu" else crelu,
        kernel_initializer=(LooksLinear(seed=noise) if looks_linear
                            else keras.initializers.HeNormal(seed=noise)))
    with size_arguments(blocks=blocks, width=width):
        return build_network(stem, [Stage(width, blocks)], ResidualBlock, block_kwargs,
                             input_shape=input_shape, num_classes=num_classes,
                             name=text_or("name", name, f"{init}_plain{2 * blocks}"))
