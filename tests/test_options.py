"""Model options beyond the classics: ResNet-D, output stride, ReZero/SkipInit, fine-tuning."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_resnet_lab import ResidualBlock, blocks
from keras_resnet_lab.models import (
    cifar_network,
    freeze_batch_norm,
    freeze_stages,
    learned_scales,
    replace_head,
    resnet,
)


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_resnet50_d_parameter_count_and_structure():
    # ResNet-50-D (arXiv 1812.01187): deep stem 32-32-64 and avg-pool-then-1x1 shortcuts;
    # timm's resnet50d has 25,576,264 parameters.
    model = resnet(50, stem="deep", stem_width=32, avg_down=True)
    assert trainable(model) == 25_576_264
    assert [model.get_layer(f"stem_conv{i}").filters for i in (1, 2, 3)] == [32, 32, 64]
    assert model.get_layer("stem_conv1").strides == (2, 2)
    strided = blocks(model)[3].layer  # first block of stage 2
    assert isinstance(strided.subsample, keras.layers.AveragePooling2D)
    assert strided.projection.strides == (1, 1)
    assert tuple(model.output.shape) == (None, 1000)


def test_avg_down_shortcut_averages_then_projects():
    block = ResidualBlock(8, strides=2, avg_down=True, shortcut="B", normalization="none")
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype("float32")
    skip = ops.convert_to_numpy(block.shortcut(x))
    pooled = x.reshape(1, 2, 2, 2, 2, 3).mean(axis=(2, 4))
    kernel = ops.convert_to_numpy(block.projection.kernel)[0, 0]
    np.testing.assert_allclose(skip, pooled @ kernel, atol=1e-5)


@pytest.mark.parametrize("output_stride, side, dilations", [
    (32, 2, [1, 1, 1, 1, 1, 1, 1, 1]),
    (16, 4, [1, 1, 1, 1, 1, 1, 1, 2]),
    (8, 8, [1, 1, 1, 1, 1, 2, 2, 4]),
])
def test_output_stride_keeps_resolution_and_dilates(output_stride, side, dilations):
    model = resnet(18, include_top=False, input_shape=(64, 64, 3), output_stride=output_stride)
    assert tuple(model.output.shape) == (None, side, side, 512)
    assert [b.layer.dilation_rate for b in blocks(model)] == dilations
    assert trainable(model) == trainable(resnet(18, include_top=False, input_shape=(64, 64, 3)))


def test_option_errors():
    with pytest.raises(ValueError, match="output_stride"):
        resnet(18, output_stride=4)
    with pytest.raises(ValueError, match="stem"):
        resnet(18, stem="wide")
    with pytest.raises(ValueError, match="dilation_rate"):
        ResidualBlock(8, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="learnable_scale"):
        ResidualBlock(8, plain=True, learnable_scale=True)


@pytest.mark.parametrize("normalization", ["batch", "none"])  # ReZero, SkipInit
def test_learnable_scale_starts_as_identity_and_learns(normalization):
    model = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, preact=True,
                          learnable_scale=True, normalization=normalization, shortcut="B")
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    block = blocks(model)[0].layer
    h = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(block(h)), h)  # alpha = 0: identity
    assert learned_scales(model) == {"stage1_block1": 0.0, "stage2_block1": 0.0}
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(16) % 3, epochs=3, verbose=0)
    assert any(abs(a) > 1e-4 for a in learned_scales(model).values())


def test_learnable_scale_round_trip(tmp_path):
    model = cifar_network(1, widths=(4,), input_shape=(8, 8, 3), learnable_scale=True,
                          learnable_scale_init=0.5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert learned_scales(loaded) == {"stage1_block1": 0.5}
    x = np.ones((2, 8, 8, 3), "float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_freeze_batch_norm_keeps_statistics_while_the_rest_trains():
    model = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3)
    n = freeze_batch_norm(model)
    assert n == 1 + 2 * 2 + 1  # stem, two per block, one projection
    stats = [ops.convert_to_numpy(w).copy() for w in model.non_trainable_weights]
    kernels = [ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=2, verbose=0)
    for before, after in zip(stats, model.non_trainable_weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(after))
    assert all(np.abs(b - ops.convert_to_numpy(a)).max() > 0
               for b, a in zip(kernels, model.trainable_weights))


def test_freeze_stages_by_name():
    model = cifar_network(2, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3)
    before = trainable(model)
    frozen = freeze_stages(model, ["stem", "stage1"])
    assert frozen == ["stem_conv", "stem_bn", "stem_relu", "stage1_block1", "stage1_block2"]
    assert trainable(model) < before
    assert all(not model.get_layer(n).trainable for n in frozen)
    assert model.get_layer("stage2_block1").trainable
    with pytest.raises(ValueError, match="valid names are: stem, stage1, stage2"):
        freeze_stages(model, ["stage3"])


@pytest.mark.slow  # converts and trains ResNet-50: `pytest -m slow`
def test_transfer_from_converted_keras_applications_model(digits16):
    from keras_resnet_lab.models import from_keras_applications

    source = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                         input_shape=(32, 32, 3))
    model = replace_head(from_keras_applications(source), 10)
    assert tuple(model.output.shape) == (None, 10)
    assert model.get_layer("stage1_block1") is not None
    freeze_stages(model, ["stem", "stage1", "stage2", "stage3"])
    freeze_batch_norm(model)
    (x, y), _ = digits16
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x32 = np.asarray(keras.ops.image.resize(x[:256], (32, 32)))
    history = model.fit(x32, y[:256], epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("preact, kind", [(False, "zero_init"), (True, "zero_init"),
                                          (False, "rezero"), (True, "rezero")])
def test_insert_blocks_keeps_the_function_and_shares_layers(preact, kind, tmp_path):
    from keras_resnet_lab.models import insert_blocks

    model = cifar_network(2, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3,
                          preact=preact, shortcut="B")
    x = np.random.default_rng(0).normal(size=(9, 8, 8, 3)).astype("float32")
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(9) % 3, epochs=1, verbose=0)  # non-trivial statistics
    weights = [ops.convert_to_numpy(w).copy() for w in model.weights]
    grown = insert_blocks(model, after=["stage1_block2", "stage2_block1"], count=2, kind=kind)
    assert [b.name for b in blocks(grown)] == [
        "stage1_block1", "stage1_block2", "stage1_block2_1", "stage1_block2_2",
        "stage2_block1", "stage2_block1_1", "stage2_block1_2", "stage2_block2"]
    np.testing.assert_allclose(grown.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6, rtol=0)
    assert grown.get_layer("stage1_block1") is model.get_layer("stage1_block1")
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(after))
    grown.save(tmp_path / "grown.keras")
    loaded = keras.models.load_model(tmp_path / "grown.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), grown.predict(x, verbose=0))
    # and the grown model trains (the new blocks leave the identity)
    grown.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    grown.fit(x, np.arange(9) % 3, epochs=2, verbose=0)
    assert np.abs(grown.predict(x, verbose=0) - model.predict(x, verbose=0)).max() > 1e-4


def test_insert_blocks_errors():
    from keras_resnet_lab.models import insert_blocks

    model = cifar_network(1, widths=(4,), input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="stage1_block1"):
        insert_blocks(model, after=["stage7_block1"])
    with pytest.raises(ValueError, match="`count`"):
        insert_blocks(model, after=[0], count=0)
    with pytest.raises(ValueError, match="`kind`"):
        insert_blocks(model, after=[0], kind="random")


@pytest.mark.slow  # the script's whole --quick run: `pytest -m slow`
def test_grow_network_script_quick(tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "benchmarks/grow_network.py", "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "grow_network.json").read_text())
    assert result["function_preserved_max_abs_diff"] <= 1e-6
    assert result["blocks"]["grown"] == result["blocks"]["scratch"] == 6
    acc = result["accuracy"]
    assert acc["grown"] > acc["small_before_growing"] - 0.05  # growing does not undo learning
    assert (tmp_path / "grow_network.png").stat().st_size > 1000


@pytest.mark.slow  # trains ResNet-18 through the CLI, then exports it: `pytest -m slow`
def test_options_in_the_cli_serialize_and_export_to_onnx(tmp_path, capsys):
    import json

    from keras_resnet_lab.cli import main
    from keras_resnet_lab.export import export_onnx
    from keras_resnet_lab.models import insert_blocks

    out = tmp_path / "run"
    code = main(["train", "--model", "resnet18", "--dataset", "digits", "--image-size", "32",
                 "--epochs", "1", "--recipe", "general", "--stem", "deep", "--avg-down",
                 "--output-stride", "16", "--learnable-scale", "--drop-path", "0.1",
                 "--out", str(out), "--quiet"])
    assert code == 0
    model = keras.models.load_model(out / "model.keras", compile=False)
    chain = blocks(model)
    assert model.get_layer("stem_conv3").filters == 128  # deep stem, stem_width 64
    assert chain[2].layer.avg_down and chain[-1].layer.dilation_rate == 2
    assert all(b.layer.learnable_scale for b in chain)
    np.testing.assert_allclose([b.layer.drop_path_rate for b in chain],
                               np.linspace(0, 0.1, len(chain)), atol=1e-7)
    grown = insert_blocks(model, after=["stage2_block2"], kind="rezero")
    manifest = export_onnx(grown, tmp_path / "onnx")
    names = [o["name"] for o in manifest.outputs]
    assert "stage2_block2_1" in names and manifest.parity["passed"]
    assert json.loads((out / "results.json").read_text())["epochs"] == 1
    capsys.readouterr()
    assert main(["train", "--model", "resnet20", "--stem", "deep", "--epochs", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "stem" in err[0]
