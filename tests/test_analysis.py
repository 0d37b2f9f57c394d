"""The papers' experiments as library functions: exact properties and behaviour on trained nets."""

import itertools
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_lab.analysis.lesion import kendall_tau, lesion_study
from keras_resnet_lab.analysis.paths import (
    decay_factor,
    effective_range,
    input_gradients,
    path_gradients,
    path_lengths,
)
from keras_resnet_lab.analysis.refinement import branch_statistics, refinement
from keras_resnet_lab.analysis.results import jsonable
from keras_resnet_lab.analysis.shattering import (
    CReLU,
    LooksLinear,
    autocorrelation,
    calibrate_batch_norm,
    crelu,
    line_inputs,
    shattering,
    shattering_network,
)
from keras_resnet_lab.analysis.similarity import (
    block_similarity,
    cka_matrix,
    linear_cka,
    within_stage_cka,
)
from keras_resnet_lab.findings import from_dict
from keras_resnet_lab.models import cifar_network, residual_mlp
from keras_resnet_lab.models.surgery import drop_blocks, repeat_block

PNG = b"\x89PNG"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(4) == PNG


def _loss_grad(model, x, y):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(
            y, model(x, training=False), from_logits=True))
    return tape.gradient(loss, x).numpy()


# -- paths -------------------------------------------------------------------------------------

def test_path_lengths_are_binomial():
    assert path_lengths(3).counts == [1, 3, 3, 1]
    dist = path_lengths(54)
    assert sum(dist.counts) == 2 ** 54 == dist.total
    assert dist.counts[27] == math.comb(54, 27) and dist.counts[5] == 3162510
    assert math.isclose(sum(dist.fractions), 1.0)
    assert math.isclose(sum(dist.counts[5:18]) / dist.total, 0.004537, rel_tol=1e-3)
    with pytest.raises(ValueError, match="n_blocks"):
        path_lengths(0)


@pytest.mark.parametrize("preact", [True, False])
def test_path_gradients_of_all_masks_sum_to_the_full_gradient(preact):
    keras.utils.set_random_seed(1)
    model = cifar_network(1, widths=(4, 8, 8), input_shape=(8, 8, 3), num_classes=3,
                          preact=preact)
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype("float32")
    y = np.array([0, 1, 2])
    total = sum(input_gradients(model, x, y, np.tile(np.array(bits, "float32"), (3, 1)))
                for bits in itertools.product([0, 1], repeat=3))
    full = _loss_grad(model, x, y)
    np.testing.assert_allclose(total, full, atol=1e-6 * np.abs(full).max() + 1e-9)
    # A single path is not the whole gradient.
    assert np.abs(input_gradients(model, x, y, np.ones((3, 3))) - full).max() > 1e-4


def test_path_gradient_k0_equals_gradient_of_skip_only_network():
    keras.utils.set_random_seed(2)
    model = residual_mlp(3, 8, input_shape=(5,), preact=True, num_classes=2)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    skip_only = drop_blocks(model, [0, 1, 2])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        total = tf.reduce_sum(skip_only(xt))
    expected = tape.gradient(total, xt).numpy()
    got = input_gradients(model, x, np.zeros(4, int), np.zeros((4, 3)), "logits_sum")
    np.testing.assert_allclose(got, expected, atol=1e-7)
    full = input_gradients(model, x, np.zeros(4, int), np.ones((4, 3)), "logits_sum")
    assert np.abs(full - expected).max() > 1e-4


def test_path_gradients_batched_equals_per_sample_and_reports_contributions():
    keras.utils.set_random_seed(3)
    model = cifar_network(2, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, preact=True)
    rng = np.random.default_rng(2)
    data = (rng.normal(size=(10, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 10))
    batched = path_gradients(model, data, 3, progress_bar=False)
    single = path_gradients(model, data, 3, batched=False, progress_bar=False)
    np.testing.assert_allclose(batched.mean_norm, single.mean_norm, rtol=1e-4)
    assert batched.lengths == [0, 1, 2, 3, 4] and batched.counts == [1, 4, 6, 4, 1]
    np.testing.assert_allclose(batched.contribution,
                               np.array(batched.counts) * np.array(batched.mean_norm))
    assert math.isclose(sum(batched.contribution_fraction), 1.0)
    lo, hi = batched.effective_range
    assert 0 <= lo <= batched.peak_length <= hi <= 4
    # The per-sample norms (kept for intervals, not in the JSON) give the means and the fit.
    assert batched.norms.shape == batched.sample_examples.shape == (5, 3)
    np.testing.assert_allclose(batched.norms.mean(1), batched.mean_norm)
    assert batched.decay_per_block == pytest.approx(
        decay_factor(batched.lengths, batched.mean_norm))
    assert "norms" not in batched.to_dict()
    with pytest.raises(ValueError, match="plain"):
        path_gradients(cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=3,
                                     plain=True), data, 2, progress_bar=False)


