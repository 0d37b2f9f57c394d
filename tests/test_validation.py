"""Argument validation of the library (issue 17, points 8-11).

8. boolean options take only real booleans; 9. NaN and infinities are refused with a message
that says so (a model with NaN weights too); 10. wrong types, empty lists, models without
blocks, bad labels, sizes that cannot fit in memory and counts that would run for hours are
refused with a ValueError that names the argument (no raw Python/TensorFlow error); 11. NumPy
integers are accepted wherever an int is. Every test here failed before the fix.
"""

import math
import pathlib
import re

import keras
import numpy as np
import pytest

from keras_resnet_lab import _checks
from keras_resnet_lab.analysis import (
    block_similarity,
    lesion_study,
    path_gradients,
    path_lengths,
    refinement,
)
from keras_resnet_lab.layers import (
    HighwayBlock,
    ResidualBlock,
    SharedResidualStack,
    SqueezeExcite,
)
from keras_resnet_lab.models import (
    build_model,
    cifar_network,
    cifar_resnet,
    drop_blocks,
    find_block,
    insert_blocks,
    multi_residual_net,
    repeat_block,
    residual_mlp,
    resnet,
    wide_resnet,
)

TINY = dict(widths=(4,), input_shape=(8, 8, 3), num_classes=3)
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return cifar_network(2, **TINY)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 8, 8, 3)).astype("float32"), np.array([0, 1, 2, 0, 1, 2])


# -- 8. booleans ----------------------------------------------------------------------------

BOOLEAN_OPTIONS = [
    (lambda v: cifar_network(1, plain=v, **TINY), "plain"),
    (lambda v: cifar_network(1, preact=v, **TINY), "preact"),
    (lambda v: cifar_network(1, include_top=v, **TINY), "include_top"),
    (lambda v: cifar_resnet(8, bottleneck=v, input_shape=(8, 8, 3)), "bottleneck"),
    (lambda v: resnet(18, plain=v, input_shape=(32, 32, 3)), "plain"),
    (lambda v: residual_mlp(1, 4, plain=v), "plain"),
    (lambda v: build_model("resnet20", plain=v, input_shape=(8, 8, 3)), "plain"),
    (lambda v: ResidualBlock(4, preact=v), "preact"),
    (lambda v: ResidualBlock(4, zero_init_residual=v), "zero_init_residual"),
    (lambda v: ResidualBlock(4, use_bias=v), "use_bias"),
    (lambda v: HighwayBlock(4, plain=v), "plain"),
    (lambda v: SharedResidualStack(4, norm_per_step=v), "norm_per_step"),
]


@pytest.mark.parametrize("value", ["no", "False", 0, 1.0, None])
@pytest.mark.parametrize("make, name", BOOLEAN_OPTIONS)
def test_boolean_options_accept_only_booleans(make, name, value):
    said = re.escape(repr(value))
    with pytest.raises(ValueError, match=f"`{name}` must be True or False, got {said}"):
        make(value)


def test_numpy_booleans_are_booleans():
    assert ResidualBlock(4, preact=np.bool_(True)).preact is True
    assert cifar_network(1, plain=np.bool_(False), **TINY).get_layer("stage1_block1").plain is False


@pytest.mark.parametrize("call, name", [
    (lambda m, d: refinement(m, d, lesions="no", progress_bar=False), "lesions"),
    (lambda m, d: lesion_study(m, d, progress_bar="no", draws=1), "progress_bar"),
    (lambda m, d: block_similarity(m, d, include_stem="False", progress_bar=False),
     "include_stem"),
    (lambda m, d: path_gradients(m, d, 2, batched="no", progress_bar=False), "batched"),
])
def test_analysis_boolean_options_accept_only_booleans(tiny, data, call, name):
    with pytest.raises(ValueError, match=f"`{name}` must be True or False"):
        call(tiny, data)


# -- 9. NaN and infinity --------------------------------------------------------------------

@pytest.mark.parametrize("value, said", [(NAN, "NaN"), (INF, "infinite"), (-INF, "infinite")])
def test_drop_path_rate_nan_or_infinite_is_refused(value, said):
    with pytest.raises(ValueError, match=f"`drop_path_rate` must be a finite number, got .*{said}"):
        cifar_network(1, drop_path_rate=value, **TINY)


@pytest.mark.parametrize("name", ["residual_scale", "bn_momentum", "width", "se_ratio",
                                  "learnable_scale_init"])
def test_block_numbers_say_nan(name):
    with pytest.raises(ValueError, match=f"`{name}` must be a finite number, got NaN"):
        ResidualBlock(4, **{name: np.float32("nan")})


