"""The findings measured on one trained network (issue #18): each finding's statistic as a pure
function on arrays with known answers, the assessments on synthetic networks whose answer is
known (branches exactly zero, one dominant block, an untrained twin), and on a small trained
network and its plain twin."""

import importlib
import inspect
import math

import keras
import numpy as np
import pytest

from keras_resnet_lab.analysis._common import error_rates, spearman
from keras_resnet_lab.analysis.estimation import (
    error_moments,
    estimation_errors,
    mean_over_spread,
    spread_change,
)
from keras_resnet_lab.analysis.filter_refinement import filter_refinement, filter_score
from keras_resnet_lab.analysis.lesion import (
    LesionResult,
    default_swap_counts,
    k_curve,
    largest_step,
    largest_step_share,
    lesion_study,
    median_error,
    median_rise,
    rank_correlation,
    tau_correlation,
)
from keras_resnet_lab.analysis.paths import decay_factor, path_gradients, peak_over_half
from keras_resnet_lab.analysis.refinement import first_over_rest, mean_cosine
from keras_resnet_lab.analysis.refinement import refinement as refine
from keras_resnet_lab.analysis.similarity import (
    block_similarity,
    centered_gram,
    cka_assessment,
    linear_cka,
    within_stage_cka,
)
from keras_resnet_lab.findings import FINDINGS, HELD, INCONCLUSIVE, NOT_HELD, Assessment
from keras_resnet_lab.models import cifar_network

#: The modules of the analyses on one trained network (the package re-exports functions of
#: the same names, hence import_module).
MODULES = tuple(importlib.import_module(f"keras_resnet_lab.analysis.{name}") for name in (
    "_common", "lesion", "paths", "refinement", "estimation", "filter_refinement", "similarity"))


def _keys(assessment):
    return [c.key for c in assessment.finding.criteria]


def _exact(estimate, value):
    """The estimate and both ends of its interval equal ``value``."""
    return estimate.value == estimate.low == estimate.high == value


# -- the rule lives in the registry ------------------------------------------------------------

def test_the_analyses_hold_no_rule_or_verdict():
    """Thresholds, comparisons and verdicts live in ``keras_resnet_lab.findings`` only."""
    for module in MODULES:
        source = inspect.getsource(module)
        for word in ('"held"', "'held'", "HELD", "judge(", "criterion(", "finding_held",
                     ".threshold", ".comparison"):
            assert word not in source, (module.__name__, word)


# -- (a) the statistics on hand-made arrays ----------------------------------------------------

def test_error_rates_and_spearman():
    correct = np.array([[True, True, False, False], [True, True, True, True]])
    np.testing.assert_array_equal(error_rates(correct), [0.5, 0.0])
    np.testing.assert_array_equal(error_rates(correct, [2, 2, 3, 0]), [0.75, 0.0])
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(3 / math.sqrt(10))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5])) and math.isnan(spearman([1], [2]))


def test_lesion_statistics():
    assert median_rise(0.1, [0.11, 0.13, 0.6, 0.12], [False, False, True, False]) \
        == pytest.approx(2.0)
    assert median_error([0.8, 0.9, 0.1], [False, False, True]) == pytest.approx(85.0)
    assert math.isnan(median_rise(0.1, [0.5], [True]))
    ks, means = k_curve(0.1, [0.2, 0.4, 0.5, 0.3], [1, 1, 2, 3])
    assert ks == [0, 1, 2, 3] and means == pytest.approx([0.1, 0.3, 0.5, 0.3])
    assert rank_correlation(ks, means) == pytest.approx(spearman([0, 1, 2, 3], means))
    assert largest_step(means) == pytest.approx(20.0)
    assert largest_step([0.5, 0.4, 0.3]) == pytest.approx(-10.0)
    # a steady rise spreads the damage over the steps; a cliff puts it in one
    assert largest_step_share([0.0, 0.1, 0.2, 0.3]) == pytest.approx(1 / 3)
    assert largest_step_share([0.02, 0.20, 0.76, 0.87]) == pytest.approx(0.56 / 0.85)
    assert math.isnan(largest_step_share([0.1, 0.1, 0.05]))
    assert tau_correlation([1.0, 0.5, 0.0, -0.5], [0.1, 0.2, 0.3, 0.9]) == pytest.approx(-1.0)
    assert default_swap_counts(25) == [1, 2, 4, 8, 16] and default_swap_counts(0) == [1]


