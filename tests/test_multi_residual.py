"""Multi-residual networks at equal parameters (Abdi & Nahavandi, arXiv 1609.05672):
exact parameter counts, exact path counts, the comparison result and the --quick script."""

import json
import math

import numpy as np
import pytest
from _scripts import check_results, run_script

from keras_resnet_lab.analysis.multi_residual import (
    MultiResidualComparison,
    branch_factorizations,
    compare_multi_residual,
    describe_network,
    equal_parameter_networks,
    parameter_count,
    path_length_counts,
)
from keras_resnet_lab.analysis.paths import path_lengths


def _expected_params(w, branches_per_stage, stages=3, channels=3, classes=10):
    """Trainable parameters of a post-activation network of equal widths ``w``: stem conv + BN,
    per branch two 3x3 convs (w -> w) and two BNs, head dense."""
    stem = 9 * channels * w + 2 * w
    branch = 2 * 9 * w * w + 2 * 2 * w
    return stem + stages * branches_per_stage * branch + w * classes + classes


# -- equal parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_equal_parameter_networks_have_exactly_equal_parameter_counts(shortcut):
    built = equal_parameter_networks(4, (1, 2, 4), widths=(4, 4, 4), input_shape=(8, 8, 3),
                                     shortcut=shortcut)
    configs = [c for _, c in built]
    assert [(c.blocks_per_stage, c.branches, c.n_blocks) for c in configs] == [
        ([4, 4, 4], 1, 12), ([2, 2, 2], 2, 6), ([1, 1, 1], 4, 3)]
    assert [m.name for m, _ in built] == ["multires_b4_k1", "multires_b2_k2", "multires_b1_k4"]
    params = {c.params for c in configs}
    assert len(params) == 1
    # Option B adds one 1x1 projection + BN to the first block of stages 2 and 3 of every net.
    extra = 0 if shortcut == "A" else 2 * (4 * 4 + 2 * 4)
    assert params == {_expected_params(4, 4) + extra}
    assert all(c.params == parameter_count(m) for m, c in built)
    # Non-trainable: the BN moving statistics, as many as the trainable BN weights.
    assert len({c.total_params for c in configs}) == 1


def test_multi_residual_k1_is_the_ordinary_residual_network():
    import keras

    from keras_resnet_lab.models.cifar import cifar_network

    keras.utils.set_random_seed(0)
    multi = cifar_network(2, block="multi_residual", branches=1, widths=(4, 4),
                          input_shape=(8, 8, 3), shortcut="A")
    plain_res = cifar_network(2, block="residual", widths=(4, 4), input_shape=(8, 8, 3),
                              shortcut="A")
    assert parameter_count(multi) == parameter_count(plain_res)
    plain_res.set_weights(multi.get_weights())
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(multi(x), plain_res(x), rtol=1e-5, atol=1e-6)


def test_widening_stages_or_preactivation_break_equality_by_the_exact_amount():
    with pytest.raises(ValueError, match="widths"):
        equal_parameter_networks(4, (1, 4), widths=(4, 8, 8), input_shape=(8, 8, 3))
    deep, wide = (c for _, c in equal_parameter_networks(
        4, (1, 4), widths=(4, 8, 8), input_shape=(8, 8, 3), require_equal=False))
    # Stage 2 widens 4 -> 8: the 4-branch block has 3 more branches reading 4 channels where
    # the deep net's later blocks read 8: 9 (k - 1) w (w - c_in) fewer weights.
    assert deep.params - wide.params == 9 * 3 * 8 * (8 - 4)
    with pytest.raises(ValueError, match="preact"):
        equal_parameter_networks(4, (1, 4), widths=(4, 4, 4), input_shape=(8, 8, 3),
                                 preact=True)
    deep, wide = (c for _, c in equal_parameter_networks(
        4, (1, 4), widths=(4, 4, 4), input_shape=(8, 8, 3), preact=True, require_equal=False))
    # One shared pre-activation BN (2 w weights) per block: 3 fewer blocks in each of 3 stages.
    assert deep.params - wide.params == 3 * 3 * 2 * 4
    # Option C: a 1x1 projection + BN (w * w + 2 w) in every block.
    deep, wide = (c for _, c in equal_parameter_networks(
        4, (1, 4), widths=(4, 4, 4), input_shape=(8, 8, 3), shortcut="C", require_equal=False))
    assert deep.params - wide.params == 3 * 3 * (4 * 4 + 2 * 4)


def test_branch_factorizations_and_bad_arguments():
    assert branch_factorizations(12) == [(12, 1), (6, 2), (4, 3), (3, 4), (2, 6), (1, 12)]
    assert branch_factorizations(4, (4, 1)) == [(4, 1), (1, 4)]
    assert branch_factorizations(4, 2) == [(2, 2)]
    with pytest.raises(ValueError, match="branches.*divide total_branches=4"):
        branch_factorizations(4, (1, 3))
    with pytest.raises(ValueError, match="total_branches"):
        branch_factorizations(0)
    with pytest.raises(ValueError, match="branches"):
        branch_factorizations(4, (0,))
    with pytest.raises(ValueError, match="block"):
        equal_parameter_networks(4, (1, 4), block="highway")
    with pytest.raises(ValueError, match="shortcut"):
        equal_parameter_networks(4, (1, 4), shortcut="D")


