"""analysis/sharing.py: the weight-sharing comparison (Liao & Poggio; Jastrzebski et al.) on
tiny data, and its reproduction script."""

import math

import keras
import numpy as np
import pytest
from _scripts import check_results, one_seed_round_trip, run_script

from keras_resnet_lab.analysis.comparisons import SeededComparison
from keras_resnet_lab.analysis.norms import norm_growth
from keras_resnet_lab.analysis.sharing import (
    VARIANTS,
    SharingComparison,
    compare_weight_sharing,
    sharing_network,
)


@pytest.fixture(scope="module")
def sharing(digits256):
    train, test = digits256
    return compare_weight_sharing(train, test, steps=3, width=8, epochs=1, progress_bar=False)


def test_weight_sharing_growth_and_parameters(sharing, digits256):
    assert isinstance(sharing, SharingComparison)
    assert sharing.variants == list(VARIANTS) and list(sharing.runs) == list(VARIANTS)
    naive, fixed, unshared = (sharing.runs[v] for v in VARIANTS)
    assert naive["init_ratio"] > fixed["init_ratio"]
    assert all(len(run["init_ratio_per_step"]) == 4 for run in sharing.runs.values())
    # The init numbers depend only on the seed: rebuilding the network gives them exactly.
    probe = digits256[1][0][:256]
    for variant in VARIANTS:
        keras.utils.set_random_seed(0)
        model = sharing_network(variant, steps=3, width=8, input_shape=(8, 8, 3))
        growth = norm_growth(model, probe, training=True, batch_size=len(probe))
        assert growth.final_ratio == sharing.runs[variant]["init_ratio"]
    # The shared stacks differ only by batch-norm pairs: 2 more pairs of 2 x 8 weights.
    assert fixed["trainable_params"] - naive["trainable_params"] == (3 - 1) * 2 * 2 * 8
    kernels = {}
    for variant in VARIANTS:
        model = sharing_network(variant, steps=3, width=8, input_shape=(8, 8, 3))
        kernels[variant] = sum(math.prod(w.shape) for w in model.trainable_weights
                               if w.path.endswith("kernel"))
    # one block's convolutions (2 x 3x3x8x8) against three blocks'
    assert kernels["naive"] == kernels["unshared_bn"]
    assert kernels["unshared_weights"] - kernels["naive"] == 2 * 2 * 9 * 8 * 8
    assert naive["trainable_params"] < fixed["trainable_params"] < unshared["trainable_params"]
    assert sharing.steps_per_epoch == 4 and sharing.batch_size == 64


def test_weight_sharing_statistics_round_trip_and_description(sharing, tmp_path):
    naive, fixed = sharing.runs["naive"], sharing.runs["unshared_bn"]
    stats = sharing.statistics()
    assert list(stats) == ["jastrzebski_sharing"]
    assert stats["jastrzebski_sharing"] == pytest.approx({
        "init_growth_ratio": naive["init_ratio"] / fixed["init_ratio"],
        "accuracy_gap": 100 * (fixed["test_accuracy"] - naive["test_accuracy"])})
    # Descriptive: the gap with each test batch's own statistics, not judged.
    assert sharing.batch_statistics_gap() == pytest.approx(
        100 * (fixed["test_accuracy_batch_stats"] - naive["test_accuracy_batch_stats"]))
    notes = sharing.notes()["jastrzebski_sharing"]
    assert "moving batch-norm statistics" in notes and "batch statistics" in notes
    seeded = SeededComparison.from_runs("sharing", [0, 5], [sharing, sharing])
    gap = f"{sharing.batch_statistics_gap():.3g}"
    assert seeded.notes["jastrzebski_sharing"].startswith(notes)
    assert (f"Descriptive, seed by seed (0, 5): accuracy gap with each test batch's own "
            f"statistics (points): {gap}, {gap}; per-step batch norm diverged (1 = yes): "
            f"{float(fixed['diverged']):.3g}") in seeded.notes["jastrzebski_sharing"]
    loaded = one_seed_round_trip(sharing, tmp_path)
    assert loaded["runs"]["naive"]["trainable_params"] == naive["trainable_params"]
    assert loaded["runs"]["unshared_bn"]["test_accuracy_batch_stats"] == \
        fixed["test_accuracy_batch_stats"]
    text = sharing.describe()
    for run in sharing.runs.values():
        assert f"{run['init_ratio']:.3g}" in text
        assert f"{100 * run['test_accuracy']:.1f}%" in text
        assert f"{100 * run['test_accuracy_batch_stats']:.1f}%" in text
    assert "applied 3 times" in text and "finding" not in text