def test_effective_range_is_the_shortest_window():
    assert effective_range([0, 1, 2, 3], [0.0, 5.0, 4.0, 1.0], 0.9) == (1, 2)
    assert effective_range([0, 1, 2, 3], [0.0, 5.0, 4.0, 1.0], 0.95) == (1, 3)
    assert effective_range([0, 1, 2], [1.0, 0.0, 0.0], 0.5) == (0, 0)


# -- similarity ----------------------------------------------------------------------------------

def test_linear_cka_identity_and_invariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert math.isclose(linear_cka(x, x), 1.0, rel_tol=1e-12)
    assert math.isclose(linear_cka(x, x @ q), 1.0, rel_tol=1e-10)
    assert math.isclose(linear_cka(x, 7.5 * x), 1.0, rel_tol=1e-10)
    y = rng.normal(size=(60, 10))
    assert math.isclose(linear_cka(x @ q * 3.0, y), linear_cka(x, y), rel_tol=1e-10)
    assert linear_cka(x, y) < 0.5
    matrix = cka_matrix([x, x @ q, y])
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert math.isclose(matrix[0, 2], linear_cka(x, y), rel_tol=1e-10)
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(x, y[:5])


# -- shattering ----------------------------------------------------------------------------------

def test_looks_linear_network_is_exactly_linear_at_init(tmp_path):
    model = shattering_network(6, "looks_linear", width=16, input_dim=4, seed=3)
    x = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    offset = np.asarray(model(np.zeros((1, 4), "float32")))
    linear_map = np.asarray(model(np.eye(4, dtype="float32"))) - offset
    np.testing.assert_allclose(np.asarray(model(x)), x @ linear_map + offset, atol=1e-5)
    plain = shattering_network(6, "plain", width=16, input_dim=4, seed=3)
    p_off = np.asarray(plain(np.zeros((1, 4), "float32")))
    p_map = np.asarray(plain(np.eye(4, dtype="float32"))) - p_off
    assert np.abs(np.asarray(plain(x)) - (x @ p_map + p_off)).max() > 1e-3
    with pytest.raises(ValueError, match="even"):
        LooksLinear()((3, 4))
    # CReLU followed by [I; -I] is the identity, with derivative 1 even at exactly 0.
    point = tf.constant([[0.0, 1.5, -2.0]])
    with tf.GradientTape() as tape:
        tape.watch(point)
        total = tf.reduce_sum(crelu(point) @ tf.concat([tf.eye(3), -tf.eye(3)], 0))
    np.testing.assert_array_equal(tape.gradient(total, point).numpy(), [[1.0, 1.0, 1.0]])
    inputs = keras.Input((3,))
    out = keras.layers.Dense(2, kernel_initializer=LooksLinear(seed=1))(CReLU()(inputs))
    saved = keras.Model(inputs, out)
    saved.save(tmp_path / "ll.keras")
    loaded = keras.models.load_model(tmp_path / "ll.keras")
    np.testing.assert_allclose(np.asarray(loaded(x[:, :3])), np.asarray(saved(x[:, :3])))


def test_calibrated_batch_norm_matches_batch_statistics():
    model = shattering_network(3, "residual_bn", width=16, input_dim=2, seed=0)
    x, _ = line_inputs(64, input_dim=2)
    calibrate_batch_norm(model, x)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(model(x, training=True)), atol=1e-4)


def test_autocorrelation_of_smooth_noise_and_constant_sequences():
    rng = np.random.default_rng(0)
    assert autocorrelation(np.sin(np.linspace(0, 3, 256)), 1)[1] > 0.98
    assert abs(autocorrelation(rng.normal(size=4096), 1)[1]) < 0.05
    np.testing.assert_array_equal(autocorrelation(np.full(50, 2.5), 3), np.ones(4))