def _nan_model():
    model = cifar_network(1, **TINY)
    kernel = model.get_layer("stage1_block1").weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    return model


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_vis_refuses_a_model_with_nan_weights(data, method):
    from keras_resnet_lab.vis import cam, saliency

    model = _nan_model()
    with pytest.raises(ValueError, match="NaN"):
        if method == "saliency":
            saliency(model, data[0][:2])
        else:
            cam(model, data[0][:2])


def test_filter_maximization_refuses_a_model_with_nan_weights():
    from keras_resnet_lab.vis import maximize_filter

    with pytest.raises(ValueError, match="NaN"):
        maximize_filter(_nan_model(), 0, 0, steps=1, progress_bar=False)


# -- 10. raw errors, empty lists, no blocks, labels, memory, run time -------------------------

def test_build_model_with_a_non_string_name():
    with pytest.raises(ValueError, match="`name` must be a string, got None"):
        build_model(None)


def test_empty_widths_are_refused():
    with pytest.raises(ValueError, match="`widths` must not be empty"):
        cifar_network(1, widths=(), input_shape=(8, 8, 3))


@pytest.mark.parametrize("widths", ["16", 16, {16, 32}])
def test_widths_of_a_wrong_type_are_refused(widths):
    with pytest.raises(ValueError, match="`widths` must be a list or tuple"):
        cifar_network(1, widths=widths, input_shape=(8, 8, 3))


@pytest.mark.parametrize("model", [None, "resnet20", 3])
def test_lesion_study_of_something_that_is_not_a_model(data, model):
    with pytest.raises(ValueError, match="`model` must be a functional keras.Model"):
        lesion_study(model, data)


def test_path_gradients_with_no_lengths(tiny, data):
    with pytest.raises(ValueError, match="`lengths` must not be empty"):
        path_gradients(tiny, data, 2, lengths=[], progress_bar=False)


def test_fractional_path_lengths_are_refused(tiny, data):
    with pytest.raises(ValueError, match="`lengths` must be an integer >= 0, got 1.5"):
        path_gradients(tiny, data, 2, lengths=[1.5], progress_bar=False)


def _no_blocks():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="no_blocks")


@pytest.mark.parametrize("analysis", [
    lambda m, d: refinement(m, d, progress_bar=False),
    lambda m, d: path_gradients(m, d, 2, progress_bar=False),
    lambda m, d: block_similarity(m, d, progress_bar=False),
])
def test_a_model_without_blocks_is_refused(data, analysis):
    with pytest.raises(ValueError, match="model 'no_blocks' has no residual/highway blocks"):
        analysis(_no_blocks(), data)


@pytest.mark.parametrize("labels, said", [
    ([0, 1, 2, 3, 0, 1], r"labels must lie in \[0, 3\).*got 3 at index 3"),
    ([0, 1, -1, 0, 1, 2], r"labels must lie in \[0, 3\).*got -1 at index 2"),
    ([0.0, 1.5, 2.0, 0.0, 1.0, 2.0], r"whole numbers.*1.5 at index 1.*not truncated"),
    ([0.0, NAN, 2.0, 0.0, 1.0, 2.0], "labels contain NaN"),
    (["a", "b", "c", "a", "b", "c"], "labels must be integers"),
])
def test_bad_labels_are_refused_before_tensorflow_sees_them(tiny, data, labels, said):
    with pytest.raises(ValueError, match=said):
        lesion_study(tiny, (data[0], np.array(labels)), draws=1, progress_bar=False)


def test_whole_number_float_labels_and_one_hot_rows_are_accepted(tiny, data):
    x, y = data
    as_float = lesion_study(tiny, (x, y.astype("float32")), draws=1, progress_bar=False)
    one_hot = lesion_study(tiny, (x, np.eye(3)[y]), draws=1, progress_bar=False)
    assert as_float.intact_error == one_hot.intact_error


def test_a_network_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(_checks, "MEMORY_LIMIT", 8 * 2 ** 20, raising=False)  # 8 MiB
    # 2 x 3x3x512x512 kernels: 4.7M parameters, 19 MB in float32.
    with pytest.raises(ValueError, match=r"model 'cifar_residual' needs about 1\d\.\d MiB.*"
                                         r"4,7\d\d,\d\d\d parameters.*8\.0 MiB memory limit.*"
                                         r"widths=\(512,\)"):
        cifar_network(1, widths=(512,), input_shape=(8, 8, 3))


def test_an_input_too_large_for_memory_is_refused():
    with pytest.raises(ValueError, match=r"needs about .* TiB .*activation values.*"
                                         r"input_shape=\(100000, 100000, 3\)"):
        cifar_network(1, widths=(4,), input_shape=(100_000, 100_000, 3))


def test_a_block_too_large_for_memory_is_refused_when_built(monkeypatch):
    monkeypatch.setattr(_checks, "MEMORY_LIMIT", 2 ** 20, raising=False)  # 1 MiB
    block = ResidualBlock(256)
    with pytest.raises(ValueError, match=r"ResidualBlock .* needs about .*filters=256"):
        block.build((None, 4, 4, 256))
    assert not block.weights


