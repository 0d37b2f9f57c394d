"""analysis/highway_depth.py: Srivastava et al.'s depth experiment (plain and highway nets at
several depths, the deepest net's gates) as a library function, and its script in --quick
mode."""

import json
import math

import keras
import pytest
from _scripts import check_results, run_script

from keras_resnet_lab.analysis._training import training_digits
from keras_resnet_lab.analysis.gates import GateResult, gate_statistics
from keras_resnet_lab.analysis.highway_depth import (
    HighwayDepthComparison,
    compare_highway_depths,
    gate_bias_at,
)
from keras_resnet_lab.models.mlp import highway_mlp


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
