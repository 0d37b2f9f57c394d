"""Unrolled iterative estimation (Greff et al., arXiv 1612.07771) and the filter refinement score
(Chu et al., arXiv 1701.02362): exact properties on tiny cases, and the two scripts' findings."""

import json
import math

import keras
import numpy as np
import pytest
from _scripts import check_results, run_script

from keras_resnet_lab.analysis.estimation import (
    block_outputs,
    estimation_errors,
    stage_estimation_errors,
)
from keras_resnet_lab.analysis.filter_refinement import (
    channel_correlation,
    filter_refinement,
    pair_score,
    random_channel_pairs,
)
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.cifar import cifar_network, highway_net

PNG = b"\x89PNG"


def _images(n=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 8, 3)).astype("float32")


def _net(blocks_per_stage=3, widths=(4, 8), seed=1, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs.setdefault("shortcut", "A")
    return cifar_network(blocks_per_stage, widths=widths, input_shape=(8, 8, 3),
                         num_classes=3, **kwargs)


def _identity_stage_net():
    """One stage of three pre-activation blocks whose branches are exactly 0 (zero-initialized
    last convolution): every block outputs the stem's output unchanged."""
    return _net(3, widths=(4,), preact=True, zero_init_residual=True)


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(4) == PNG


# -- estimation: the numbers ---------------------------------------------------------------

def test_stage_estimation_errors_by_hand():
    h1 = np.array([[1.0, 2.0], [3.0, 4.0]])
    h_end = np.full((2, 2), 2.0)
    first, last = stage_estimation_errors([h1, h_end])
    # h1 - h_end = [[-1, 0], [1, 2]]
    assert first["mean"] == 0.5 and math.isclose(first["std"], math.sqrt(1.25))
    assert first["rms_end"] == 2.0 and first["normalized_mean"] == 0.25
    assert math.isclose(first["normalized_std"], math.sqrt(1.25) / 2)
    assert math.isclose(first["relative_error"], (1 + math.sqrt(5)) / (2 * math.sqrt(8)))
    # per-unit means over the examples: 0 and 1 -> RMS sqrt(1/2), over RMS(h_end) = 2
    assert math.isclose(first["unit_bias"], math.sqrt(0.5) / 2)
    assert all(last[k] == 0.0 for k in ("mean", "std", "relative_error", "unit_bias"))
    with pytest.raises(ValueError, match="outputs"):
        stage_estimation_errors([h1, np.zeros((2, 3))])
    with pytest.raises(ValueError, match="outputs"):
        stage_estimation_errors([])


@pytest.mark.parametrize("kind", ["residual", "plain", "highway"])
def test_estimation_errors_equal_the_numbers_of_the_block_outputs(kind):
    if kind == "highway":
        keras.utils.set_random_seed(1)
        model = highway_net(3, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3)
    else:
        model = _net(3, plain=kind == "plain")
    x = _images(12)
    # Streamed in batches of 5 (5 + 5 + 2) against one pass over all examples (float32
    # convolutions of other batch sizes differ in the last bits).
    result = estimation_errors(model, x, batch_size=5, progress_bar=False)
    infos = blocks(model)
    outputs = keras.Model(model.inputs, [i.layer.output for i in infos])([x])
    assert result.block_names == [i.name for i in infos]
    assert result.stages == [1, 1, 1, 2, 2, 2]
    assert result.is_stage_end == [False, False, True] * 2
    assert result.measured == [True, True, False] * 2
    assert result.single_block_stages == [] and result.n_examples == 12
    for span in (slice(0, 3), slice(3, 6)):
        expected = stage_estimation_errors([np.asarray(o) for o in outputs[span]])
        for i, stats in zip(range(6)[span], expected):
            for key in ("mean", "std", "normalized_mean", "normalized_std", "relative_error",
                        "unit_bias", "rms_end"):
                assert getattr(result, key)[i] == pytest.approx(stats[key], rel=1e-5,
                                                                 abs=1e-7), (key, i)
    measured = np.array(result.measured)
    # The end of a stage has error 0 by definition; the other blocks really differ from it.
    assert np.all(np.array(result.std)[~measured] == 0.0)
    assert np.all(np.array(result.std)[measured] > 1e-3)
    # The per-example sums (kept for intervals, not in the JSON) give the same moments.
    mean, std = result.moments()
    np.testing.assert_allclose(mean[measured], np.array(result.mean)[measured], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(std[measured], np.array(result.std)[measured], rtol=1e-6)
    assert np.isnan(mean[~measured]).all()
    assert result.error_sum.shape == result.error_squares.shape == (12, 6)
    assert result.end_stages == [1, 2] and result.end_squares.shape == (12, 2)
    np.testing.assert_allclose(
        np.sqrt(result.end_squares.sum(0) / (12 * result.end_units)),
        [result.rms_end[0], result.rms_end[3]], rtol=1e-9)
    assert not {"error_sum", "end_squares", "block_units"} & set(result.to_dict())


def test_blocks_with_zero_branches_make_no_estimation_error():
    model = _identity_stage_net()
    result = estimation_errors(model, _images(6), progress_bar=False)
    assert result.measured == [True, True, False]
    assert result.mean == [0.0, 0.0, 0.0] and result.std == [0.0, 0.0, 0.0]
    assert result.relative_error == [0.0, 0.0, 0.0] and result.rms_end[0] > 0
    # With a nonzero branch the same model has an error.
    layer = model.get_layer("stage1_block2")
    noise = np.random.default_rng(3)
    layer.set_weights([noise.normal(size=w.shape).astype("float32") if w.ndim == 4 else w
                       for w in layer.get_weights()])
    moved = estimation_errors(model, _images(6), progress_bar=False)
    assert moved.std[0] > 0 and moved.std[1] == 0.0  # block 2 = block 3; block 1 differs


def test_single_block_stages_have_nothing_to_measure():
    model = _net((1, 3))
    result = estimation_errors(model, _images(4), progress_bar=False)
    assert result.single_block_stages == [1]
    assert result.measured == [False, True, True, False]
    assert result.mean[0] is None and result.std[0] is None and result.mean[3] == 0.0
    assert result.measured_stages() == [2]
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["normalized_std"][0] is None
    with pytest.raises(ValueError, match="single block: \\[1, 2\\]"):
        estimation_errors(_net(1), _images(4), progress_bar=False)


def test_estimation_result_trend_json_and_plot(tmp_path):
    model = _net(3)
    result = estimation_errors(model, (_images(8), np.zeros(8, int)), progress_bar=False)
    fraction = result.std_decrease_fraction()
    steps = [result.normalized_std[1] < result.normalized_std[0],
             result.normalized_std[4] < result.normalized_std[3]]
    assert fraction == np.mean(steps)
    assert _is_png(result.plot(tmp_path / "estimation.png"))
    with open(result.to_json(tmp_path / "estimation.json")) as f:
        assert json.load(f)["block_names"] == result.block_names


def test_estimation_errors_reject_bad_arguments():
    model = _net(2)
    with pytest.raises(ValueError, match="data"):
        estimation_errors(model, np.zeros((2, 4, 4, 3), "float32"), progress_bar=False)
    with pytest.raises(ValueError, match="batch_size"):
        estimation_errors(model, _images(2), batch_size=0, progress_bar=False)
    with pytest.raises(ValueError, match="max_examples"):
        estimation_errors(model, _images(2), max_examples=-1, progress_bar=False)


def test_block_outputs_follow_the_chain():
    model = _net(2)
    outs = block_outputs(model, _images(3))
    assert [s.name for s, _ in outs] == [i.name for i in blocks(model)]
    assert [o.shape for _, o in outs] == [(3, 8, 8, 4)] * 2 + [(3, 4, 4, 8)] * 2


# -- filter refinement: the numbers ----------------------------------------------------------

def test_channel_correlation_exact_cases(rng):
    a = rng.normal(size=(5, 4, 4, 3))
    assert np.allclose(np.diag(channel_correlation(a, 2.0 * a + 1.0)), 1.0)
    assert np.allclose(np.diag(channel_correlation(a, -a)), -1.0)
    # A channel permutation moves the ones: corr[j, k] = 1 where perm[k] == j.
    perm = [2, 0, 1]
    corr = channel_correlation(a, a[..., perm])
    assert np.allclose(corr[[2, 0, 1], [0, 1, 2]], 1.0)
    flat_a, flat_b = a.reshape(-1, 3), rng.normal(size=(80, 2))
    expected = np.corrcoef(flat_a.T, flat_b.T)[:3, 3:]
    np.testing.assert_allclose(channel_correlation(flat_a, flat_b), expected, atol=1e-12)
    # Constant channels (a dead ReLU; a nonzero constant) correlate 0 with everything.
    b = a.copy()
    b[..., 0] = 0.0
    b[..., 1] = 0.7
    corr = channel_correlation(b, a)
    assert np.all(corr[:2] == 0.0) and np.isclose(corr[2, 2], 1.0)
    with pytest.raises(ValueError, match="leading shape"):
        channel_correlation(a, a[:4])


def test_random_channel_pairs_and_pair_score():
    j, k = random_channel_pairs(3)
    assert list(zip(j.tolist(), k.tolist())) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0),
                                                 (2, 1)]
    j, k = random_channel_pairs(5, 400, seed=7)
    assert len(j) == 400 and np.all(j != k) and set(k.tolist()) == set(range(5))
    again = random_channel_pairs(5, 400, seed=7)
    other = random_channel_pairs(5, 400, seed=8)
    assert np.array_equal(j, again[0]) and np.array_equal(k, again[1])
    assert not (np.array_equal(j, other[0]) and np.array_equal(k, other[1]))
    same, rand = pair_score(np.array([[1.0, 0.2], [0.4, 0.8]]))
    assert same.tolist() == [1.0, 0.8] and rand.tolist() == [0.2, 0.4]
    with pytest.raises(ValueError, match="channels"):
        random_channel_pairs(1)
    with pytest.raises(ValueError, match="random_pairs"):
        random_channel_pairs(3, 0)
    with pytest.raises(ValueError, match="corr"):
        pair_score(np.zeros((2, 3)))