def test_shattering_plain_bn_decays_faster_than_residual_bn(tmp_path):
    result = shattering(kinds=("plain_bn", "residual_bn", "looks_linear"), depths=(1, 10),
                        seeds=1, width=64, progress_bar=False)
    assert result.lag1["plain_bn"][0] > 0.8 and result.lag1["residual_bn"][0] > 0.8
    assert abs(result.lag1["plain_bn"][1]) < 0.3
    assert result.lag1["residual_bn"][1] > result.lag1["plain_bn"][1] + 0.2
    assert result.lag1["looks_linear"] == [1.0, 1.0]
    assert result.depth_below("plain_bn", 0.5) == 20
    assert _is_png(result.plot(str(tmp_path / "s.png")))


# -- lesion, refinement, similarity on the trained digits nets ---------------------------------

def test_kendall_tau():
    assert kendall_tau([0, 1, 2, 3]) == 1.0
    assert kendall_tau([3, 2, 1, 0]) == -1.0
    assert math.isclose(kendall_tau([1, 0, 2, 3]), 1 - 4 / 12)


def test_lesion_cached_and_naive_agree_and_plain_twin_collapses(trained_digits, tmp_path):
    model, plain, (x, y) = trained_digits
    k_values, swaps = range(1, 7), range(1, 5)
    cached = lesion_study(model, (x, y), plain_model=plain, k_values=k_values, draws=2,
                          swap_counts=swaps, progress_bar=False)
    naive = lesion_study(model, (x, y), k_values=k_values, draws=2, swap_counts=swaps,
                         method="naive", progress_bar=False)
    a, b = cached.to_dict(), naive.to_dict()
    for key in ("intact_error", "single_error", "single_loss", "random_k", "reorder"):
        assert a[key] == b[key], key
    for key in ("intact_correct", "single_correct", "k_correct", "reorder_correct"):
        np.testing.assert_array_equal(getattr(cached, key), getattr(naive, key), err_msg=key)
        assert key not in a  # per-example arrays: kept for intervals, not in the JSON
    # The per-example correctness is the errors' source.
    assert cached.intact_error == 1.0 - cached.intact_correct.mean()
    np.testing.assert_allclose(cached.single_error, 1.0 - cached.single_correct.mean(1))
    np.testing.assert_allclose([e for r in cached.random_k for e in r["errors"]],
                               1.0 - cached.k_correct.mean(1))
    np.testing.assert_allclose([r["error"] for r in cached.reorder],
                               1.0 - cached.reorder_correct.mean(1))
    names = cached.block_names
    assert len(names) == 6 and cached.downsampling == [False, False, True, False, True, False]
    assert [r["k"] for r in cached.random_k] == list(range(1, 7))
    # The plain twin: single deletions only.
    assert cached.plain.random_k == [] and cached.plain.reorder == []
    assert cached.plain.single_correct.shape == (6, len(x))
    # The residual net survives losing its last block; every deletion kills the plain twin.
    assert cached.intact_error < 0.1 and cached.plain.intact_error < 0.15
    assert cached.single_error[-1] - cached.intact_error < 0.1
    assert min(cached.plain.single_error) > 0.6  # chance is 0.9: any deletion breaks it
    assert cached.summary()["k_error_correlation"] > 0.8
    taus = [r["kendall_tau"] for r in cached.reorder]
    assert all(-1 <= t <= 1 for t in taus) and min(taus) < 1
    for r in cached.reorder:  # an unchanged order (two swaps undone) keeps the intact error
        if r["kendall_tau"] == 1.0:
            assert r["error"] == cached.intact_error
    with open(cached.to_json(str(tmp_path / "l.json"))) as f:
        assert json.load(f)["plain"]["block_names"] == names
    assert _is_png(cached.plot(str(tmp_path / "l.png")))


def test_refinement_on_the_trained_net(trained_digits, tmp_path):
    model, _, (x, y) = trained_digits
    result = refinement(model, (x, y), progress_bar=False)
    assert result.gradient_at == ["input", "input", "shortcut", "input", "shortcut", "input"]
    assert all(c > 0 for c in result.cos_neg_grad)
    assert result.norm_ratio[0] == max(result.norm_ratio)
    # The per-example values (kept for intervals, not in the JSON) give the per-block means.
    assert result.cos_values.shape == result.ratio_values.shape == (len(x), 6)
    np.testing.assert_allclose(result.cos_values.mean(0), result.cos_neg_grad)
    np.testing.assert_allclose(result.ratio_values.std(0), result.norm_ratio_std)
    assert "cos_values" not in result.to_dict()
    increase = result.drop_loss_increase()
    assert increase[0] > increase[-1] > 0
    assert result.repeat_loss[2] is None and result.repeat_loss[-1] is not None
    # The drop/repeat numbers are those of the surgery models.
    for i, (surgery, loss) in enumerate(((drop_blocks(model, [0]), result.drop_loss[0]),
                                         (repeat_block(model, -1, 2), result.repeat_loss[-1]))):
        expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(
            y, surgery(x, training=False), from_logits=True)))
        assert math.isclose(loss, expected, rel_tol=1e-4), i
    assert _is_png(result.plot(str(tmp_path / "r.png")))


