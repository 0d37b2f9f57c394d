"""keras.applications ResNets converted to block chains compute the same function."""

import keras
import numpy as np
import pytest

from keras_resnet_lab.models import blocks, from_keras_applications


def _randomize(model, seed=0):
    """Non-trivial batch-norm statistics and conv biases, so that folding errors would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = weights
            layer.set_weights([rng.uniform(0.5, 1.0, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif isinstance(layer, keras.layers.Conv2D) and len(weights) == 2:
            layer.set_weights([weights[0], rng.normal(0, 0.1, weights[1].shape)])


FAST = [("ResNet50", 16), ("ResNet50V2", 16)]
SLOW = [("ResNet101", 33), ("ResNet152", 50), ("ResNet101V2", 33), ("ResNet152V2", 50)]


def _check(app, n_blocks):
    source = getattr(keras.applications, app)(weights=None, input_shape=(32, 32, 3), classes=7,
                                              classifier_activation=None)
    _randomize(source)
    model = from_keras_applications(source)
    x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32")
    expected = source.predict(x, verbose=0)
    assert np.abs(expected).max() > 1e-2  # a non-degenerate comparison
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-4, rtol=0)
    chain = blocks(model)
    assert len(chain) == n_blocks
    assert [len(v) for v in _per_stage(chain)] == _stack_sizes(source)
    # v1 folds each conv bias into its batch norm: exactly one bias per conv fewer. Every
    # convolution of keras.applications' v1 has one (three a block, four projections and the
    # stem); v2 keeps its biases.
    folded = sum(1 for layer in source.layers if isinstance(layer, keras.layers.Conv2D)
                 and layer.use_bias and not app.endswith("V2"))
    biases = sum(layer.filters for layer in source.layers
                 if isinstance(layer, keras.layers.Conv2D) and layer.use_bias
                 and not app.endswith("V2"))
    assert source.count_params() - model.count_params() == biases
    assert folded == (0 if app.endswith("V2") else 3 * n_blocks + 5)
    assert len(source.weights) - len(model.weights) == folded  # one bias vector a conv
    return model


def _per_stage(chain):
    grouped = {}
    for info in chain:
        grouped.setdefault(info.stage, []).append(info)
    return list(grouped.values())


def _stack_sizes(source):
    sizes = {}
    for layer in source.layers:
        if layer.name.endswith("_out") and "_block" in layer.name:
            stack, block = layer.name.split("_")[:2]
            sizes[stack] = max(sizes.get(stack, 0), int(block[5:]))
    return [sizes[k] for k in sorted(sizes)]


@pytest.mark.parametrize("app, n_blocks", FAST)
def test_resnet50_v1_v2_conversion_is_exact(app, n_blocks):
    model = _check(app, n_blocks)
    if app.endswith("V2"):
        # v2: strided last block of a stack, with a max-pool (option A) shortcut
        assert blocks(model)[2].layer.strides == 2 and blocks(model)[0].layer.strides == 1
        assert blocks(model)[2].layer.subsample is not None
    else:
        assert blocks(model)[3].layer.stride_in_1x1


@pytest.mark.slow
@pytest.mark.parametrize("app, n_blocks", SLOW)
def test_deeper_conversions_are_exact(app, n_blocks):
    _check(app, n_blocks)


def test_headless_and_softmax_sources_keep_their_head():
    source = keras.applications.ResNet50(weights=None, include_top=False, pooling="max",
                                         input_shape=(32, 32, 3))
    model = from_keras_applications(source)
    assert tuple(model.output.shape) == (None, 2048)
    assert model.get_layer("max_pool") is not None
    soft = from_keras_applications(keras.applications.ResNet50V2(
        weights=None, input_shape=(32, 32, 3), classes=4))
    assert soft.get_layer("predictions").get_config()["activation"] == "softmax"


def test_not_a_keras_applications_resnet():
    with pytest.raises(ValueError, match="keras.applications ResNet"):
        from_keras_applications(keras.applications.MobileNetV2(weights=None,
                                                               input_shape=(32, 32, 3)))