def test_identical_consecutive_blocks_score_exactly():
    """Every block outputs the stem's output h: same-channel correlation 1, random pairs the
    off-diagonal correlations of h's channels."""
    model = _identity_stage_net()
    x = _images(10)
    result = filter_refinement(model, x, batch_size=3, progress_bar=False)
    stem = np.asarray(keras.Model(model.inputs, model.get_layer("stem_conv").output)([x]))
    corr = channel_correlation(stem, stem)
    off = corr[~np.eye(4, dtype=bool)].mean()
    assert result.pairs == ["stage1_block1->stage1_block2", "stage1_block2->stage1_block3"]
    assert result.channels == [4, 4] and result.pair_stages == [1, 1]
    np.testing.assert_allclose(result.same_channel_values, np.ones((2, 4)), atol=1e-9)
    np.testing.assert_allclose(result.random_pair, [off, off], atol=1e-9)
    assert result.score == pytest.approx(1.0 - off, abs=1e-9)
    assert result.twin_score is None and result.random_pairs == "all"


def test_filter_refinement_with_twin_streams_and_draws(tmp_path):
    model, plain = _net(3), _net(3, plain=True, seed=2)
    x = _images(12)
    both = filter_refinement(model, x, twin=plain, batch_size=5, progress_bar=False)
    alone = filter_refinement(model, x, batch_size=12, progress_bar=False)
    twin_alone = filter_refinement(plain, x, batch_size=64, progress_bar=False)
    # Streamed in batches of 5 against one pass (float32 forward passes of other batch sizes
    # differ in the last bits).
    assert both.score == pytest.approx(alone.score, abs=1e-6)
    assert both.twin_score == pytest.approx(twin_alone.score, abs=1e-6)
    np.testing.assert_allclose(both.twin_same_channel, twin_alone.same_channel, atol=1e-6)
    assert both.score_over_twin == pytest.approx(both.score - both.twin_score)
    assert both.score == pytest.approx(both.same_channel_mean - both.random_pair_mean)
    # The per-pair random values (kept for intervals, not in the JSON) give the means.
    for values, channels, mean, width in zip(both.random_pair_values,
                                             both.random_pair_channels, both.random_pair,
                                             both.channels):
        assert len(values) == len(channels) == width * (width - 1)
        assert np.mean(values) == pytest.approx(mean, abs=1e-12)
    assert [np.mean(v) for v in both.twin_random_pair_values] == pytest.approx(
        both.twin_random_pair, abs=1e-12)
    assert "random_pair_values" not in both.to_dict()
    # Same-channel values equal the diagonal of the correlation of the two blocks' outputs.
    outs = keras.Model(model.inputs, [model.get_layer(f"stage2_block{b}").output
                                      for b in (1, 2)])([x])
    diag = np.diag(channel_correlation(np.asarray(outs[0]), np.asarray(outs[1])))
    np.testing.assert_allclose(both.same_channel_values[2], diag, atol=1e-6)
    assert _is_png(both.plot(tmp_path / "filters.png"))
    with open(both.to_json(tmp_path / "filters.json")) as f:
        assert json.load(f)["twin_name"] == plain.name
    # Only some channels / stages; random pairs drawn with a seed.
    part = filter_refinement(model, x, stages=2, channels=3, random_pairs=50, seed=4,
                             progress_bar=False)
    assert part.pairs == ["stage2_block1->stage2_block2", "stage2_block2->stage2_block3"]
    assert part.channels == [3, 3] and part.random_pairs == 50
    np.testing.assert_allclose(part.same_channel_values[0], diag[:3], atol=1e-6)
    repeat = filter_refinement(model, x, stages=[2], channels=3, random_pairs=50, seed=4,
                               progress_bar=False)
    assert repeat.random_pair == part.random_pair