def test_branch_statistics_of_a_zero_branch_and_of_a_plain_net(trained_digits):
    keras.utils.set_random_seed(0)
    model = cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=3, preact=True,
                          zero_init_residual=True)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    cos, ratio, where = branch_statistics(model, x, np.zeros(4, int))
    assert cos.shape == ratio.shape == (4, 1) and where == ["input"]
    np.testing.assert_array_equal(cos, 0.0)
    np.testing.assert_array_equal(ratio, 0.0)
    with pytest.raises(ValueError, match="plain"):
        refinement(trained_digits[1], trained_digits[2], progress_bar=False)


def test_block_similarity_on_the_trained_net(trained_digits, tmp_path):
    model, _, (x, y) = trained_digits
    result = block_similarity(model, (x, y), max_examples=200, progress_bar=False)
    assert result.names[0] == "stem" and len(result.names) == 7
    assert result.stages == [0, 1, 1, 2, 2, 3, 3]
    matrix = np.asarray(result.matrix)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert 0.5 < result.within_stage <= 1.0
    # Consecutive blocks are more alike than the stem and the last block.
    assert matrix[1, 2] > matrix[0, -1]
    # The Gram matrices kept for intervals (not in the JSON) give the same CKA.
    assert result.grams.shape == (7, 200, 200) and result.grams.dtype == np.float32
    assert "grams" not in result.to_dict()
    assert within_stage_cka(result.grams, result.stages) == pytest.approx(
        result.within_stage, abs=1e-5)
    assert _is_png(result.plot(str(tmp_path / "c.png")))


def test_results_are_strict_json():
    assert jsonable({"a": np.float32(0.5), "b": np.array([1.0, np.nan]), "c": (np.int64(3),)}) \
        == {"a": 0.5, "b": [1.0, None], "c": [3]}


# -- the analyze command -------------------------------------------------------------------------

