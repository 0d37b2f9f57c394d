"""Surgery on block chains: drop, reorder, repeat blocks in new models sharing the layers."""

import keras
import numpy as np
import pytest

from keras_resnet_lab.models import blocks, cifar_network, residual_mlp
from keras_resnet_lab.models.surgery import (
    DeletedBlock,
    chain_plan,
    chain_steps,
    drop_blocks,
    identity_shortcut,
    reorder_blocks,
    repeat_block,
    run_plan,
    skip_block,
)


def _net(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    options = dict(widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, shortcut="A")
    options.update(kwargs)
    return cifar_network(2, **options)


def _randomize_bn(model, rng, keep=None):
    """Give every batch norm (but those of block ``keep``) non-trivial statistics and scale."""
    kept = set()
    if keep is not None:
        kept = {id(lay) for lay in model.get_layer(keep)._flatten_layers(include_self=True)}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in kept:
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * rng.uniform(0.5, 1.5, gamma.shape) if gamma.any()
                               else gamma, rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, var.shape)])


@pytest.fixture(scope="module")
def x8():
    return np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype("float32")


def test_chain_steps_walks_the_sequential_chain():
    steps = chain_steps(_net(preact=True))
    names = [s.name for s in steps]
    assert names == ["stem_conv", "stage1_block1", "stage1_block2", "stage2_block1",
                     "stage2_block2", "post_bn", "post_relu", "avg_pool", "predictions"]
    assert [s.block.name for s in steps if s.block is not None] == names[1:5]
    assert steps[3].input_shape == (None, 8, 8, 4) and steps[3].output_shape == (None, 4, 4, 8)


def test_chain_steps_rejects_a_branching_model():
    inputs = keras.Input((4,))
    a, b = keras.layers.Dense(3, name="a")(inputs), keras.layers.Dense(3, name="b")(inputs)
    model = keras.Model(inputs, keras.layers.Add(name="join")([a, b]))
    with pytest.raises(ValueError, match="not a sequential chain.*'join' takes 2 tensors"):
        chain_steps(model)


def test_drop_no_blocks_equals_original_and_shares_layers(x8):
    model = _net(preact=True)
    same = drop_blocks(model, [])
    np.testing.assert_array_equal(np.asarray(same(x8)), np.asarray(model(x8)))
    assert same.get_layer("stage1_block2") is model.get_layer("stage1_block2")
    assert len(same.weights) == len(model.weights)


@pytest.mark.parametrize("preact", [True, False])
def test_dropping_a_zero_initialized_block_changes_nothing(x8, preact):
    model = _net(preact=preact, zero_init_residual=True)
    rng = np.random.default_rng(0)
    _randomize_bn(model, rng, keep="stage1_block2")
    # Every block but stage1_block2 gets a non-zero branch again.
    for info in blocks(model):
        if info.name != "stage1_block2":
            for conv in info.layer.convs:
                kernel = conv.get_weights()[0]
                conv.set_weights([rng.normal(0, 0.3, kernel.shape).astype("float32")])
    reference = np.asarray(model(x8))
    np.testing.assert_array_equal(np.asarray(drop_blocks(model, ["stage1_block2"])(x8)),
                                  reference)
    assert np.abs(np.asarray(drop_blocks(model, ["stage1_block1"])(x8)) - reference).max() > 1e-3


def test_dropped_block_keeps_its_shortcut_and_the_model_round_trips(x8, tmp_path):
    model = _net(preact=True, shortcut="B")
    dropped = drop_blocks(model, ["stage2_block1", 0])
    assert [b.name for b in blocks(dropped)] == ["stage1_block2", "stage2_block2"]
    assert isinstance(dropped.get_layer("stage2_block1_deleted"), DeletedBlock)
    # By hand: stem, shortcut of block 1, block 2, shortcut (projection) of block 3, ...
    layer = model.get_layer
    h = layer("stem_conv")(x8)
    h = layer("stage1_block1").shortcut(h)
    h = layer("stage1_block2")(h)
    h = layer("stage2_block1").shortcut(h)
    h = layer("stage2_block2")(h)
    for name in ("post_bn", "post_relu", "avg_pool", "predictions"):
        h = layer(name)(h)
    np.testing.assert_allclose(np.asarray(dropped(x8)), np.asarray(h), atol=1e-6)
    path = str(tmp_path / "dropped.keras")
    dropped.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x8)), np.asarray(dropped(x8)), atol=1e-6)


