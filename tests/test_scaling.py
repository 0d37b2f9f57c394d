"""analysis/scaling.py: the residual-scaling comparison (Szegedy et al.) on tiny data, and
its reproduction script."""

import math

import keras
import pytest
from _scripts import check_results, one_seed_round_trip, run_script

from keras_resnet_lab.analysis._training import training_digits
from keras_resnet_lab.analysis.norms import norm_growth
from keras_resnet_lab.analysis.scaling import (
    ScalingComparison,
    compare_residual_scales,
    scaled_stack,
)
from keras_resnet_lab.models.chain import blocks


@pytest.fixture(scope="module")
def scaling(digits256):
    train, test = digits256
    return compare_residual_scales(train, test, blocks=6, width=8, epochs=1,
                                   progress_bar=False)


def test_residual_scaling_growth_at_init_is_exact_and_falls_with_the_scale(scaling, digits256):
    assert isinstance(scaling, ScalingComparison)
    assert scaling.scales == [1.0, 0.3, 0.1] and list(scaling.runs) == ["1", "0.3", "0.1"]
    ratios = [scaling.run(s)["init_ratio"] for s in scaling.scales]
    assert ratios[0] > ratios[1] > ratios[2] > 1.0
    # The init numbers depend only on the seed: rebuilding the stack gives them exactly.
    probe = digits256[1][0][:256]
    for scale, ratio in zip(scaling.scales, ratios):
        keras.utils.set_random_seed(0)
        model = scaled_stack(scale, blocks=6, width=8, input_shape=(8, 8, 3))
        assert model.name == f"scale_{scale:g}"
        assert norm_growth(model, probe).final_ratio == ratio
        assert len(scaling.run(scale)["init_ratio_per_block"]) == 7
    assert scaling.steps_per_epoch == 4 and scaling.chance_loss == pytest.approx(math.log(10))
    for scale in scaling.scales:  # one epoch of 4 steps, unless a NaN stopped it
        run = scaling.run(scale)
        assert run["steps_run"] == (4 if run["first_nonfinite_step"] is None
                                    else run["first_nonfinite_step"] + 1)
        assert 0.0 <= run["test_accuracy"] <= 1.0


def test_residual_scaling_statistics_round_trip_and_description(scaling, tmp_path):
    big, mid, small = (scaling.run(s) for s in scaling.scales)
    stats = scaling.statistics()
    assert list(stats) == ["szegedy_scaling"]
    assert stats["szegedy_scaling"] == pytest.approx({
        "growth_ratio": math.log10(big["init_ratio"] / small["init_ratio"]),
        "scaled_accuracy": 100 * small["test_accuracy"]})
    assert "s = 1 over s = 0.1" in scaling.notes()["szegedy_scaling"]
    assert scaling.descriptive()["szegedy_scaling"] == {
        f"s = {s:g} diverged (1 = yes)": float(scaling.run(s)["diverged"])
        for s in scaling.scales}
    loaded = one_seed_round_trip(scaling, tmp_path)
    assert loaded["runs"]["0.1"]["init_ratio"] == small["init_ratio"]
    text = scaling.describe()
    for run in (big, mid, small):
        assert f"{run['init_ratio']:.3g}" in text
        assert f"{100 * run['test_accuracy']:.1f}%" in text
    assert "6 dense blocks" in text and "finding" not in text


def test_residual_scaling_trains_on_a_dataset():
    import tensorflow as tf

    (x, y), test = training_digits(8, 3, batch_size=64)
    data = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(64)
    result = compare_residual_scales(data, (test[0][:64], test[1][:64]), blocks=2, width=4,
                                     epochs=1, probe_examples=32, progress_bar=False)
    assert result.steps_per_epoch == 2 and result.batch_size is None
    assert all(run["steps_run"] <= 2 for run in result.runs.values())