def test_analyze_command(trained_digits, tmp_path, capsys):
    from keras_resnet_lab.cli import main

    model, plain, _ = trained_digits
    path, plain_path = str(tmp_path / "m.keras"), str(tmp_path / "p.keras")
    model.save(path)
    plain.save(plain_path)
    out = tmp_path / "lesion"
    assert main(["analyze", path, "--experiment", "lesion", "--plain", plain_path, "--out",
                 str(out), "--draws", "1", "--quiet"]) == 0
    with open(out / "lesion.json") as f:
        assert json.load(f)["plain"]["model_name"] == "digits_net_plain"
    assert _is_png(out / "lesion.png")
    assert main(["analyze", path, "--experiment", "similarity", "--out", str(out),
                 "--quiet"]) == 2
    assert "already holds" in capsys.readouterr().err
    assert main(["analyze", path, "--experiment", "paths", "--out", str(out), "--force",
                 "--samples-per-length", "2", "--max-examples", "20", "--quiet"]) == 0
    assert (out / "paths.json").exists()
    odd = residual_mlp(2, 4, input_shape=(6,), num_classes=10)
    odd.save(tmp_path / "odd.keras")
    assert main(["analyze", str(tmp_path / "odd.keras"), "--experiment", "refinement",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "takes inputs of shape (6,); --data digits needs square images" in \
        capsys.readouterr().err
    assert main(["analyze", plain_path, "--experiment", "paths", "--out",
                 str(tmp_path / "q"), "--quiet"]) == 2
    assert "plain" in capsys.readouterr().err


def test_analyze_command_analysis_two(trained_digits, tmp_path, capsys):
    from keras_resnet_lab.cli import main
    from keras_resnet_lab.models import highway_net

    model, plain, _ = trained_digits
    path, plain_path = str(tmp_path / "m.keras"), str(tmp_path / "p.keras")
    model.save(path)
    plain.save(plain_path)
    highway = highway_net(2, widths=(8, 8), input_shape=(16, 16, 3), num_classes=10)
    highway.save(tmp_path / "h.keras")
    runs = {
        "estimation": [path],
        "filters": [path, "--plain", plain_path],
        "similarity": [path, "--plain", plain_path],
        "norms": [path],
        "gates": [str(tmp_path / "h.keras")],
        "hessian": ["--quick", "--seeds", "2"],
        "multires": ["--epochs", "1", "--seeds", "2"],
    }
    for experiment, extra in runs.items():
        out = tmp_path / experiment
        argv = ["analyze", *extra[:1], "--experiment", experiment, *extra[1:], "--out",
                str(out), "--quiet"]
        if experiment in ("hessian", "multires"):
            argv = ["analyze", "--experiment", experiment, *extra, "--out", str(out), "--quiet"]
        assert main(argv) == 0, (experiment, capsys.readouterr().err)
        with open(out / f"{experiment}.json") as f:
            result = json.load(f)
        assert _is_png(out / f"{experiment}.png")
        printed = capsys.readouterr().out
        if experiment in ("norms", "gates"):
            assert not (out / "findings.json").exists() and "descriptive" in printed
        else:  # the verdicts of the findings the experiment tests, judged by the registry
            with open(out / "findings.json") as f:
                found = json.load(f)["findings"]
            for data in found:
                assert from_dict(data).verdict == data["verdict"]
                assert f"{data['key']}: {data['verdict']}" in printed
        if experiment == "filters":
            assert result["twin_name"] == "digits_net_plain"
            assert result["score"] > result["twin_score"]
            assert [f["key"] for f in found] == ["chu_filters"]
        if experiment == "similarity":
            assert [f["key"] for f in found] == ["kornblith_cka"]
        if experiment == "gates":
            assert len(result["mean_gate"]) == 4  # one per highway layer
        if experiment == "hessian":
            assert result["seeds"] == [0, 1] and [f["key"] for f in found] == ["li_hessian"]
        if experiment == "multires":
            assert len(result["runs"]) == 2 and [f["key"] for f in found] == ["abdi_multires"]
        if experiment == "norms":
            assert "||h_L|| / ||h_0||" in printed
    assert main(["analyze", path, "--experiment", "hessian", "--out", str(tmp_path / "x")]) == 2
    assert "builds its own networks" in capsys.readouterr().err
    assert main(["analyze", "--experiment", "estimation", "--out", str(tmp_path / "y")]) == 2
    assert "needs a MODEL.keras" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_analyze_command_training_comparisons(tmp_path, capsys):
    """The seeded experiments run by name with no model, over --seeds seeds; each writes its
    findings' verdicts and a paragraph generated from their numbers."""
    from keras_resnet_lab.catalog import COMPARISONS
    from keras_resnet_lab.cli import main

    for experiment in ("scaling", "looks_linear"):
        out = tmp_path / experiment
        assert main(["analyze", "--experiment", experiment, "--quick", "--epochs", "1",
                     "--seeds", "2", "--out", str(out), "--quiet"]) == 0, \
            capsys.readouterr().err
        with open(out / f"{experiment}.json") as f:
            result = json.load(f)
        assert _is_png(out / f"{experiment}.png") and result["seeds"] == [0, 1]
        printed = capsys.readouterr().out
        for data in result["assessments"]:
            assert from_dict(data).describe() in printed
    assert set(COMPARISONS) == {"highway", "scaling", "sharing", "looks_linear", "multires",
                                "depth", "shattering", "hessian"}
    # Flags of the training experiments are refused elsewhere, and nothing is written.
    assert main(["analyze", "--experiment", "hessian", "--epochs", "2", "--out",
                 str(tmp_path / "h")]) == 2
    assert "--epochs is used by the training experiments only" in capsys.readouterr().err
    assert main(["analyze", "--experiment", "scaling", "--epochs", "0", "--out",
                 str(tmp_path / "s")]) == 2
    assert "--epochs: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "h").exists() and not (tmp_path / "s").exists()


def test_run_comparison_refuses_bad_names_and_arguments():
    from keras_resnet_lab.analysis.comparisons import run_comparison

    with pytest.raises(ValueError, match="`name` must be one of .*highway"):
        run_comparison("residual_scaling")
    with pytest.raises(ValueError, match="`seeds`"):
        run_comparison("scaling", seeds=(-1,))
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        run_comparison("scaling", epochs=0)