def test_the_estimate_matches_the_parameter_count():
    block = ResidualBlock(16, bottleneck=True, strides=2, branches=2)
    parameters, _ = block.estimate_size((8, 8, 8))
    block.build((None, 8, 8, 8))
    assert parameters == block.count_params()


def test_repeating_a_block_a_million_times_is_refused(tiny):
    with pytest.raises(ValueError, match=r"`times` must be at most 10,000 .*MAX_COUNT"):
        repeat_block(tiny, 1, times=10 ** 6)


@pytest.mark.parametrize("call", [lambda: cifar_resnet(600_002),
                                  lambda: wide_resnet(60_004, 1),
                                  lambda: multi_residual_net(60_002)])
def test_depths_beyond_ten_thousand_blocks_are_refused(call):
    with pytest.raises(ValueError, match=r"`depth` must be at most [\d,]+ \(10,000 blocks"):
        call()


def test_counts_that_would_run_for_hours_are_refused(tiny, data):
    with pytest.raises(ValueError, match="`n_blocks` must be at most 10,000"):
        path_lengths(10 ** 9)
    with pytest.raises(ValueError, match="`draws` must be at most 10,000"):
        lesion_study(tiny, data, draws=10 ** 7, progress_bar=False)
    with pytest.raises(ValueError, match="`steps` must be at most 10,000"):
        SharedResidualStack(4, steps=10 ** 6)


# -- 11. NumPy integers ---------------------------------------------------------------------

@pytest.mark.parametrize("integer", [np.int64, np.int32, np.uint8])
def test_numpy_integers_build_cifar_networks(integer):
    assert cifar_resnet(integer(8), input_shape=(8, 8, 3)).name == "resnet8"
    assert wide_resnet(integer(10), integer(1), input_shape=(8, 8, 3)).name == "wrn10_1"
    assert multi_residual_net(integer(8), integer(2), input_shape=(8, 8, 3)).name == \
        "multi_resnet8_k2"
    assert len(cifar_network(integer(2), **TINY).layers) == len(cifar_network(2, **TINY).layers)


def test_numpy_integers_in_surgery(tiny):
    assert find_block(tiny, np.int64(-1)).name == "stage1_block2"
    assert drop_blocks(tiny, np.int64(0)).get_layer("stage1_block1_deleted")
    assert repeat_block(tiny, np.int64(1), np.int64(3)).name.endswith("repeat3")
    grown = insert_blocks(tiny, np.int64(0), count=np.int64(2))
    assert grown.get_layer("stage1_block1_2")


def test_numpy_integers_in_block_methods():
    block = ResidualBlock(4, branches=2)
    x = np.ones((1, 4, 4, 4), "float32")
    np.testing.assert_array_equal(block.branch(x, np.int64(1)), block.branch(x, 1))
    stack = SharedResidualStack(4, steps=2)
    stack.build((None, 4, 4, 4))
    assert stack.step_norms(np.int64(1)) == stack.step_norms(1)


def test_numpy_integers_in_visualization(tiny, data):
    from keras_resnet_lab.vis import saliency

    result = saliency(tiny, data[0][:2], smooth_samples=np.int64(0))
    assert result.maps.shape == (2, 8, 8)


def test_squeeze_excite_names_its_own_argument():
    with pytest.raises(ValueError, match="`ratio` must lie in"):
        SqueezeExcite(0.0)


def test_integer_types_are_checked_in_one_place():
    """No module of the library tests ``isinstance(value, int)`` itself (that refuses NumPy
    integers): every integer goes through ``keras_resnet_lab._checks``."""
    root = pathlib.Path(__file__).resolve().parents[1] / "keras_resnet_lab"
    pattern = re.compile(r"isinstance\([^()]*,\s*int\)")
    found = [f"{path.relative_to(root)}:{i}" for sub in ("layers", "models", "analysis", "vis")
             for path in sorted((root / sub).rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert found == []


def test_checks_module_reports_figures():
    with pytest.raises(ValueError, match=r"needs about 3\.6 TiB in float32 \(1,000,000,000,000 "):
        _checks.memory("model 'huge'", 10 ** 12, 0)
    assert _checks.integer("n", np.uint16(7), 1, 10) == 7
    with pytest.raises(ValueError, match="`n` must be at most 10, got 11"):
        _checks.integer("n", 11, 1, 10)
    assert math.isclose(_checks.finite("x", np.float32(0.5)), 0.5)
    assert _checks.one_of("depth", np.int64(50), (18, 50)) == 50
    with pytest.raises(ValueError, match="`depth` must be one of 18, 50; got True"):
        _checks.one_of("depth", True, (18, 50))
