"""Highway gates (Srivastava et al. 2015, arXiv 1507.06228): gate statistics, gate lesion,
the thin highway/plain MLP builder, and the depth-experiment script in --quick mode."""

import json
import math

import keras
import numpy as np
import pytest
from _scripts import check_results, run_script
from keras import ops

from keras_resnet_lab.analysis._common import evaluate_plans
from keras_resnet_lab.analysis._training import training_digits
from keras_resnet_lab.analysis.gates import (
    GateResult,
    gate_blocks,
    gate_lesions,
    gate_statistics,
    transform_gates,
)
from keras_resnet_lab.analysis.highway_depth import (
    HighwayDepthComparison,
    compare_highway_depths,
    gate_bias_at,
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


@pytest.mark.slow  # a benchmark's whole --quick run: `pytest -m slow`
def test_highway_srivastava_quick(tmp_path):
    results = run_script("highway_srivastava", tmp_path)
    found = check_results(results, tmp_path, "highway_srivastava",
                          ["srivastava_depth", "srivastava_gates"])
    numbers, config = results["numbers"], results["config"]
    # 3 seeds of 10 epochs: the plain nets' rise (65 points [28, 103]) clears 5 points; the
    # other statistics are reported on their side as measured (highway rise 4.9 [-1.1, 11.0],
    # idle fraction 0.92 [0.75, 1.09], gate change +0.033 [+0.018, +0.048]).
    depth, gates_finding = found["srivastava_depth"], found["srivastava_gates"]
    assert depth["seeds"] == gates_finding["seeds"] == config["seeds"] == [0, 1, 2]
    plain_rise, highway_rise = depth["criteria"]
    assert plain_rise["verdict"] == "held" and plain_rise["estimate"] > 20
    assert highway_rise["estimate"] < plain_rise["estimate"] - 20
    idle, change = gates_finding["criteria"]
    assert idle["estimate"] >= 0.5 and change["key"] == "gate_change"
    assert plain_rise["samples"] == pytest.approx(
        [100 * (s["final_train_error"]["plain50"] - s["final_train_error"]["plain10"])
         for s in numbers["per_seed"].values()])
    assert config["depths"] == [10, 20, 50] and config["gate_bias"] == -2.0
    assert config["normalization"] == "none"
    # -2 at depth 10; deeper nets keep the same carried share (1 - sigmoid(b))^(depth - 1).
    assert config["gate_bias_by_depth"] == {"10": -2.0, "20": -2.7811, "50": -3.7471}
    for depth, bias in config["gate_bias_by_depth"].items():
        carried = (1 - 1 / (1 + math.exp(-bias))) ** (int(depth) - 1)
        assert carried == pytest.approx((1 - 1 / (1 + math.exp(2.0))) ** 9, rel=1e-3)
    errors = numbers["final_train_error"]
    assert set(errors) == {f"{kind}{d}" for kind in ("plain", "highway") for d in (10, 20, 50)}
    assert errors["plain50"] > errors["plain10"] + 0.2
    assert errors["highway50"] < errors["plain50"]
    gates = numbers["gates"]
    # Depth 50 = the stem + 49 highway layers; the late ones are layers 25..49.
    assert len(gates["mean_gate"]) == len(gates["lesion_error_increase"]) == 49
    assert gates["late_layers"][0] == "stage1_block25" and len(gates["late_layers"]) == 25
    assert gates["late_idle_layers"] == sum(
        inc <= gates["idle_error_increase"] for inc in gates["lesion_error_increase"][24:])
    assert gates["late_idle_layers"] >= 13 and 0 < max(gates["mean_gate"]) < 0.5
    assert {"depth_experiment.png", "gates.png", "findings_over_seeds.png"} <= set(
        results["figures"])


# --- the depth experiment as a library function (keras_resnet_lab.analysis.highway_depth) ---

def test_gate_bias_at_keeps_the_carried_share_and_checks_arguments():
    assert gate_bias_at(10) == -2.0 and gate_bias_at(10, -1.5) == -1.5
    assert [round(gate_bias_at(d), 4) for d in (20, 50, 100)] == [-2.7811, -3.7471, -4.4563]
    assert [round(gate_bias_at(d, -2.0), 2) for d in (10, 20, 50)] == [-2.0, -2.78, -3.75]
    reference = (1 - 1 / (1 + math.exp(2.0))) ** 9
    for depth in (2, 3, 20, 50, 100):
        b = gate_bias_at(depth)
        assert (1 - 1 / (1 + math.exp(-b))) ** (depth - 1) == pytest.approx(reference,
                                                                            rel=1e-12)
    assert gate_bias_at(3) > gate_bias_at(10) > gate_bias_at(50)  # deeper: more negative
    # Log-space formula: finite for a strongly negative bias (1 - sigmoid(-30) rounds to 1).
    assert math.isfinite(gate_bias_at(50, -30.0)) and gate_bias_at(50, -30.0) < -30.0
    for kwargs, match in ((dict(depth=1), "depth"), (dict(depth=20.0), "depth"),
                          (dict(depth=True), "depth"), (dict(depth=20, gate_bias=math.nan),
                                                        "gate_bias"),
                          (dict(depth=20, gate_bias=50.0), "gate_bias")):
        with pytest.raises(ValueError, match=match):
            gate_bias_at(**kwargs)


def _tiny_digits(n=200):
    (x, y), (x_test, y_test) = training_digits(8, channels=1, batch_size=64, flatten=True)
    return (x[:n], y[:n]), (x_test[:120], y_test[:120])


def test_compare_highway_depths_tiny_run(tmp_path):
    train, test = _tiny_digits()
    result = compare_highway_depths(train, test, depths=(3, 2), units=8, epochs=1,
                                    batch_size=50, progress_bar=False)
    assert isinstance(result, HighwayDepthComparison)
    names = {"plain2", "plain3", "highway2", "highway3"}
    assert result.depths == [2, 3] and (result.shallowest, result.deepest) == (2, 3)
    for field in ("curves", "final_train_loss", "final_train_error", "final_test_loss",
                  "final_test_error", "params", "learning_rate"):
        assert set(getattr(result, field)) == names, field
    assert all(len(c) == 1 for c in result.curves.values())
    assert result.learning_rate == dict.fromkeys(names, 0.01)
    # 64 inputs -> stem 8 -> (depth - 1) layers of 8 -> 10 classes; a gate adds 8 * 8 + 8.
    assert result.params == {"plain2": 682, "plain3": 754, "highway2": 754, "highway3": 898}
    assert result.gate_bias_by_depth["2"] == pytest.approx(0.7580597682, abs=1e-9)
    for errors in (result.final_train_error, result.final_test_error):
        assert all(0.0 <= e <= 1.0 for e in errors.values())
    # The deepest highway net (2 gated layers): the late half is its second layer.
    gates = result.gates
    assert gates["model_name"] == "highway3" and gates["n_examples"] == 120
    assert gates["block_names"] == ["stage1_block1", "stage1_block2"]
    assert gates["late_layers"] == ["stage1_block2"]
    assert gates["late_idle_fraction"] == gates["late_idle_layers"] == int(
        gates["lesion_error_increase"][1] <= gates["idle_error_increase"])
    assert gates["intact_test_error"] == pytest.approx(result.final_test_error["highway3"])
    assert all(0.0 < g < 0.5 for g in gates["mean_gate"])  # negative gate bias: mostly closed
    gate_result = result.gate_result()
    assert isinstance(gate_result, GateResult) and gate_result.mean_gate == gates["mean_gate"]

    # The gates of the same net before training (same seed, same test data).
    keras.utils.set_random_seed(0)
    fresh = highway_mlp(2, 8, gate_bias=gate_bias_at(3), input_shape=(64,), num_classes=10,
                        name="highway3")
    assert result.init_mean_gate == gate_statistics(fresh, test, lesions=False,
                                                    progress_bar=False).mean_gate
    err = result.final_train_error
    stats = result.statistics()
    assert list(stats) == ["srivastava_depth", "srivastava_gates"]
    assert stats["srivastava_depth"] == pytest.approx({
        "plain_rise": 100 * (err["plain3"] - err["plain2"]),
        "highway_rise": 100 * (err["highway3"] - err["highway2"])})
    assert stats["srivastava_gates"] == pytest.approx({
        "idle_fraction": gates["late_idle_fraction"],
        "gate_change": gates["mean_gate"][1] - result.init_mean_gate[1]})
    assert set(result.notes()) == set(stats)
    saved = json.loads(open(result.to_json(tmp_path / "r.json")).read())
    assert "criteria" not in saved and "finding_held" not in saved
    assert saved["init_mean_gate"] == result.init_mean_gate and saved["gates"]["late_layers"]
    text = result.describe()
    assert f"{100 * err['plain2']:.1f}%/{100 * err['plain3']:.1f}%" in text
    assert "since initialization" in text and "finding" not in text
    with open(result.plot(tmp_path / "depth.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def _hand_made(gates=True, plain50=0.383, highway50=0.015, seed=0):
    names = [f"{k}{d}" for k in ("plain", "highway") for d in (10, 50)]
    errors = dict(zip(names, (0.026, plain50, 0.01, highway50)))
    gate_numbers = None
    if gates:
        gate_numbers = dict(
            model_name="highway50", n_examples=360, block_names=["b1", "b2", "b3", "b4"],
            gate_threshold=0.1, idle_error_increase=0.01, mean_gate=[0.3, 0.2, 0.05, 0.04],
            example_std=[0.1] * 4, idle_unit_fraction=[0.0, 0.1, 0.8, 0.9],
            unit_mean_gate=[[0.3], [0.2], [0.05], [0.04]], intact_loss=0.2,
            intact_accuracy=0.95, lesion_loss=[0.9, 0.5, 0.2, 0.2],
            lesion_accuracy=[0.7, 0.9, 0.95, 0.945], intact_test_error=0.05,
            lesion_error_increase=[0.25, 0.05, 0.0, 0.005],
            lesion_loss_increase=[0.7, 0.3, 0.0, 0.0], idle_layers=["b3", "b4"],
            late_layers=["b3", "b4"], late_idle_layers=2, late_idle_fraction=1.0,
            early_mean_gate=0.25, late_mean_gate=0.045)
    return HighwayDepthComparison(
        depths=[10, 50], units=50, gate_bias=-2.0, gate_bias_by_depth={"10": -2.0, "50": -3.75},
        epochs=3, learning_rates=[0.01], momentum=0.9, batch_size=64, late_from=0.5, seed=seed,
        curves={n: [2.0, 1.0, 0.5] for n in names}, final_train_loss=dict.fromkeys(names, 0.5),
        final_train_error=errors, final_test_error=errors,
        final_test_loss=dict.fromkeys(names, 0.6), params=dict.fromkeys(names, 1000),
        learning_rate=dict.fromkeys(names, 0.01), gates=gate_numbers,
        init_mean_gate=[0.1, 0.1, 0.06, 0.05])


def test_highway_depth_statistics_description_and_judgement_over_seeds(tmp_path):
    from keras_resnet_lab.analysis.comparisons import SeededComparison

    result = _hand_made()
    stats = result.statistics()
    assert stats["srivastava_depth"] == pytest.approx({"plain_rise": 35.7,
                                                       "highway_rise": 0.5})
    # late layers b3, b4: gates 0.05, 0.04 after training, 0.06, 0.05 at initialization
    assert stats["srivastava_gates"] == pytest.approx({"idle_fraction": 1.0,
                                                       "gate_change": -0.01})
    text = result.describe()
    assert "training error 2.6%/38.3%" in text and "highway nets 1.0%/1.5%" in text
    assert "2 of the 2 late layers" in text and "-0.01 since initialization" in text
    assert result.gate_result().idle_blocks() == ["b3", "b4"]
    result.plot(tmp_path / "with_gates.png")
    # Three seeds: the plain nets degrade, the highway nets do not, the late gates idle.
    runs = [_hand_made(plain50=p, highway50=h, seed=s)
            for s, (p, h) in enumerate([(0.383, 0.015), (0.45, 0.012), (0.30, 0.02)])]
    comparison = SeededComparison.from_runs("highway", [0, 1, 2], runs, {})
    verdicts = {a.key: a.verdict for a in comparison.assessments()}
    assert verdicts == {"srivastava_depth": "held", "srivastava_gates": "held"}
    # A diverged deepest highway net: no gates, no gate statistics for that seed.
    diverged = _hand_made(gates=False)
    assert diverged.gate_result() is None
    assert all(math.isnan(v) for v in diverged.statistics()["srivastava_gates"].values())
    text = diverged.describe()
    assert "diverged" in text and "were not analyzed" in text
    with open(diverged.plot(tmp_path / "no_gates.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"
    assert json.loads(open(diverged.to_json(tmp_path / "d.json")).read())["gates"] is None
    (depth, gates) = SeededComparison.from_runs("highway", [0, 1, 2], runs[:2] + [diverged],
                                                {}).assessments()
    assert gates.estimates["idle_fraction"].n == 2  # the diverged seed has no value


def test_compare_highway_depths_arguments_are_checked():
    train, test = _tiny_digits(64)
    bad = [
        (dict(depths=(3,)), "depths"), (dict(depths=(2, 2)), "depths"),
        (dict(depths=(1, 3)), "depths"), (dict(depths=(2, 3.0)), "depths"),
        (dict(units=0), "units"), (dict(gate_bias=math.inf), "gate_bias"),
        (dict(epochs=0), "epochs"), (dict(learning_rates=()), "learning_rates"),
        (dict(learning_rates=(0.01, -0.1)), "learning_rates"), (dict(momentum=1.0), "momentum"),
        (dict(batch_size=0), "batch_size"), (dict(late_from=1.0), "late_from"),
        (dict(seed=-1), "seed"), (dict(progress_bar="yes"), "progress_bar"),
        (dict(verbose=3), "verbose"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            compare_highway_depths(train, test, **kwargs)
    with pytest.raises(ValueError, match="train"):
        compare_highway_depths((train[0], train[1][:10]), test)
    with pytest.raises(ValueError, match="same shape"):
        compare_highway_depths(train, (test[0][:, :32], test[1]))
    with pytest.raises(ValueError, match="labels"):
        compare_highway_depths(train, (test[0], -test[1] - 1))