def test_filter_refinement_rejects_bad_arguments():
    model = _net(2)
    x = _images(4)
    with pytest.raises(ValueError, match="method"):
        filter_refinement(model, x, method="pixels")
    with pytest.raises(ValueError, match="stages"):
        filter_refinement(model, x, stages=[3], progress_bar=False)
    with pytest.raises(ValueError, match="data"):
        filter_refinement(model, progress_bar=False)
    with pytest.raises(ValueError, match="channels"):
        filter_refinement(model, x, channels=1, progress_bar=False)
    with pytest.raises(ValueError, match="random_pairs"):
        filter_refinement(model, x, random_pairs=0, progress_bar=False)
    with pytest.raises(ValueError, match="seed"):
        filter_refinement(model, x, seed=-1, progress_bar=False)
    with pytest.raises(ValueError, match="twin"):
        filter_refinement(model, x, twin=_net(2, widths=(4, 16)), progress_bar=False)
    with pytest.raises(ValueError, match="twin"):
        filter_refinement(model, x, twin=model, progress_bar=False)
    with pytest.raises(ValueError, match="consecutive"):
        filter_refinement(_net(1), x, progress_bar=False)


def test_filter_refinement_images_are_the_refinement_view_correlations():
    from keras_resnet_lab.vis.refinement import image_correlation, refinement_view

    model = _net(2, widths=(4,))
    options = {"steps": 2, "seed": 0, "progress_bar": False}
    result = filter_refinement(model, method="images", channels=3, image_options=options,
                               refinement_view=refinement_view)
    view = refinement_view(model, 1, [0, 1, 2], **options)
    assert result.method == "images" and result.n_examples is None
    assert result.pairs == ["stage1_block1->stage1_block2"] and result.channels == [3]
    same = [image_correlation(view.images[j, 0], view.images[j, 1]) for j in range(3)]
    other = [image_correlation(view.images[j, 0], view.images[k, 1])
             for j in range(3) for k in range(3) if j != k]
    np.testing.assert_allclose(result.same_channel_values[0], same, atol=1e-9)
    assert result.random_pair[0] == pytest.approx(np.mean(other), abs=1e-9)
    with pytest.raises(ValueError, match="refinement_view"):
        filter_refinement(model, method="images", channels=3)