def test_scaled_stack_conv_form():
    model = scaled_stack(0.3, form="conv", blocks=5, widths=(4, 8), input_shape=(8, 8, 3))
    found = blocks(model)
    assert [b.name for b in found] == ["stage1_block1", "stage1_block2", "stage2_block1",
                                       "stage2_block2", "stage2_block3"]
    assert all(b.layer.residual_scale == 0.3 for b in found)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(scales=(1.0, 0.3)), "scales"),
    (dict(scales=(1.0, 0.3, 0.3)), "scales"),
    (dict(scales=(1.5, 0.3, 0.1)), "scales"),
    (dict(form="recurrent"), "form"),
    (dict(blocks=0), "blocks"),
    (dict(epochs=0), "epochs"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(momentum=1.0), "momentum"),
    (dict(probe_examples=0), "probe_examples"),
    (dict(blowup_factor=1.0), "blowup_factor"),
    (dict(seed=-1), "seed"),
])
def test_compare_residual_scales_argument_errors(digits256, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        compare_residual_scales(*digits256, progress_bar=False, **kwargs)


def test_scaling_data_and_network_errors(digits256):
    train, test = digits256
    with pytest.raises(ValueError, match="`train` must be a pair"):
        compare_residual_scales("digits", test, progress_bar=False)
    with pytest.raises(ValueError, match="same shape per example"):
        compare_residual_scales((train[0][:, :4], train[1]), test, progress_bar=False)
    with pytest.raises(ValueError, match="`test`"):
        compare_residual_scales(train, test[0], progress_bar=False)
    with pytest.raises(ValueError, match="`scale`"):
        scaled_stack(0.0, input_shape=(64,))
    with pytest.raises(ValueError, match="`input_shape`"):
        scaled_stack(0.1, form="conv", input_shape=(64,))
    with pytest.raises(ValueError, match="`widths`"):
        scaled_stack(0.1, form="conv", blocks=1, widths=(4, 8), input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="`scale` must be one of"):
        ScalingComparison.run(
            ScalingComparison([1.0, 0.3, 0.1], "dense", 1, 1, 0.1, 0.9, 64, 1, 0, 1.0, 10.0,
                              {}, [], []), 0.5)


@pytest.mark.slow  # a whole --quick run; the library comparison is tested above, and in the lab
def test_scaling_szegedy_quick(tmp_path):
    results = run_script("scaling_szegedy", tmp_path)
    found = check_results(results, tmp_path, "scaling_szegedy", ["szegedy_scaling"])
    # 3 seeds: growth 10^4.0 [10^3.4, 10^4.6], s = 0.1 at 93 points [89, 97]: far from both
    # thresholds (>= 1, >= 50).
    scaling = found["szegedy_scaling"]
    assert scaling["seeds"] == [0, 1, 2] and scaling["verdict"] == "held"
    growth, accuracy = scaling["criteria"]
    assert growth["key"] == "growth_ratio" and len(growth["samples"]) == 3
    assert growth["estimate"] > 2 and accuracy["estimate"] > 80
    runs = results["numbers"]["runs"]
    assert set(runs) == {"1", "0.3", "0.1"}
    assert runs["1"]["init_ratio"] > runs["0.3"]["init_ratio"] > runs["0.1"]["init_ratio"] > 1
    assert runs["1"]["first_nonfinite_step"] is not None
    assert len(runs["0.1"]["init_ratio_per_block"]) == results["config"]["blocks"] + 1
    # Every seed's numbers: the statistic's samples are log10 of their init ratios.
    per_seed = results["numbers"]["per_seed"]
    assert list(per_seed) == ["0", "1", "2"] and per_seed["0"]["1"]["init_ratio"] == \
        runs["1"]["init_ratio"]
    assert growth["samples"] == pytest.approx(
        [math.log10(s["1"]["init_ratio"] / s["0.1"]["init_ratio"]) for s in per_seed.values()])
    assert {"scaling.png", "findings_over_seeds.png"} <= set(results["figures"])