def test_path_statistics():
    assert decay_factor([0, 1, 2, 3], [8.0, 4.0, 2.0, 1.0]) == pytest.approx(0.5)
    assert decay_factor([0, 1, 2], [1.0, 3.0, 9.0]) == pytest.approx(3.0)
    # Lengths with a zero mean are left out of the fit; one length is no fit.
    assert decay_factor([0, 1, 2], [1.0, 0.0, 0.25]) == pytest.approx(0.5)
    assert math.isnan(decay_factor([0, 1], [1.0, 0.0]))
    # C(4, k) * 0.5**k = 1, 2, 1.5, 0.5, 0.0625: the peak is k = 1, over n / 2 = 2.
    assert peak_over_half([0, 1, 2, 3, 4], 0.5 ** np.arange(5), 4) == 0.5
    # A flat gradient: the contribution follows C(n, k), peaking at n / 2.
    assert peak_over_half(list(range(7)), np.ones(7), 6) == 1.0


def test_refinement_statistics():
    cos = np.array([[0.1, 0.3, -0.1], [0.3, 0.1, 0.1]])
    assert mean_cosine(cos) == pytest.approx((0.2 + 0.2 + 0.0) / 3)
    ratio = np.array([[2.0, 0.5, 0.1], [1.0, 0.3, 0.3]])
    assert first_over_rest(ratio) == pytest.approx(1.5 / 0.3)
    assert math.isnan(first_over_rest(np.zeros((3, 4))))
    assert math.isnan(first_over_rest(np.ones((3, 1))))


def test_estimation_statistics():
    errors = np.array([[-1.0, 0.0], [1.0, 2.0]])  # 2 examples x 2 units of one block
    mean, std = error_moments(errors.sum(1, keepdims=True), (errors ** 2).sum(1, keepdims=True),
                              [2])
    assert mean[0] == errors.mean() and std[0] == pytest.approx(errors.std())
    # On a resample of the examples: the moments of the stacked rows.
    mean, std = error_moments(errors.sum(1, keepdims=True), (errors ** 2).sum(1, keepdims=True),
                              [2], examples=[1, 1, 0])
    stacked = errors[[1, 1, 0]]
    assert mean[0] == pytest.approx(stacked.mean()) and std[0] == pytest.approx(stacked.std())
    assert mean_over_spread([0.1, -0.3, 0.0], [1.0, 1.0, 0.0]) == pytest.approx(0.3)
    assert math.isnan(mean_over_spread([0.0, 0.0], [0.0, 0.0]))
    # Steps only within a stage: 1 -> 0.5 (-0.5), 0.5 -> 0.4 (-0.2), 2 -> 1 (-0.5).
    assert spread_change([1.0, 0.5, 0.4, 2.0, 1.0], [1, 1, 1, 2, 2]) == pytest.approx(-0.2)
    assert spread_change([1.0, 1.0, 3.0], [1, 1, 1]) == pytest.approx(2.0)
    assert spread_change([1.0, 0.0], [1, 1]) == -1.0
    assert math.isnan(spread_change([0.0, 0.0], [1, 1]))  # 0 -> 0: undefined
    assert math.isnan(spread_change([1.0, 2.0], [1, 2]))  # no step within a stage


def test_filter_score_weights_are_duplicated_channels():
    rng = np.random.default_rng(0)
    same = [rng.uniform(size=4), rng.uniform(size=4)]
    j = [np.repeat(np.arange(4), 3), rng.integers(0, 4, 7)]
    values = [rng.uniform(size=len(jj)) for jj in j]
    plain = np.mean([s.mean() for s in same]) - np.mean([v.mean() for v in values])
    assert filter_score(same, values, j) == pytest.approx(plain)
    weights = [np.array([2.0, 0.0, 1.0, 1.0]), np.array([0.0, 3.0, 1.0, 0.0])]
    # Each channel counted w times, and each random pair (j, k) w[j] times.
    dup_same = [np.repeat(s, w.astype(int)) for s, w in zip(same, weights)]
    dup_values = [np.repeat(v, w[jj].astype(int)) for v, jj, w in zip(values, j, weights)]
    expected = (np.mean([s.mean() for s in dup_same])
                - np.mean([v.mean() for v in dup_values]))
    assert filter_score(same, values, j, weights) == pytest.approx(expected)


