"""analysis/gates.py: highway gates (Srivastava et al. 2015, arXiv 1507.06228), their
statistics and lesions, on the thin highway/plain MLP (models/mlp.py's highway_mlp)."""

import json
import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_resnet_lab.analysis._common import evaluate_plans
from keras_resnet_lab.analysis.gates import (
    GateResult,
    gate_blocks,
    gate_lesions,
    gate_statistics,
    transform_gates,
)
from keras_resnet_lab.layers.highway import HighwayBlock
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.mlp import highway_mlp, residual_mlp
from keras_resnet_lab.models.surgery import chain_plan, chain_steps, drop_blocks, run_plan


def _data(n=40, features=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, features)).astype("float32"),
            rng.integers(0, 4, size=n).astype("int64"))


def _net(depth=3, units=12, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return highway_mlp(depth, units, input_shape=(12,), num_classes=4, **kwargs)


def _set_gates(model, biases):
    """Gate kernel 0 and bias b in layer i: T = sigmoid(b_i) for every unit and input."""
    for info, b in zip(blocks(model), biases):
        gate = info.layer.gate_conv
        gate.kernel.assign(np.zeros(gate.kernel.shape, "float32"))
        gate.bias.assign(np.full(gate.bias.shape, b, "float32"))


def test_highway_mlp_builder_plain_twin_same_h_and_init():
    highway, plain = _net(4), _net(4, plain=True)
    assert highway.name == "highway_mlp4" and plain.name == "plain_mlp4"
    h_blocks, p_blocks = blocks(highway), blocks(plain)
    assert [b.name for b in h_blocks] == [f"stage1_block{i}" for i in range(1, 5)]
    for hb, pb in zip(h_blocks, p_blocks):
        assert hb.layer.normalization == pb.layer.normalization == "none"
        assert hb.layer.transform_conv.use_bias and pb.layer.transform_conv.use_bias
        assert pb.layer.gate_conv is None and hb.layer.gate_conv is not None
        assert hb.layer.gate_bias == -2.0
        # Same seed, same initializer: the plain twin's H is the highway net's H.
        np.testing.assert_array_equal(hb.layer.transform_conv.kernel.numpy(),
                                      pb.layer.transform_conv.kernel.numpy())
    np.testing.assert_array_equal(h_blocks[0].layer.gate_conv.bias.numpy(), np.full(12, -2.0))
    # A highway layer has the gate's (units + 1) * units parameters more than a plain one.
    assert highway.count_params() - plain.count_params() == 4 * (12 + 1) * 12
    x, _ = _data(5)
    h = ops.convert_to_numpy(pb.layer(x[:, :12]))
    assert h.min() >= 0.0  # plain layer: relu(W x + b), nothing carried
    with pytest.raises(ValueError, match="depth"):
        highway_mlp(0)


def test_gate_kernel_is_drawn_independently_of_the_transform_kernel():
    # One Keras 3 initializer instance returns the same values on every call: the gate must
    # not reuse H's kernel (T would open exactly where H is large).
    for kwargs, shape in ((dict(form="dense"), (None, 8)), ({}, (None, 4, 4, 8))):
        keras.utils.set_random_seed(0)
        block = HighwayBlock(8, **kwargs)
        block.build(shape)
        gate, h = block.gate_conv.kernel.numpy(), block.transform_conv.kernel.numpy()
        assert abs(np.corrcoef(gate.ravel(), h.ravel())[0, 1]) < 0.3
        assert gate.std() == pytest.approx(h.std(), rel=0.3)  # same He-normal distribution
    seeded = []
    for _ in range(2):  # a seeded initializer stays reproducible
        block = HighwayBlock(8, form="dense",
                             kernel_initializer=keras.initializers.HeNormal(seed=3))
        block.build((None, 8))
        seeded.append((block.gate_conv.kernel.numpy(), block.transform_conv.kernel.numpy()))
    np.testing.assert_array_equal(seeded[0][0], seeded[1][0])
    assert not np.allclose(seeded[0][0], seeded[0][1])


def test_gate_lesion_is_exactly_the_carry_and_matches_surgery():
    model = _net(3)
    x, y = _data()
    block = model.get_layer("stage1_block2")
    h = np.asarray(run_plan(chain_steps(model)[:3], x))  # input of stage1_block2
    carried = ops.convert_to_numpy(block.with_gate(h, 0.0))
    np.testing.assert_array_equal(carried, h)  # T = 0: the identity carry, bit for bit
    np.testing.assert_array_equal(carried, ops.convert_to_numpy(block.shortcut(h)))
    # With its own gate, with_gate is the block; with T = 1 it is H alone.
    np.testing.assert_allclose(ops.convert_to_numpy(block.with_gate(h, block.transform_gate(h))),
                               ops.convert_to_numpy(block(h)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(block.with_gate(h, 1.0)),
                               ops.convert_to_numpy(block.transform(h)), rtol=1e-6, atol=1e-6)

    # The whole model with T = 0 in one layer == the surgery model without that branch.
    def lesioned(step, z):
        return step.operation.with_gate(z, 0.0) if step.name == "stage1_block2" else step(z)

    by_gate = np.asarray(run_plan(chain_steps(model), x, block_fn=lesioned))
    by_surgery = np.asarray(drop_blocks(model, ["stage1_block2"])(x))
    np.testing.assert_array_equal(by_gate, by_surgery)
    assert not np.allclose(by_gate, np.asarray(model(x)))  # the lesion does change the output

    # gate_statistics' lesion numbers are those of the T = 0 model.
    result = gate_statistics(model, (x, y), progress_bar=False)
    loss = keras.losses.sparse_categorical_crossentropy(y, by_gate, from_logits=True)
    assert result.lesion_loss[1] == pytest.approx(float(np.mean(loss)), rel=1e-5)
    assert result.lesion_accuracy[1] == float(np.mean(by_gate.argmax(-1) == y))
    assert result.intact_accuracy == float(np.mean(np.asarray(model(x)).argmax(-1) == y))
    assert result.lesion_error_increase()[1] == pytest.approx(
        result.intact_accuracy - result.lesion_accuracy[1])
    # The one-pass lesions (batches of 16: copies of the batch join at each lesioned layer)
    # agree with evaluating each surgery plan separately, for every layer.
    names = ["stage1_block3", "stage1_block1"]
    intact, stacked = gate_lesions(model, (x, y), names, batch_size=16, progress_bar=False)
    plans = [chain_plan(model, drop=[n]) for n in names]
    ref_intact, ref = evaluate_plans(model, (x, y), plans, progress_bar=False)
    assert intact["accuracy"] == ref_intact["accuracy"]
    for got, want in zip(stacked, ref):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["accuracy"] == want["accuracy"]
    assert stacked[1]["loss"] == pytest.approx(result.lesion_loss[0], rel=1e-5)
    _, (single,) = gate_lesions(model, (x, y), "stage1_block2", progress_bar=False)
    assert single["loss"] == pytest.approx(result.lesion_loss[1], rel=1e-5)
    with pytest.raises(ValueError, match="names"):
        gate_lesions(model, (x, y), ["stem_dense"])


def test_gate_statistics_of_hand_set_gate_biases(tmp_path):
    model = _net(3)
    biases = [-3.0, 0.0, 1.5]
    _set_gates(model, biases)
    x, y = _data()
    gates = transform_gates(model, x)
    assert list(gates) == ["stage1_block1", "stage1_block2", "stage1_block3"]
    for gate, b in zip(gates.values(), biases):
        assert gate.shape == (40, 12)
        assert np.all(gate == gate[0, 0])  # the same value for every unit and example
        assert gate[0, 0] == pytest.approx(1 / (1 + math.exp(-b)), abs=1e-7)
    result = gate_statistics(model, (x, y), progress_bar=False, batch_size=16)
    assert isinstance(result, GateResult) and result.n_examples == 40
    for mean, b in zip(result.mean_gate, biases):
        assert mean == pytest.approx(1 / (1 + math.exp(-b)), abs=1e-7)
    assert result.example_std == [0.0, 0.0, 0.0]
    # sigmoid(-3) = 0.047 < 0.1 <= sigmoid(0) = 0.5: all units idle in layer 1, none later.
    assert result.idle_unit_fraction == [1.0, 0.0, 0.0]
    assert all(len(u) == 12 for u in result.unit_mean_gate)
    assert gate_statistics(model, (x, y), gate_threshold=0.6, lesions=False,
                           progress_bar=False).idle_unit_fraction == [1.0, 1.0, 0.0]
    # A layer whose gate is (numerically) closed is idle: its lesion changes nothing.
    _set_gates(model, [-3.0, -100.0, 1.5])
    closed = gate_statistics(model, (x, y), progress_bar=False)
    assert closed.lesion_loss[1] == pytest.approx(closed.intact_loss, abs=1e-6)
    assert closed.lesion_error_increase()[1] == 0.0
    assert "stage1_block2" in closed.idle_blocks()
    closed.to_json(tmp_path / "gates.json")
    saved = json.loads((tmp_path / "gates.json").read_text())
    assert saved["block_names"] == closed.block_names and saved["idle_unit_fraction"][1] == 1.0
    closed.plot(tmp_path / "gates.png")
    assert (tmp_path / "gates.png").read_bytes()[:4] == b"\x89PNG"


def test_gate_statistics_on_a_conv_highway_net():
    from keras_resnet_lab.models.cifar import highway_net

    keras.utils.set_random_seed(0)
    model = highway_net(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3)
    x = np.random.default_rng(0).normal(size=(6, 8, 8, 3)).astype("float32")
    gates = transform_gates(model, x)
    block = model.get_layer("stage1_block1")
    h = np.asarray(run_plan(chain_steps(model)[:3], x))
    full = ops.convert_to_numpy(block.transform_gate(h))  # (6, 8, 8, 4)
    np.testing.assert_allclose(gates["stage1_block1"], full.mean(axis=(1, 2)), rtol=1e-6)
    assert gates["stage2_block1"].shape == (6, 8)


def test_gate_arguments_are_checked():
    model = _net(2)
    data = _data()
    with pytest.raises(ValueError, match="gate_threshold"):
        gate_statistics(model, data, gate_threshold=1.0)
    with pytest.raises(ValueError, match="idle_error_increase"):
        gate_statistics(model, data, idle_error_increase=-0.1)
    with pytest.raises(ValueError, match="no gated highway layer"):
        gate_blocks(_net(2, plain=True))
    with pytest.raises(ValueError, match="no gated highway layer"):
        transform_gates(residual_mlp(2, 12, input_shape=(12,)), data[0])
    with pytest.raises(ValueError, match="gate"):
        model.get_layer("stage1_block1").with_gate(data[0][:, :12], 1.5)
    with pytest.raises(ValueError, match="plain"):
        HighwayBlock(12, form="dense", plain=True).with_gate(data[0], 0.0)
    result = gate_statistics(model, data, lesions=False, progress_bar=False)
    assert result.lesion_loss == [None, None]
    with pytest.raises(ValueError, match="lesions"):
        result.idle_blocks()