@pytest.mark.parametrize("kwargs, argument", [
    (dict(steps=0), "steps"),
    (dict(width=2.5), "width"),
    (dict(epochs=0), "epochs"),
    (dict(learning_rate=-0.1), "learning_rate"),
    (dict(naive_gamma=0.0), "naive_gamma"),
    (dict(unshared_gamma=float("nan")), "unshared_gamma"),
    (dict(batch_size=0), "batch_size"),
    (dict(steps_per_epoch=0), "steps_per_epoch"),
    (dict(verbose=-1), "verbose"),
])
def test_compare_weight_sharing_argument_errors(digits256, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        compare_weight_sharing(*digits256, progress_bar=False, **kwargs)


def test_weight_sharing_data_and_network_errors(digits256):
    import tensorflow as tf

    train, test = digits256
    unknown = tf.data.Dataset.from_tensor_slices(train).filter(lambda x, y: y >= 0).batch(64)
    with pytest.raises(ValueError, match="`steps_per_epoch` is needed"):
        compare_weight_sharing(unknown, test, progress_bar=False)
    with pytest.raises(ValueError, match="`train` must be a pair"):
        compare_weight_sharing([train[0]], test, progress_bar=False)
    with pytest.raises(ValueError, match="`test` inputs contain NaN"):
        compare_weight_sharing(train, (np.full_like(test[0], np.nan), test[1]),
                               progress_bar=False)
    with pytest.raises(ValueError, match="`variant` must be one of 'naive'"):
        sharing_network("shared", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="`input_shape`"):
        sharing_network("naive", input_shape=(64,))


@pytest.mark.slow  # a benchmark's whole --quick run: `pytest -m slow`
def test_sharing_liao_quick(tmp_path):
    results = run_script("sharing_liao", tmp_path)
    found = check_results(results, tmp_path, "sharing_liao", ["jastrzebski_sharing"])
    # 3 seeds: growth ratio 3.5 [3.2, 3.7] (>= 1.5), accuracy gap +65 points [+53, +78] (> 0).
    sharing = found["jastrzebski_sharing"]
    assert sharing["seeds"] == [0, 1, 2] and sharing["verdict"] == "held"
    ratio, gap = sharing["criteria"]
    assert ratio["estimate"] > 2 and gap["estimate"] > 20
    per_seed = results["numbers"]["per_seed"]
    assert gap["samples"] == pytest.approx(
        [100 * (s["unshared_bn"]["test_accuracy"] - s["naive"]["test_accuracy"])
         for s in per_seed.values()])
    runs = results["numbers"]["runs"]
    steps = results["config"]["steps"]
    assert runs["naive"]["init_ratio"] > runs["unshared_bn"]["init_ratio"]
    assert runs["naive"]["test_accuracy"] < runs["unshared_bn"]["test_accuracy"]
    assert len(runs["unshared_bn"]["init_ratio_per_step"]) == steps + 1
    # the shared stacks differ only by batch-norm pairs: (steps - 1) * 2 norms * 2C more
    width = results["config"]["width"]
    assert (runs["unshared_bn"]["trainable_params"] - runs["naive"]["trainable_params"]
            == (steps - 1) * 2 * 2 * width)