def test_within_stage_cka_on_a_resample_is_the_cka_of_the_resampled_rows():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 12)) + 3.0  # an offset: the centring matters
    b = a @ rng.normal(size=(12, 6)) + rng.normal(size=(30, 6))
    c = rng.normal(size=(30, 5))
    stem = rng.normal(size=(30, 4))
    features = [stem, a, b, c]
    grams = np.stack([centered_gram(f) for f in features]).astype(np.float32)
    stages = [0, 1, 1, 1]  # the stem pairs with nothing
    full = np.mean([linear_cka(a, b), linear_cka(b, c)])
    assert within_stage_cka(grams, stages) == pytest.approx(full, abs=1e-5)
    idx = rng.integers(0, 30, 30)
    resampled = np.mean([linear_cka(a[idx], b[idx]), linear_cka(b[idx], c[idx])])
    assert within_stage_cka(grams, stages, idx) == pytest.approx(resampled, abs=1e-5)
    # Uncentred Gram matrices give the same CKA: it centres them on the resample.
    raw = np.stack([f.reshape(30, -1) @ f.reshape(30, -1).T for f in features])
    assert within_stage_cka(raw, stages, idx) == pytest.approx(resampled, abs=1e-4)
    with pytest.raises(ValueError, match="consecutive"):
        within_stage_cka(grams[:2], [0, 1])


# -- assessments on hand-made lesion results (no model) ----------------------------------------

def _lesion_result(n=400, seed=0):
    """A lesion study with known answers: deleting a non-downsampling block changes no
    prediction, the downsampling one breaks all; each extra randomly deleted block makes 40
    more examples wrong (nested: a steady rise); the plain twin works (20% error) and any
    deletion breaks it; each reordering makes 12 more examples wrong as Kendall's tau
    falls."""
    rng = np.random.default_rng(seed)
    intact = rng.uniform(size=n) < 0.7
    down = [False, False, True, False, False]
    single = np.stack([np.zeros(n, bool) if d else intact for d in down])
    wrong_from = rng.permutation(np.flatnonzero(intact))  # right in the intact model
    k_rows, random_k = [], []
    for k in (1, 2, 3):
        row = intact.copy()
        row[wrong_from[:40 * k]] = False
        k_rows += [row] * 20
        random_k.append({"k": k, "errors": [float(1 - row.mean())] * 20,
                         "mean_error": float(1 - row.mean())})
    taus, reorder, reorder_rows = np.linspace(0.9, -0.9, 10), [], []
    for r, tau in enumerate(taus):
        row = intact.copy()
        row[wrong_from[:12 * (r + 1)]] = False
        reorder.append({"swaps": 1 + r // 5, "kendall_tau": float(tau),
                        "error": float(1 - row.mean())})
        reorder_rows.append(row)
    plain_intact = rng.uniform(size=n) < 0.8
    plain = LesionResult(
        "plain", n, 10, 0.9, "cached", [f"b{i}" for i in range(5)], down,
        float(1 - plain_intact.mean()), 1.0, [1.0] * 5, [5.0] * 5, [], [],
        intact_correct=plain_intact, single_correct=np.zeros((5, n), bool),
        k_correct=np.zeros((0, n), bool), reorder_correct=np.zeros((0, n), bool))
    return LesionResult(
        "resnet", n, 10, 0.9, "cached", [f"b{i}" for i in range(5)], down,
        float(1 - intact.mean()), 1.0, list(error_rates(single)), [1.0] * 5, random_k,
        reorder, plain, intact_correct=intact, single_correct=single,
        k_correct=np.stack(k_rows), reorder_correct=np.stack(reorder_rows))