# -- paths ---------------------------------------------------------------------------------------

def test_path_lengths_of_multi_residual_blocks_are_exact():
    dist = path_lengths(3, branches=4)
    assert dist.counts == [1, 12, 48, 64] and dist.total == 125 == 5 ** 3
    assert dist.branches == 4 and math.isclose(dist.mean_length, 3 * 4 / 5)
    for n, k in [(1, 1), (5, 2), (12, 1), (7, 5), (66, 5)]:
        dist = path_lengths(n, branches=k)
        assert dist.counts == [math.comb(n, j) * k ** j for j in range(n + 1)]
        assert sum(dist.counts) == dist.total == (k + 1) ** n
        assert math.isclose(sum(dist.fractions), 1.0)
        mean = sum(j * c for j, c in enumerate(dist.counts)) / dist.total
        assert math.isclose(mean, dist.mean_length)
    # The default is the ordinary residual network's binomial distribution.
    assert path_lengths(12).counts == path_lengths(12, branches=1).counts
    assert path_lengths(12).total == 4096
    with pytest.raises(ValueError, match="branches"):
        path_lengths(3, branches=0)


def test_path_length_counts_general_chain():
    assert path_length_counts([1, 4]) == [1, 5, 4]        # (1 + x)(1 + 4x)
    assert path_length_counts([4] * 3) == path_lengths(3, 4).counts
    # A plain block has no skip: every path goes through one of its k branches.
    assert path_length_counts([2, 3], plain=[True, False]) == [0, 2, 6]
    with pytest.raises(ValueError, match="plain"):
        path_length_counts([1, 2], plain=[True])
    with pytest.raises(ValueError, match="branches_per_block"):
        path_length_counts([])


def test_describe_network_counts_paths_from_the_blocks():
    from keras_resnet_lab.models.cifar import cifar_network, multi_residual_net

    config = describe_network(multi_residual_net(8, branches=4, widths=(4, 4, 4),
                                                 input_shape=(8, 8, 3)))
    assert (config.n_blocks, config.branches, config.paths) == (3, 4, 125)
    assert config.path_counts == [1, 12, 48, 64]
    assert config.to_dict()["mean_path_length"] == pytest.approx(2.4)
    plain = describe_network(cifar_network(2, widths=(4,), input_shape=(8, 8, 3), plain=True))
    assert plain.paths == 1 and plain.path_counts == [0, 0, 1]
    assert parameter_count(cifar_network(1, widths=(4,), input_shape=(8, 8, 3))) == 470


# -- the comparison ------------------------------------------------------------------------------

def _comparison():
    return MultiResidualComparison(
        total_branches=4,
        configs=[{"name": "multires_b4_k1", "branches": 1, "n_blocks": 12, "params": 100,
                  "paths": 4096, "path_counts": path_lengths(12).counts},
                 {"name": "multires_b1_k4", "branches": 4, "n_blocks": 3, "params": 100,
                  "paths": 125, "path_counts": path_lengths(3, 4).counts}],
        seeds=[0, 1], epochs=2, test_accuracy=[[0.9, 0.8], [0.95, 0.85]],
        test_loss=[[0.3, 0.5], [0.2, 0.4]], curves=[[[0.5, 0.9], [0.4, 0.8]],
                                                    [[0.6, 0.95], [0.5, 0.85]]],
        mean_accuracy=[0.85, 0.9], std_accuracy=[0.05, 0.05])


