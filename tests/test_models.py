"""Network builders: parameter counts against the papers, block chains, twins, heads, errors."""

import keras
import numpy as np
import pytest

from keras_resnet_lab import blocks, find_block, stages
from keras_resnet_lab.models import (
    build_model,
    cifar_network,
    cifar_resnet,
    highway_net,
    multi_residual_net,
    residual_mlp,
    resnet,
    resnext,
    wide_resnet,
)


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# Trainable parameters as published (torchvision/timm count the same way: no conv bias in
# front of a batch norm, batch-norm gamma/beta included).
@pytest.mark.parametrize("build, expected", [
    (lambda: resnet(18), 11_689_512),
    (lambda: resnet(34), 21_797_672),
    (lambda: resnet(50), 25_557_032),
    (lambda: resnext(50, 32, 4), 25_028_904),
    (lambda: wide_resnet(28, 10), 36_479_194),
])
def test_imagenet_and_wide_parameter_counts_exact(build, expected):
    assert trainable(build()) == expected


@pytest.mark.parametrize("depth, millions", [(20, 0.27), (56, 0.85), (110, 1.7)])
def test_cifar_parameter_counts_match_paper(depth, millions):
    count = trainable(cifar_resnet(depth))
    assert round(count / 1e6, 2 if millions < 1 else 1) == millions


def test_cifar_resnet_chain_names_and_shapes():
    model = cifar_resnet(20)
    chain = blocks(model)
    assert [b.name for b in chain] == [f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2, 3)]
    assert [b.index for b in chain] == list(range(9))
    assert {s: len(v) for s, v in stages(model).items()} == {1: 3, 2: 3, 3: 3}
    assert tuple(chain[3].layer.output.shape) == (None, 16, 16, 32)
    assert chain[3].layer.strides == 2 and chain[4].layer.strides == 1
    assert tuple(model.output.shape) == (None, 10)
    assert model.get_layer("predictions").get_config()["activation"] == "linear"  # logits


def test_find_block_by_name_and_index():
    model = cifar_resnet(20)
    assert find_block(model, -1).name == "stage3_block3"
    assert find_block(model, "stage2_block1").index == 3
    with pytest.raises(ValueError, match="stage1_block1, stage1_block2"):
        find_block(model, "stage9_block1")
    with pytest.raises(ValueError, match="block index"):
        find_block(model, 9)
    with pytest.raises(ValueError, match="no residual/highway blocks"):
        blocks(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_plain_twin_has_same_layers_and_no_shortcut():
    res, plain = cifar_resnet(20), cifar_resnet(20, plain=True)
    assert [layer.name for layer in res.layers] == [layer.name for layer in plain.layers]
    assert trainable(res) == trainable(plain)  # option A shortcuts have no parameters
    assert all(b.layer.plain for b in blocks(plain))
    res50, plain50 = resnet(50, input_shape=(64, 64, 3)), resnet(50, plain=True,
                                                                  input_shape=(64, 64, 3))
    projections = sum(
        int(np.prod(w.shape)) for b in blocks(res50)
        for layer in (b.layer.projection, b.layer.projection_norm) if layer is not None
        for w in layer.trainable_weights)
    assert projections > 0
    assert trainable(res50) - trainable(plain50) == projections
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    assert np.abs(res.predict(x, verbose=0) - plain.predict(x, verbose=0)).max() > 0


def test_v2_has_post_norm_and_v1_does_not():
    v2 = cifar_resnet(20, preact=True)
    assert v2.get_layer("post_bn") is not None
    assert all(b.layer.preact for b in blocks(v2))
    with pytest.raises(ValueError):
        cifar_resnet(20).get_layer("post_bn")


@pytest.mark.parametrize("depth", [0, 9, 21, 23, "20", True])
def test_cifar_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match="`depth` must be 6n\\+2"):
        cifar_resnet(depth)


def test_bottleneck_cifar_depth_and_wide_depth_errors():
    assert len(blocks(cifar_resnet(29, bottleneck=True))) == 9
    with pytest.raises(ValueError, match="9n\\+2"):
        cifar_resnet(32, bottleneck=True)
    with pytest.raises(ValueError, match="6n\\+4"):
        wide_resnet(27, 2)
    with pytest.raises(ValueError, match="`depth`"):
        resnet(42)


def test_include_top_pooling_input_shape():
    feat = resnet(18, include_top=False, input_shape=(64, 64, 3))
    assert tuple(feat.output.shape) == (None, 2, 2, 512)
    pooled = resnet(18, include_top=False, pooling="max", input_shape=(64, 64, 3))
    assert tuple(pooled.output.shape) == (None, 512)
    dynamic = cifar_resnet(20, input_shape=(None, None, 3), num_classes=3)
    assert dynamic.predict(np.zeros((1, 20, 24, 3), "float32"), verbose=0).shape == (1, 3)
    soft = cifar_resnet(20, classifier_activation="softmax")
    probs = soft.predict(np.ones((2, 32, 32, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        resnet(18, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="num_classes"):
        cifar_resnet(20, num_classes=0)


def test_other_families_build_and_predict():
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    for model in (highway_net(2, input_shape=(16, 16, 3)),
                  highway_net(2, plain=True, input_shape=(16, 16, 3)),
                  multi_residual_net(14, 4, input_shape=(16, 16, 3)),
                  wide_resnet(10, 2, input_shape=(16, 16, 3)),
                  resnext(50, 8, 4, input_shape=(32, 32, 3), num_classes=5),
                  cifar_network(1, widths=(4, 8), input_shape=(16, 16, 3), num_classes=3,
                                se_ratio=0.5, drop_path_rate=0.2)):
        out = model.predict(np.resize(x, (2,) + tuple(model.input.shape[1:])), verbose=0)
        assert np.all(np.isfinite(out))
        assert len(blocks(model)) >= 2


def test_multi_residual_equal_parameters_at_equal_total_branches():
    # One stage of 4 single-branch blocks vs 1 four-branch block: the same 4 branches.
    one = cifar_network(4, block="multi_residual", branches=1, widths=(8,))
    four = cifar_network(1, block="multi_residual", branches=4, widths=(8,))
    assert trainable(one) == trainable(four)
    assert len(blocks(one)) == 4 and len(blocks(four)) == 1


def test_drop_path_rates_grow_linearly_over_depth():
    model = cifar_network(2, widths=(4, 8), drop_path_rate=0.3)
    rates = [b.layer.drop_path_rate for b in blocks(model)]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="drop_path_rate"):
        cifar_network(2, widths=(4, 8), drop_path_rate=0.3, plain=True)


def test_residual_mlp_dense_chain():
    model = residual_mlp(3, 16, input_shape=(8, 8, 1), block="highway", gate_bias=-1.0)
    assert [b.layer.form for b in blocks(model)] == ["dense"] * 3
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)


def test_build_model_by_name():
    assert build_model("resnet20").name == "resnet20"
    assert build_model("resnet32v2", plain=True).name == "resnet32v2_plain"
    assert len(blocks(build_model("resnet18", input_shape=(32, 32, 3)))) == 8
    with pytest.raises(ValueError, match="known models: .*resnet110"):
        build_model("resnet21")


def test_whole_model_round_trip(tmp_path):
    model = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, preact=True,
                          se_ratio=0.5, shortcut="B")
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype("float32")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.array([0, 1, 2]), epochs=1, verbose=0)  # moving statistics move
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert [b.name for b in blocks(loaded)] == [b.name for b in blocks(model)]