def test_lesion_assessments_with_known_answers():
    result = _lesion_result()
    single, k_deletion, reorder = result.assessments(resamples=300)
    assert [a.key for a in (single, k_deletion, reorder)] == [
        "veit_lesion", "veit_k_deletion", "veit_reorder"]
    # Paired bootstrap: deleting a block that changes no prediction rises by exactly 0 on
    # every resample of the examples (unpaired resamples would scatter around 0).
    assert _exact(single.estimates["median_rise"], 0.0)
    assert _exact(single.estimates["plain_error"], 100.0)
    plain_intact = single.estimates["plain_intact_error"]
    assert plain_intact.value == pytest.approx(100 * result.plain.intact_error)
    assert plain_intact.low < plain_intact.value < plain_intact.high < 50
    assert single.verdict == HELD and single.seeds == (0,)
    # Nested wrong sets: the mean error rises with k on every resample.
    rank = k_deletion.estimates["rank_correlation"]
    assert rank.value == pytest.approx(1.0) and rank.low == pytest.approx(1.0)
    step = k_deletion.estimates["largest_step_share"]
    curve = result.mean_error_by_k()
    means = [result.intact_error] + [curve[k] for k in sorted(curve)]
    assert step.value == pytest.approx(largest_step_share(means)) and step.high <= 0.5
    assert k_deletion.verdict == HELD and "20 draws per k" in k_deletion.notes
    tau = reorder.estimates["tau_correlation"]
    assert tau.value == pytest.approx(-1.0) and tau.high == pytest.approx(-1.0)
    assert reorder.verdict == HELD
    assert "60 x 400" in k_deletion.estimates["largest_step_share"].method
    # Repeatable with the seed; another seed resamples differently.
    again = result.assessments(resamples=300)[1].estimates["largest_step_share"]
    other = result.assessments(seed=1, resamples=300)[1].estimates["largest_step_share"]
    assert again == step and (other.low, other.high) != (step.low, step.high)


def test_lesion_assessments_without_a_twin_or_draws():
    result = _lesion_result()
    result.plain, result.random_k, result.reorder = None, [], []
    single, k_deletion, reorder = result.assessments(resamples=100)
    assert single.verdicts["median_rise"] == HELD and single.verdict == INCONCLUSIVE
    assert not single.estimates["plain_error"].has_interval
    assert k_deletion.verdict == reorder.verdict == INCONCLUSIVE
    result.intact_correct = None
    with pytest.raises(ValueError, match="per-example"):
        result.assessments()


# -- (b) synthetic networks with known answers -------------------------------------------------

def _zero_branch_net(blocks=2, widths=(4, 8), seed=1, num_classes=3):
    """Pre-activation blocks whose last convolution is zero: every branch is exactly 0, so
    each block outputs its shortcut and deleting it changes nothing."""
    keras.utils.set_random_seed(seed)
    return cifar_network(blocks, widths=widths, input_shape=(8, 8, 3), num_classes=num_classes,
                         preact=True, zero_init_residual=True, shortcut="A")


def _randomize(model, block, scale=1.0, seed=3):
    """Give ``block``'s branch random convolution kernels (a nonzero branch)."""
    layer = model.get_layer(block)
    noise = np.random.default_rng(seed)
    layer.set_weights([scale * noise.normal(size=w.shape).astype("float32") if w.ndim == 4
                       else w for w in layer.get_weights()])


def _images(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 8, 3)).astype("float32")


def _own_labels(model, x):
    """Labels the model gets right (its own predictions): intact error exactly 0."""
    return np.asarray(model(x, training=False)).argmax(-1)