def test_comparison_result_gap_json_and_plot(tmp_path):
    result = _comparison()
    assert result.accuracy_gap(4) == pytest.approx(0.05)
    assert result.accuracy_gap(1, baseline=4) == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="branches"):
        result.accuracy_gap(2)
    # The finding's statistic in points, k = 4 minus k = 1 (mean over this result's seeds).
    assert result.statistics() == {"abdi_multires": {"accuracy_gap": pytest.approx(5.0)}}
    assert "3 blocks of k = 4 against 12 of k = 1, 100 trainable parameters" in \
        result.notes()["abdi_multires"]
    with open(result.to_json(str(tmp_path / "r.json"))) as f:
        assert json.load(f)["configs"][1]["paths"] == 125
    with open(result.plot(str(tmp_path / "r.png")), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_compare_multi_residual_rejects_bad_arguments():
    x = np.zeros((8, 8, 8, 3), "float32")
    y = np.zeros(8, "int64")
    for kwargs, name in [(dict(seeds=()), "seeds"), (dict(seeds=(0, 0)), "seeds"),
                         (dict(epochs=0), "epochs"), (dict(optimizer="rmsprop"), "optimizer"),
                         (dict(learning_rate=0.0), "learning_rate"),
                         (dict(jit_compile="yes"), "jit_compile")]:
        with pytest.raises(ValueError, match=name):
            compare_multi_residual((x, y), (x, y), total_branches=4, **kwargs)
    with pytest.raises(ValueError, match="train"):
        compare_multi_residual((x, y[:3]), (x, y), total_branches=4)
    with pytest.raises(ValueError, match="steps_per_epoch"):  # neither (x, y) nor a dataset
        compare_multi_residual(x, (x, y), total_branches=4)
    with pytest.raises(ValueError, match="test"):
        compare_multi_residual((x, y), x, total_branches=4)
    with pytest.raises(ValueError, match="widths"):
        compare_multi_residual((x, y), (x, y), total_branches=4, widths=(4, 8, 8))


def test_compare_multi_residual_seeds_are_independent_runs():
    """Later seeds train a network built anew from their own seed with a new optimizer: the
    numbers of seed 1 are those of a run with seed 1 alone (no momentum, schedule step or
    weights carried over from seed 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, size=96)
    kwargs = dict(epochs=1, batch_size=32, widths=(4,), num_classes=3, jit_compile=False,
                  progress_bar=False)
    both = compare_multi_residual((x, y), (x[:32], y[:32]), total_branches=1, branches=(1,),
                                  seeds=(0, 1), **kwargs)
    alone = compare_multi_residual((x, y), (x[:32], y[:32]), total_branches=1, branches=(1,),
                                  seeds=(1,), **kwargs)
    assert both.seeds == [0, 1] and both.configs[0]["params"] == alone.configs[0]["params"]
    assert both.test_loss[0][1] == pytest.approx(alone.test_loss[0][0], rel=1e-5)
    assert both.test_loss[0][0] != pytest.approx(both.test_loss[0][1], rel=1e-3)
    assert len(both.curves[0][1]) == 1 and both.mean_accuracy[0] == pytest.approx(
        np.mean(both.test_accuracy[0]))
    # One seed per call (as run_comparison runs it): judged over the seeds of separate calls.
    from keras_resnet_lab.analysis.comparisons import SeededComparison

    first = compare_multi_residual((x, y), (x[:32], y[:32]), total_branches=1, branches=(1,),
                                  seeds=(0,), **kwargs)
    seeded = SeededComparison.from_runs("multires", [0, 1], [first, alone])
    assert seeded.values("abdi_multires", "accuracy_gap") == [0.0, 0.0]  # one net: k=1 vs 1
    assert first.test_loss[0][0] == pytest.approx(both.test_loss[0][0], rel=1e-5)


# -- the reproduction script ---------------------------------------------------------------------

@pytest.mark.slow  # a benchmark's whole --quick run: `pytest -m slow`
def test_multires_abdi_quick(tmp_path):
    results = run_script("multires_abdi", tmp_path)
    found = check_results(results, tmp_path, "multires_abdi", ["abdi_multires"])
    nets = results["numbers"]["networks"]
    deep, wide = nets["multires_b4_k1"], nets["multires_b1_k4"]
    # 3 seeds, paired: k = 4 minus k = 1 is -0.2 points [-1.6, +1.3] as measured (the rule:
    # >= -1; the interval straddles it at this scale). Its side, and its per-seed samples:
    gap = found["abdi_multires"]["criteria"][0]
    assert found["abdi_multires"]["seeds"] == results["numbers"]["seeds"] == [0, 1, 2]
    assert gap["estimate"] >= -1.0
    assert gap["samples"] == pytest.approx(
        [100 * (w - d) for w, d in zip(wide["test_accuracy"], deep["test_accuracy"])],
        abs=1e-6)
    # Two stages of 16 channels: 8 ordinary blocks against 2 blocks of 4 branches.
    assert deep["trainable_params"] == wide["trainable_params"] == _expected_params(
        16, 4, stages=2) == 38010
    assert (deep["n_blocks"], deep["paths"]) == (8, 2 ** 8)
    assert (wide["n_blocks"], wide["paths"]) == (2, 5 ** 2)
    assert deep["path_counts"] == [math.comb(8, j) for j in range(9)]
    assert wide["path_counts"] == [1, 8, 16]
    assert results["numbers"]["accuracy_gap"] == pytest.approx(
        wide["mean_test_accuracy"] - deep["mean_test_accuracy"])
    assert len(deep["test_accuracy"]) == len(results["numbers"]["seeds"]) == 3
    assert results["numbers"]["trainable_parameter_difference"] == 0
    assert results["numbers"]["path_count_formula_error"] == 0
    assert min(deep["mean_test_accuracy"], wide["mean_test_accuracy"]) > 0.85
    paper = results["numbers"]["paper_networks"]
    assert paper["multi_resnet200_k5"]["log10_paths"] == pytest.approx(66 * math.log10(6))
