"""FusedBatchNormalization: Keras's batch norm, trained with TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_lab.layers import FusedBatchNormalization


def _pair(shape, seed=0, **kwargs):
    """A Keras batch norm and ours, built for ``shape`` with the same random weights."""
    rng = np.random.default_rng(seed)
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    ours = FusedBatchNormalization(**kwargs)
    for layer in (keras_bn, ours):
        layer.build(shape)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in keras_bn.get_weights()]
    for layer in (keras_bn, ours):
        layer.set_weights(weights)
    return keras_bn, ours


def _step(layer, x, w, training=True):
    """Output, gradients (input and trainable weights) and moving statistics of one call."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") * w)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [np.asarray(t, "float32") for t in (y, *grads, layer.moving_mean,
                                              layer.moving_variance)]


def _op_types(fn, *args):
    return {op.type for op in tf.function(fn).get_concrete_function(*args).graph.get_operations()}


@pytest.mark.parametrize("shape, kwargs", [
    ((4, 5, 5, 3), {}),
    ((3, 2, 2, 6), {"epsilon": 1e-3, "momentum": 0.5}),
    ((2, 3, 3, 4), {"center": False}),
    ((2, 3, 3, 4), {"scale": False}),
    ((1, 1, 1, 2), {}),  # one value per channel: the batch variance is 0
])
def test_training_step_matches_keras_batch_norm(shape, kwargs):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0.5, 2.0, shape).astype("float32"))
    w = tf.constant(rng.normal(size=shape).astype("float32"))
    keras_bn, ours = _pair(shape, **kwargs)
    for _ in range(2):  # two steps: the moving statistics accumulate
        expected, got = _step(keras_bn, x, w), _step(ours, x, w)
    names = ["output", "input gradient", *[f"{v.name} gradient" for v in ours.trainable_weights],
             "moving mean", "moving variance"]
    for name, e, g in zip(names, expected, got):
        # a channel of one value normalizes 0 / sqrt(epsilon): rounding of the mean is amplified
        atol = 1e-4 if shape == (1, 1, 1, 2) and name == "output" else 2e-5
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=atol, err_msg=name)
    assert "FusedBatchNormV3" in _op_types(lambda t: ours(t, training=True), x)


def test_dynamic_batch_moving_variance_matches_keras():
    """Inside a graph with an unknown batch size the element count is taken at run time."""
    x = tf.constant(np.random.default_rng(2).normal(size=(6, 3, 3, 4)).astype("float32"))
    keras_bn, ours = _pair(x.shape)
    spec = tf.TensorSpec((None, 3, 3, 4), "float32")
    for layer in (keras_bn, ours):
        tf.function(lambda t, layer=layer: layer(t, training=True), input_signature=[spec])(x)
    np.testing.assert_allclose(ours.moving_variance, keras_bn.moving_variance, rtol=1e-6)
    np.testing.assert_allclose(ours.moving_mean, keras_bn.moving_mean, rtol=1e-6, atol=1e-7)


def test_inference_and_frozen_layers_run_keras_computation_unchanged():
    x = tf.constant(np.random.default_rng(3).normal(size=(4, 3, 3, 5)).astype("float32"))
    keras_bn, ours = _pair(x.shape)
    np.testing.assert_array_equal(ours(x, training=False), keras_bn(x, training=False))
    assert "FusedBatchNormV3" not in _op_types(lambda t: ours(t, training=False), x)
    ours.trainable = keras_bn.trainable = False  # Keras: a frozen batch norm runs inference
    before = np.asarray(ours.moving_mean)
    np.testing.assert_array_equal(ours(x, training=True), keras_bn(x, training=True))
    np.testing.assert_array_equal(ours.moving_mean, before)


@pytest.mark.parametrize("case", ["rank 2", "axis 1", "mask", "renorm", "switched off"])
def test_cases_the_kernel_does_not_cover_fall_back_to_keras(case, monkeypatch):
    rng = np.random.default_rng(4)
    shape, kwargs, call_kwargs = (4, 3, 3, 5), {}, {}
    if case == "rank 2":
        shape = (8, 5)
    elif case == "axis 1":
        kwargs = {"axis": 1}
    elif case == "renorm":
        kwargs = {"renorm": True}
    elif case == "mask":
        call_kwargs = {"mask": tf.constant(rng.uniform(size=(4, 3, 3)) > 0.3)}
    elif case == "switched off":
        monkeypatch.setattr(FusedBatchNormalization, "fused", False)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    keras_bn, ours = _pair(shape, **kwargs)
    assert "FusedBatchNormV3" not in _op_types(
        lambda t: ours(t, training=True, **call_kwargs), x)
    expected = keras_bn(x, training=True, **call_kwargs)
    np.testing.assert_allclose(ours(x, training=True, **call_kwargs), expected, atol=1e-6)


def test_mixed_precision_keeps_float32_statistics():
    x = tf.constant(np.random.default_rng(5).normal(1.0, 3.0, (4, 6, 6, 8)).astype("float16"))
    keras_bn, ours = _pair(x.shape, dtype="mixed_float16")
    expected, got = keras_bn(x, training=True), ours(x, training=True)
    assert got.dtype == expected.dtype == tf.float16
    assert "FusedBatchNormV3" in _op_types(lambda t: ours(t, training=True), x)
    assert ours.moving_variance.dtype == "float32"
    np.testing.assert_allclose(np.asarray(got, "float32"), np.asarray(expected, "float32"),
                               atol=1e-2)
    np.testing.assert_allclose(ours.moving_variance, keras_bn.moving_variance, rtol=1e-3)


def test_xla_compiles_the_fused_step():
    x = tf.constant(np.random.default_rng(6).normal(size=(4, 3, 3, 5)).astype("float32"))
    keras_bn, ours = _pair(x.shape)
    got = tf.function(lambda t: ours(t, training=True), jit_compile=True)(x)
    np.testing.assert_allclose(got, keras_bn(x, training=True), atol=2e-5)


def test_saved_models_keep_the_layer_and_its_keras_configuration(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.8, epsilon=1e-3)(inputs))
    x = np.random.default_rng(7).normal(size=(2, 4, 4, 3)).astype("float32")
    model(x, training=True)  # moves the statistics away from their initial values
    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[-1]
    assert type(layer) is FusedBatchNormalization
    assert isinstance(layer, keras.layers.BatchNormalization)
    assert layer.get_config() == model.layers[-1].get_config()
    assert set(layer.get_config()) == set(keras.layers.BatchNormalization().get_config())
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


def test_blocks_and_builders_normalize_with_it():
    from keras_resnet_lab.models import cifar_resnet, resnet

    for model in (cifar_resnet(8, input_shape=(8, 8, 3)),
                  resnet(18, input_shape=(32, 32, 3), preact=True)):
        norms = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                 if isinstance(layer, keras.layers.BatchNormalization)]
        assert norms and all(type(n) is FusedBatchNormalization for n in norms), model.name