def test_zero_branches_lesion_changes_nothing():
    model = _zero_branch_net()
    x = _images(48)
    y = _own_labels(model, x)
    result = lesion_study(model, (x, y), swap_counts=[1, 2], progress_bar=False)
    # 4 blocks: k = 1..max(1, 4 // 3) = 1, 20 draws; every lesion keeps every prediction.
    assert [r["k"] for r in result.random_k] == [1] and len(result.random_k[0]["errors"]) == 20
    assert result.intact_error == 0.0 and result.single_error == [0.0] * 4
    assert all(r["error"] == 0.0 for r in result.reorder) and len(result.reorder) == 40
    single, k_deletion, reorder = result.assessments(resamples=200)
    assert _exact(single.estimates["median_rise"], 0.0)
    assert single.verdicts["median_rise"] == HELD
    assert single.verdict == INCONCLUSIVE  # no plain twin was studied
    # A flat curve has no rise to share out and no rank correlation: not measured, so
    # inconclusive.
    assert not k_deletion.estimates["largest_step_share"].has_interval
    assert not k_deletion.estimates["rank_correlation"].has_interval
    assert k_deletion.verdicts["rank_correlation"] == INCONCLUSIVE
    assert reorder.verdict == INCONCLUSIVE


def test_one_dominant_block_is_the_only_costly_deletion():
    model = _zero_branch_net(blocks=3, widths=(4, 8))
    _randomize(model, "stage1_block2", scale=3.0)
    x = _images(64)
    y = _own_labels(model, x)
    result = lesion_study(model, (x, y), k_values=[1], draws=20, swap_counts=(),
                          progress_bar=False)
    errors = dict(zip(result.block_names, result.single_error))
    assert errors.pop("stage1_block2") > 0.3  # 3 classes: chance is 0.67
    assert set(errors.values()) == {0.0}
    single = result.assessments(resamples=200)[0]
    # The median over the 5 blocks that do not downsample ignores the one that matters.
    assert _exact(single.estimates["median_rise"], 0.0)
    # Its k = 1 draws cost the dominant block's error whenever they pick it.
    dominant = result.block_names.index("stage1_block2")
    picked = error_rates(result.k_correct) > 0
    assert picked.any() and not picked.all()
    np.testing.assert_array_equal(error_rates(result.k_correct)[picked],
                                  result.single_error[dominant])


def test_untrained_plain_twin_makes_the_lesion_finding_inconclusive(trained_digits):
    model, _, (x, y) = trained_digits
    keras.utils.set_random_seed(5)
    untrained = cifar_network(2, widths=(8, 16, 32), input_shape=x.shape[1:], num_classes=10,
                              plain=True, shortcut="A")
    result = lesion_study(model, (x, y), plain_model=untrained, k_values=[1], swap_counts=(),
                          progress_bar=False)
    assert result.plain.random_k == [] and result.plain.reorder == []
    single = result.assessments(resamples=200)[0]
    assert single.verdicts["plain_intact_error"] == NOT_HELD  # chance: about 90% error
    assert single.estimates["plain_intact_error"].low > 50
    assert single.verdict == INCONCLUSIVE


def test_lesion_compares_with_a_shallower_plain_network_and_refuses_other_images(
        trained_digits):
    """Veit et al. compared ResNet-110 with the shallower VGG-15: the plain network need not be
    the twin, only a plain chain on the same images and classes."""
    model, _, (x, y) = trained_digits
    keras.utils.set_random_seed(6)
    shallow = cifar_network(1, widths=(8, 16, 32), input_shape=x.shape[1:], num_classes=10,
                            plain=True, shortcut="A", name="plain_shallow")
    result = lesion_study(model, (x, y), plain_model=shallow, k_values=[1], swap_counts=(),
                          progress_bar=False)
    assert len(result.plain.block_names) == 3 < len(result.block_names) == 6
    assert result.plain.single_correct.shape == (3, len(x))
    single = result.assessments(resamples=100)[0]
    assert "plain network 'plain_shallow' (3 blocks)" in single.notes
    # its plain criteria are measured on the shallow network (untrained: about chance)
    assert single.estimates["plain_intact_error"].value == pytest.approx(
        100 * result.plain.intact_error)
    other = cifar_network(1, widths=(8, 16, 32), input_shape=(8, 8, 1), num_classes=10,
                          plain=True, shortcut="A", name="plain_8x8")
    with pytest.raises(ValueError, match="plain_8x8"):
        lesion_study(model, (x, y), plain_model=other, k_values=[1], progress_bar=False)


