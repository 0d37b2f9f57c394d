"""The GPU paths, checked on the CPU: mixed precision (float16 blocks, float32 logits) and XLA."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_lab.models import blocks, cifar_network
from keras_resnet_lab.training import fit, general_recipe
from keras_resnet_lab.training.precision import (
    float32_outputs,
    mixed_precision_model,
    policy_scope,
    resolve_policy,
)


def tiny(**kwargs):
    keras.utils.set_random_seed(0)
    return cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, **kwargs)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    return x, (x[:, :, :, 0].mean(axis=(1, 2)) > 0).astype("int32") + (x[..., 1].mean(
        axis=(1, 2)) > 0).astype("int32")


@pytest.mark.parametrize("policy, half", [("mixed_float16", "float16"),
                                          ("bfloat16", "bfloat16")])
def test_blocks_compute_in_half_precision_and_logits_stay_float32(policy, half, batch):
    model = mixed_precision_model(tiny, policy)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert model.output.dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    for info in blocks(model):
        block = info.layer
        assert block.compute_dtype == half
        assert {v.dtype for v in block.weights} == {"float32"}  # float32 master weights
        assert {conv.compute_dtype for conv in block.convs} == {half}
    first = blocks(model)[0].layer
    features = keras.Model(model.input, first.output)(batch[0][:2])
    assert keras.backend.standardize_dtype(features.dtype) == half
    logits = model(batch[0][:2])
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    # the same layers, the same names: only the output layer's policy changed
    assert [layer.name for layer in model.layers] == [layer.name for layer in tiny().layers]


def test_mixed_float16_training_step_on_cpu_is_finite_and_learns(batch):
    x, y = batch
    model = mixed_precision_model(tiny, "mixed_float16")
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [w.numpy().copy() for w in model.trainable_weights]
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    changed = [not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights)]
    assert all(changed)


def test_fit_with_mixed_precision_saves_a_float32_output_model(batch, tmp_path):
    x, y = batch
    result = fit(tiny, (x, y), 2, general_recipe(warmup_epochs=0), tmp_path / "run",
                 batch_size=8, verbose=0, precision="float16", jit_compile=False)
    assert result.precision == "mixed_float16"
    assert all(np.isfinite(result.history["loss"]))
    saved = keras.models.load_model(result.model_path, compile=False)
    assert saved.get_layer("predictions").dtype_policy.name == "float32"
    assert blocks(saved)[0].layer.dtype_policy.name == "mixed_float16"
    np.testing.assert_allclose(saved.predict(x, verbose=0), result.model.predict(x, verbose=0),
                               rtol=0, atol=1e-6)


def test_xla_compiles_our_blocks_with_the_same_numbers(batch):
    x, y = batch
    model = tiny(shortcut="A")
    eager = tf.function(lambda t: model(t, training=False))
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True)
    hlo = xla.experimental_get_compiler_ir(tf.constant(x))(stage="hlo")
    assert "HloModule" in hlo and "convolution" in hlo  # really compiled by XLA
    np.testing.assert_allclose(xla(x).numpy(), eager(x).numpy(), rtol=1e-4, atol=1e-4)

    losses = {}
    for jit in (False, True):
        m = tiny(shortcut="A")
        m.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
        losses[jit] = [float(m.train_on_batch(x, y)) for _ in range(3)]
    assert m.jit_compile is True
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    assert losses[True][-1] < losses[True][0]


def test_cli_train_with_mixed_precision(tmp_path):
    from keras_resnet_lab.cli import main

    out = tmp_path / "run"
    code = main(["train", "--model", "resnet20", "--dataset", "digits", "--image-size", "8",
                 "--epochs", "1", "--batch-size", "512", "--out", str(out), "--quiet",
                 "--mixed-precision", "bfloat16"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["precision"] == "mixed_bfloat16" and results["xla"] is False
    assert np.isfinite(results["test_loss"])
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert model.output.dtype == "float32"
    assert blocks(model)[0].layer.compute_dtype == "bfloat16"


class _Stop(Exception):
    pass


@pytest.mark.parametrize("flags, precision, jit", [
    ([], None, "auto"),
    (["--mixed-precision", "--xla"], "float16", True),
])
def test_cli_flags_reach_fit(flags, precision, jit, tmp_path, monkeypatch):
    import keras_resnet_lab.training as training
    from keras_resnet_lab.cli import main

    seen = {}

    def fake_fit(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(training, "fit", fake_fit)
    with pytest.raises(_Stop):
        main(["train", "--image-size", "8", "--out", str(tmp_path / "run"), *flags])
    assert seen["precision"] == precision and seen["jit_compile"] == jit


def test_float32_model_is_left_alone_and_bad_policies_are_refused():
    model = tiny()
    assert float32_outputs(model) is model
    assert resolve_policy(None) == "float32" and resolve_policy("fp16") == "mixed_float16"
    with pytest.raises(ValueError, match="policy must be one of"):
        resolve_policy("float8")
    with pytest.raises(ValueError, match="zero-argument callable"):
        mixed_precision_model(model, "mixed_float16")
    with pytest.raises(RuntimeError), policy_scope("mixed_float16"):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"