# -- the scripts -----------------------------------------------------------------------------

def test_estimation_greff_quick(tmp_path):
    results = run_script("estimation_greff", tmp_path)
    found = check_results(results, tmp_path, "estimation_greff", ["greff_estimation"])
    # Bootstrap over test examples: |mean|/spread 0.26 [0.26, 0.27] (<= 0.5) and the spread's
    # largest change -0.16 [-0.16, -0.15] (< 0): far from both thresholds.
    assert found["greff_estimation"]["verdict"] == "held"
    ratio, change = found["greff_estimation"]["criteria"]
    assert ratio["estimate"] < 0.4 and change["estimate"] < -0.05
    resnet = results["numbers"]["resnet"]
    assert len(resnet["blocks"]) == 12 and resnet["test_accuracy"] > 0.8
    std = resnet["normalized_std"]
    for stage in range(3):
        within = std[4 * stage:4 * stage + 4]
        assert within[0] > within[1] > within[2] > within[3] == 0.0
    assert max(abs(m) for m in resnet["normalized_mean"]) < 0.2


def test_filters_chu_quick(tmp_path):
    results = run_script("filters_chu", tmp_path)
    found = check_results(results, tmp_path, "filters_chu", ["chu_filters"])
    # Bootstrap over channels: score +0.79 [+0.75, +0.83], over the twin +0.78 [+0.72, +0.84].
    assert found["chu_filters"]["verdict"] == "held"
    score, over_twin = found["chu_filters"]["criteria"]
    assert score["estimate"] > 0.5 and over_twin["estimate"] > 0.5
    numbers = results["numbers"]
    assert len(numbers["pairs"]) == 6
    assert min(numbers["resnet"]["same_channel"]) > 0.5
    assert numbers["resnet"]["score"] > numbers["plain"]["score"] + 0.5
    assert numbers["test_accuracy"]["resnet"] > 0.8