def test_refinement_of_zero_and_dominant_branches():
    model = _zero_branch_net(blocks=2, widths=(4,))
    x = _images(16)
    result = refine(model, (x, _own_labels(model, x)), lesions=False, progress_bar=False)
    np.testing.assert_array_equal(result.ratio_values, 0.0)
    np.testing.assert_array_equal(result.cos_values, 0.0)
    cosine, first = result.assessments(resamples=100)
    # cos = 0 on every example: not positive.
    assert _exact(cosine.estimates["mean_cosine"], 0.0) and cosine.verdict == NOT_HELD
    assert not first.estimates["first_over_rest"].has_interval  # 0 / 0
    assert first.verdict == INCONCLUSIVE
    # A large first branch, small later ones: the first block changes its input most.
    _randomize(model, "stage1_block1", scale=3.0)
    _randomize(model, "stage1_block2", scale=0.01, seed=4)
    moved = refine(model, (x, _own_labels(model, x)), lesions=False, progress_bar=False)
    first = moved.assessments(resamples=200)[1]
    estimate = first.estimates["first_over_rest"]
    assert estimate.value == pytest.approx(
        moved.norm_ratio[0] / np.mean(moved.norm_ratio[1:]), rel=1e-9)
    assert estimate.low > 10 and first.verdict == HELD


def test_estimation_error_of_known_stages():
    x = _images(24)
    model = _zero_branch_net(blocks=3, widths=(4,))
    # All branches 0: the error h_i - h_end is 0, no spread: nothing can be judged.
    assessment = estimation_errors(model, x, progress_bar=False).assessments(resamples=100)[0]
    assert assessment.verdict == INCONCLUSIVE
    assert not any(e.has_interval for e in assessment.estimates.values())
    # Only the second branch is nonzero: block 2 already is h_end, block 1 is not. The
    # spread falls from block 1 to block 2 by exactly 100% on every resample.
    _randomize(model, "stage1_block2")
    result = estimation_errors(model, x, progress_bar=False)
    assert result.std[0] > 0 and result.std[1] == 0.0
    assessment = result.assessments(resamples=200)[0]
    assert _exact(assessment.estimates["spread_change"], -1.0)
    assert assessment.verdicts["spread_change"] == HELD
    assert assessment.estimates["mean_over_spread"].value == pytest.approx(
        abs(result.mean[0]) / result.std[0], rel=1e-6)
    # Only the last branch is nonzero: blocks 1 and 2 both equal h_end - F_3, the spread
    # does not change at all (0, not a fall): not held.
    model = _zero_branch_net(blocks=3, widths=(4,))
    _randomize(model, "stage1_block3")
    assessment = estimation_errors(model, x, progress_bar=False).assessments(resamples=200)[0]
    assert _exact(assessment.estimates["spread_change"], 0.0)
    assert assessment.verdicts["spread_change"] == NOT_HELD


def test_path_gradients_of_zero_branches_come_from_the_skip_path():
    model = _zero_branch_net(blocks=2, widths=(4,))
    x = _images(8)
    result = path_gradients(model, (x, _own_labels(model, x)), 4, progress_bar=False)
    assert result.norms.shape == (3, 4) and np.all(result.norms[0] > 0)
    np.testing.assert_array_equal(result.norms[1:], 0.0)  # a zero branch passes no gradient
    assessment = result.assessments(resamples=100)[0]
    assert _exact(assessment.estimates["peak_over_half"], 0.0)
    assert assessment.verdicts["peak_over_half"] == HELD
    assert not assessment.estimates["decay_factor"].has_interval  # one length with gradient
    assert assessment.verdict == INCONCLUSIVE