def test_deleting_a_plain_block_uses_the_strided_zero_padded_identity(x8):
    plain = _net(plain=True)
    block = plain.get_layer("stage2_block1")
    h = np.asarray(plain.get_layer("stem_bn")(plain.get_layer("stem_conv")(x8)))
    expected = np.pad(h[:, ::2, ::2, :], ((0, 0), (0, 0), (0, 0), (0, 4)))
    np.testing.assert_allclose(np.asarray(identity_shortcut(block, h)), expected)
    np.testing.assert_allclose(np.asarray(skip_block(block, np.maximum(h, 0))),
                               np.maximum(expected, 0))
    assert tuple(drop_blocks(plain, ["stage2_block1"])(x8).shape) == (5, 3)
    with pytest.raises(ValueError, match="is plain"):
        block.shortcut(h)


def test_reorder_two_blocks_and_back_restores_outputs(x8):
    model = cifar_network(3, widths=(4,), input_shape=(8, 8, 3), num_classes=3, preact=True)
    _randomize_bn(model, np.random.default_rng(2))
    names = [b.name for b in blocks(model)]
    swapped = reorder_blocks(model, [names[0], names[2], names[1]])
    assert [s.name for s in chain_steps(swapped) if s.block is not None] == [
        names[0], names[2], names[1]]
    assert np.abs(np.asarray(swapped(x8)) - np.asarray(model(x8))).max() > 1e-4
    back = reorder_blocks(swapped, names)
    np.testing.assert_array_equal(np.asarray(back(x8)), np.asarray(model(x8)))


def test_reorder_refuses_blocks_that_change_shape():
    model = _net()
    with pytest.raises(ValueError, match="stage2_block1.*changes shape"):
        reorder_blocks(model, ["stage2_block1", "stage1_block2", "stage1_block1",
                               "stage2_block2"])
    with pytest.raises(ValueError, match="cannot put block 'stage2_block2'.*'stage1_block2'"):
        reorder_blocks(model, ["stage1_block1", "stage2_block2", "stage2_block1",
                               "stage1_block2"])
    with pytest.raises(ValueError, match="every block"):
        reorder_blocks(model, ["stage1_block1"])
    with pytest.raises(ValueError, match="unknown block 'nope'"):
        drop_blocks(model, ["nope"])


def test_repeat_block_unrolls_with_shared_weights(x8):
    model = _net(preact=True)
    _randomize_bn(model, np.random.default_rng(3))
    np.testing.assert_array_equal(np.asarray(repeat_block(model, "stage2_block2", 1)(x8)),
                                  np.asarray(model(x8)))
    unrolled = repeat_block(model, "stage2_block2", 3)
    h = x8
    for layer in model.layers[1:]:
        h = layer(h)
        if layer.name == "stage2_block2":
            h = layer(layer(h))
    np.testing.assert_allclose(np.asarray(unrolled(x8)), np.asarray(h), atol=1e-6)
    assert [s.name for s in chain_steps(unrolled)].count("stage2_block2") == 3
    assert len(unrolled.weights) == len(model.weights)
    with pytest.raises(ValueError, match="stage2_block1.*changes shape"):
        repeat_block(model, "stage2_block1", 2)
    with pytest.raises(ValueError, match="`times` must be a positive integer"):
        repeat_block(model, "stage2_block2", 0)


def test_run_plan_matches_surgery_models_on_dense_networks():
    model = residual_mlp(3, 8, input_shape=(5,), num_classes=2, preact=True)
    x = np.random.default_rng(4).normal(size=(6, 5)).astype("float32")
    plan = chain_plan(model, drop=[1], repeat={"stage1_block3": 2})
    expected = np.asarray(repeat_block(drop_blocks(model, [1]), "stage1_block3", 2)(x))
    np.testing.assert_allclose(np.asarray(run_plan(plan, x)), expected, atol=1e-6)
