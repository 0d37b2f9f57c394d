"""Property-based tests over the public layers and builders (hypothesis).

Random valid configurations build, run with the documented output shape and round-trip
through ``.keras`` files with identical outputs; random invalid configurations raise a
``ValueError`` that names the argument, never a TensorFlow error and never silently.
Run with ``--hypothesis-show-statistics`` to see how many cases each property ran.
"""

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_resnet_lab import HighwayBlock, MultiResidualBlock, ResidualBlock
from keras_resnet_lab.models import cifar_resnet, resnet, wide_resnet

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def residual_configs(draw):
    form = draw(st.sampled_from(["conv", "dense"]))
    bottleneck = draw(st.booleans())
    filters = draw(st.integers(4, 16)) if bottleneck else draw(st.integers(1, 12))
    in_channels = draw(st.integers(1, 12))
    shortcut = draw(st.sampled_from(["A", "B", "C"]))
    if shortcut == "A":
        in_channels = min(in_channels, filters)
    width = draw(st.sampled_from([0.5, 1.0, 2.0]))
    inner = max(1, round((filters // 4 if bottleneck else filters) * width))
    groups = 1 if form == "dense" else draw(st.sampled_from(
        [g for g in (1, 2, 4) if inner % g == 0]))
    plain = draw(st.booleans())
    config = dict(
        filters=filters, form=form, bottleneck=bottleneck, shortcut=shortcut, width=width,
        groups=groups, plain=plain,
        strides=1 if form == "dense" else draw(st.integers(1, 3)),
        preact=draw(st.booleans()),
        se_ratio=draw(st.sampled_from([0.0, 0.25, 1.0])),
        residual_scale=draw(st.floats(0.05, 1.0)),
        drop_path_rate=0.0 if plain else draw(st.sampled_from([0.0, 0.3])),
        zero_init_residual=draw(st.booleans()),
        normalization=draw(st.sampled_from(["batch", "none"])),
        branches=draw(st.integers(1, 3)),
    )
    return config, in_channels


def _round_trip(layer, input_shape, tmp_path):
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(0).normal(size=(2,) + input_shape).astype("float32")
    expected = model.predict(x, verbose=0)
    assert np.all(np.isfinite(expected))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    path.unlink()
    return expected


@SETTINGS
@given(case=residual_configs(), side=st.integers(3, 9))
def test_valid_residual_blocks_build_and_round_trip(tmp_path_factory, case, side):
    config, in_channels = case
    layer = ResidualBlock(**config)
    shape = (side, side, in_channels) if config["form"] == "conv" else (in_channels,)
    out = _round_trip(layer, shape, tmp_path_factory.mktemp("p"))
    stride = config["strides"]
    documented = ((2, math.ceil(side / stride), math.ceil(side / stride), config["filters"])
                  if config["form"] == "conv" else (2, config["filters"]))
    assert out.shape == documented == tuple(layer.compute_output_shape((2,) + shape))


@SETTINGS
@given(filters=st.integers(1, 12), in_channels=st.integers(1, 12), strides=st.integers(1, 2),
       gate_bias=st.floats(-4.0, 0.0), form=st.sampled_from(["conv", "dense"]),
       plain=st.booleans())
def test_valid_highway_blocks(tmp_path_factory, filters, in_channels, strides, gate_bias, form,
                              plain):
    strides = 1 if form == "dense" else strides
    layer = HighwayBlock(filters, strides=strides, gate_bias=gate_bias, form=form, plain=plain)
    shape = (6, 6, in_channels) if form == "conv" else (in_channels,)
    out = _round_trip(layer, shape, tmp_path_factory.mktemp("h"))
    assert out.shape[-1] == filters


INVALID = {
    "filters": st.sampled_from([0, -1, -16, 2.5, "8", None, True]),
    "strides": st.sampled_from([0, -2, 1.5, "2"]),
    "shortcut": st.sampled_from(["D", "a", "", None, 1]),
    "residual_scale": st.one_of(st.floats(max_value=0.0, allow_nan=False),
                                st.floats(min_value=1.0001, allow_nan=False,
                                          allow_infinity=False),
                                st.just(float("nan"))),
    "drop_path_rate": st.one_of(st.floats(max_value=-1e-6, allow_nan=False),
                                st.floats(min_value=1.0, allow_nan=False)),
    "se_ratio": st.one_of(st.floats(max_value=-1e-6, allow_nan=False),
                          st.floats(min_value=1.0001, allow_nan=False)),
    "groups": st.sampled_from([3, 5, 7, 0, -1]),
    "form": st.sampled_from(["conv2d", "mlp", ""]),
    "normalization": st.sampled_from(["layer", "group", None]),
    "width": st.sampled_from([0, -1.0, "wide"]),
    "branches": st.sampled_from([0, -1, 1.5]),
    "kernel_size": st.sampled_from([0, -3]),
    "dilation_rate": st.sampled_from([0, -1]),
}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(INVALID)).flatmap(
    lambda name: st.tuples(st.just(name), INVALID[name])))
def test_invalid_block_arguments_raise_value_error_naming_them(case):
    name, value = case
    kwargs = {"filters": 8, name: value}
    with pytest.raises(ValueError, match=f"`{name}`"):
        ResidualBlock(**kwargs)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(-5, 130).filter(lambda d: d < 8 or (d - 2) % 6))
def test_cifar_depths_that_are_not_6n_plus_2_are_refused(depth):
    with pytest.raises(ValueError, match="`depth`"):
        cifar_resnet(depth)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.sampled_from([8, 14, 20]), st.booleans(), st.booleans(), st.integers(1, 5))
def test_valid_cifar_builders_give_documented_shapes(depth, preact, plain, classes):
    model = cifar_resnet(depth, preact=preact, plain=plain, num_classes=classes,
                         input_shape=(8, 8, 3))
    out = model.predict(np.zeros((2, 8, 8, 3), "float32"), verbose=0)
    assert out.shape == (2, classes)
    assert len([layer for layer in model.layers if "_block" in layer.name]) == 3 * (depth - 2) // 6


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(-4, 200).filter(lambda d: d not in (18, 34, 50, 101, 152)))
def test_imagenet_depths_outside_the_table_are_refused(depth):
    with pytest.raises(ValueError, match="`depth`"):
        resnet(depth)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(-4, 60).filter(lambda d: d < 10 or (d - 4) % 6), st.integers(1, 4))
def test_wide_resnet_depths_are_checked(depth, k):
    with pytest.raises(ValueError, match="`depth`"):
        wide_resnet(depth, k)


def test_multi_residual_blocks_need_at_least_one_branch():
    with pytest.raises(ValueError, match="`branches`"):
        MultiResidualBlock(8, branches=0)