def test_filters_and_cka_of_identical_consecutive_blocks():
    """Zero branches: the blocks of a stage output the same representation: same-channel
    correlation and within-stage CKA exactly 1."""
    model = _zero_branch_net(blocks=3, widths=(4, 8))
    keras.utils.set_random_seed(2)
    twin = cifar_network(3, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3, plain=True,
                         shortcut="A")
    x = _images(40)
    result = filter_refinement(model, x, twin=twin, progress_bar=False)
    assessment = result.assessments(resamples=200)[0]
    assert _keys(assessment) == ["score", "score_over_twin"]
    score = assessment.estimates["score"]
    assert score.value == pytest.approx(result.score, abs=1e-12)
    assert score.low <= score.value <= score.high
    assert assessment.estimates["score_over_twin"].value == pytest.approx(
        result.score_over_twin, abs=1e-12)
    assert "channels (resampled within each stage)" in score.method
    alone = filter_refinement(model, x, progress_bar=False)
    assert alone.assessments(resamples=50)[0].verdicts["score_over_twin"] == INCONCLUSIVE

    residual = block_similarity(model, x, progress_bar=False)
    plain = block_similarity(twin, x, progress_bar=False)
    assert residual.within_stage == pytest.approx(1.0)
    assessment = cka_assessment(residual, plain, resamples=100)
    gap = assessment.estimates["cka_gap"]
    assert gap.value == pytest.approx(1.0 - plain.within_stage, abs=1e-5)
    assert gap.low > 0 and assessment.verdict == HELD
    with pytest.raises(ValueError, match="same examples"):
        cka_assessment(residual, block_similarity(twin, x[:30], progress_bar=False))


# -- (c) every assessment on a small trained network -------------------------------------------

def _check(assessments, keys, undefined=()):
    """The registry's findings ``keys`` with its criteria, each with a finite interval
    (except the criteria ``undefined``)."""
    assert [a.key for a in assessments] == keys
    for a in assessments:
        assert isinstance(a, Assessment)
        assert _keys(a) == [c.key for c in FINDINGS[a.key].criteria] == list(a.estimates)
        for key, e in a.estimates.items():
            if key in undefined:
                assert not e.has_interval
                continue
            assert e.has_interval, (a.key, key, e)
            assert e.low <= e.value <= e.high, (a.key, key, e)
        assert a.to_dict()["criteria"] and a.describe()


def test_assessments_on_the_trained_digits_net(trained_digits, tmp_path):
    model, plain, (x, y) = trained_digits
    data = (x[:200], y[:200])
    lesions = lesion_study(model, data, plain_model=plain, progress_bar=False)
    # Defaults: 20 draws, k = 1..6 // 3, swaps 1, 2, 4 (4 blocks keep their shape).
    assert [r["k"] for r in lesions.random_k] == [1, 2]
    assert {len(r["errors"]) for r in lesions.random_k} == {20}
    assert sorted({r["swaps"] for r in lesions.reorder}) == [1, 2, 4]
    assert lesions.k_correct.shape == (40, 200) and lesions.reorder_correct.shape == (60, 200)
    assert "intact_correct" not in lesions.to_dict()
    _check(lesions.assessments(resamples=200),
           ["veit_lesion", "veit_k_deletion", "veit_reorder"])
    paths_result = path_gradients(model, data, 6, progress_bar=False)
    _check(paths_result.assessments(resamples=200), ["veit_path_gradient"])
    refined = refine(model, data, lesions=False, progress_bar=False)
    _check(refined.assessments(resamples=200),
           ["jastrzebski_refinement", "jastrzebski_first_block"])
    estimated = estimation_errors(model, data, progress_bar=False)
    assessments = estimated.assessments(resamples=200)
    # Two blocks a stage: one measured block each (the second is h_end), no step to compare.
    _check(assessments, ["greff_estimation"], undefined=["spread_change"])
    assert "no stage has two measured blocks" in \
        assessments[0].estimates["spread_change"].method
    filters = filter_refinement(model, data, twin=plain, progress_bar=False)
    _check(filters.assessments(resamples=200), ["chu_filters"])
    residual = block_similarity(model, data, progress_bar=False)
    twin = block_similarity(plain, data, progress_bar=False)
    _check([cka_assessment(residual, twin, resamples=100)], ["kornblith_cka"])
    # The per-example arrays stay out of the JSON; the figures draw their intervals.
    for result, name in ((lesions, "lesion"), (paths_result, "paths"), (refined, "refine"),
                         (estimated, "estimation"), (filters, "filters"), (residual, "cka")):
        assert result.to_json(tmp_path / f"{name}.json")
        assert result.plot(tmp_path / f"{name}.png")
