"""Property-based tests over the public layers and builders (hypothesis).

Random valid configurations build, run with the documented output shape and round-trip
through ``.keras`` files with identical outputs; random invalid configurations raise a
``ValueError`` that names the argument, never a TensorFlow error and never silently.
Run with ``--hypothesis-show-statistics`` to see how many cases each property ran.
"""

import contextlib
import inspect
import math
import re
from unittest import mock

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keras_resnet_lab import (
    HighwayBlock,
    MultiResidualBlock,
    ResidualBlock,
    analysis,
    layers,
    models,
)
from keras_resnet_lab.models import builder, cifar_resnet, resnet, wide_resnet

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


# -- fuzz: every public builder, block and analysis with wrong and edge values -------------
#
# Each case calls one entry point with one argument replaced by a value of one category
# (wrong type, NumPy scalar, boolean, NaN/inf, empty, huge; bad data for ``data``). The
# outcome must be a result or a ValueError/TypeError whose message names the argument.
# Builders run every check and the memory estimate but stop before allocating (a valid call
# counts as accepted; the real builds are tested above and in test_models.py); blocks are
# built on a small input; surgery and analyses run for real on tiny models built once.
# ``--hypothesis-show-statistics`` prints the cases per category and outcome.

NAN, INF = float("nan"), float("inf")
BAD_VALUES = {
    "wrong type": ["8", "x", None, [3], {"a": 1}, 1j, b"8"],
    "numpy scalar": [np.int64(2), np.int32(1), np.uint8(3), np.float32(0.5), np.float64(2.0),
                     np.int64(-1)],
    "boolean": [True, False, np.bool_(True), "True", "no"],
    "nan/inf": [NAN, INF, -INF, np.float32("nan"), np.float64("inf")],
    "empty": [(), [], "", np.array([]), {}],
    "huge": [10 ** 9, 2 ** 31, 2 ** 63, 10 ** 100, 1e308, -10 ** 9, np.int64(2 ** 62)],
}
_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(4, 8, 8, 3)).astype("float32")
_Y = np.array([0, 1, 2, 0])
BAD_DATA = [
    (_X, _Y + 3), (_X, -_Y - 1), (_X, _Y + 0.5), (_X, np.where(_Y == 1, NAN, _Y)),
    (_X, _Y.astype(str)), (np.where(_X > 1, NAN, _X), _Y), (_X * INF, _Y), (_X[:0], _Y[:0]),
    (_X, _Y[:-1]), (_X[..., :2], _Y), (_X[0], _Y[:1]), (_X.astype(str), _Y), (_X,),
    (_X, _Y, _Y), (_X, np.eye(3)[_Y]), (_X, _Y.astype("float32")),
]

TINY = dict(widths=(4,), input_shape=(8, 8, 3), num_classes=3)

BUILDERS = {
    "cifar_network": (models.cifar_network, dict(blocks_per_stage=1, **TINY), [
        "blocks_per_stage", "block", "widths", "preact", "plain", "num_classes", "input_shape",
        "include_top", "pooling", "classifier_activation", "input_tensor", "drop_path_rate",
        "stem_width", "name", "residual_scale", "shortcut"]),
    "cifar_resnet": (models.cifar_resnet, dict(depth=8, input_shape=(8, 8, 3)), [
        "depth", "bottleneck", "preact", "plain", "shortcut", "name", "num_classes"]),
    "resnet": (models.resnet, dict(depth=18, input_shape=(32, 32, 3), num_classes=3), [
        "depth", "preact", "plain", "include_top", "num_classes", "input_shape", "pooling",
        "drop_path_rate", "shortcut", "stem_width", "stem", "output_stride", "name", "width",
        "groups", "se_ratio"]),
    "wide_resnet": (models.wide_resnet, dict(depth=10, k=1, input_shape=(8, 8, 3)), [
        "depth", "k", "plain", "name"]),
    "resnext": (models.resnext, dict(depth=50, cardinality=2, base_width=4,
                                     input_shape=(32, 32, 3)), [
        "depth", "cardinality", "base_width"]),
    "highway_net": (models.highway_net, dict(blocks_per_stage=1, **TINY), [
        "blocks_per_stage", "gate_bias", "plain"]),
    "multi_residual_net": (models.multi_residual_net,
                           dict(depth=8, branches=2, input_shape=(8, 8, 3)), [
        "depth", "branches", "plain"]),
    "residual_mlp": (models.residual_mlp, dict(n_blocks=1, units=4, input_shape=(4,)), [
        "n_blocks", "units", "input_shape", "block", "plain", "num_classes", "include_top",
        "drop_path_rate", "name"]),
    "highway_mlp": (models.highway_mlp, dict(depth=1, units=4, input_shape=(4,)), [
        "depth", "units", "gate_bias", "plain", "normalization", "use_bias"]),
    "plain_mlp": (models.plain_mlp, dict(blocks=1, width=4, input_shape=(4,)), [
        "blocks", "width", "init", "num_classes", "seed"]),
    "build_model": (models.build_model, dict(name="resnet20", input_shape=(8, 8, 3)), [
        "name", "plain", "num_classes"]),
}

BLOCKS = {
    "ResidualBlock": (layers.ResidualBlock, dict(filters=4), [
        "filters", "kernel_size", "strides", "bottleneck", "preact", "width", "groups",
        "se_ratio", "zero_init_residual", "branches", "stride_in_1x1", "dilation_rate", "form",
        "shortcut", "plain", "residual_scale", "drop_path_rate", "normalization", "bn_momentum",
        "bn_epsilon", "use_bias", "activation", "kernel_initializer", "kernel_regularizer",
        "seed", "learnable_scale", "learnable_scale_init", "avg_down"]),
    "HighwayBlock": (layers.HighwayBlock, dict(filters=4), [
        "filters", "kernel_size", "gate_bias", "strides", "plain", "form"]),
    "MultiResidualBlock": (layers.MultiResidualBlock, dict(filters=4), ["filters", "branches"]),
    "SharedResidualStack": (layers.SharedResidualStack, dict(filters=4), [
        "filters", "steps", "norm_per_step", "gamma_init", "kernel_size", "strides", "plain",
        "shortcut", "avg_down"]),
    "SqueezeExcite": (layers.SqueezeExcite, {}, ["ratio", "kernel_initializer"]),
    "LooksLinear": (layers.LooksLinear, {}, ["gain", "seed"]),
}


@pytest.fixture(scope="module", autouse=True)
def _small_memory_limit():
    """Huge arguments must never allocate on the shared test machine: 1 GiB here."""
    from keras_resnet_lab import _checks

    with mock.patch.object(_checks, "MEMORY_LIMIT", 2 ** 30):
        yield


@pytest.fixture(scope="module")
def fuzz_models():
    keras.utils.set_random_seed(0)
    return {"chain": models.cifar_network(2, **TINY),
            "surgery": models.cifar_network(2, **TINY),
            "highway": models.highway_net(2, **TINY)}


def _surgery(m):
    chain = m["surgery"]
    return {
        "drop_blocks": (models.drop_blocks, dict(model=chain, names=[0]), ["model", "names",
                                                                           "name"]),
        "reorder_blocks": (models.reorder_blocks, dict(model=chain, order=[1, 0]), [
            "model", "order"]),
        "repeat_block": (models.repeat_block, dict(model=chain, block=1, times=2), [
            "model", "block", "times"]),
        "insert_blocks": (models.insert_blocks, dict(model=chain, after=[0]), [
            "model", "after", "count", "kind", "name"]),
        "chain_plan": (models.chain_plan, dict(model=chain), ["drop", "order", "repeat"]),
        "replace_head": (models.replace_head, dict(model=chain, num_classes=2), [
            "num_classes", "name"]),
        "find_block": (models.find_block, dict(model=chain, block=0), ["model", "block"]),
    }


def _analyses(m):
    chain, data = m["chain"], (_X, _Y)
    quiet = dict(model=chain, data=data, progress_bar=False)
    return {
        "lesion_study": (analysis.lesion_study, dict(model=chain, data=data, draws=1,
                                                     k_values=[1], swap_counts=(),
                                                     progress_bar=False), [
            "model", "data", "plain_model", "k_values", "draws", "swap_counts", "seed",
            "batch_size", "method", "max_examples", "progress_bar"]),
        "path_gradients": (analysis.path_gradients, dict(quiet, samples_per_length=2,
                                                         lengths=[0, 1]), [
            "model", "data", "samples_per_length", "lengths", "quantity", "batched",
            "batch_size", "effective_mass", "seed", "progress_bar"]),
        "path_lengths": (analysis.path_lengths, dict(n_blocks=3), ["n_blocks", "branches"]),
        "refinement": (analysis.refinement, dict(quiet, lesions=False), [
            "model", "data", "batch_size", "repeat_times", "lesions", "max_examples",
            "progress_bar"]),
        "block_similarity": (analysis.block_similarity, dict(quiet), [
            "model", "data", "max_examples", "include_stem", "batch_size", "progress_bar"]),
        "estimation_errors": (analysis.estimation_errors, dict(quiet), [
            "model", "data", "batch_size", "max_examples", "progress_bar"]),
        "gate_statistics": (analysis.gate_statistics, dict(quiet, model=m["highway"],
                                                           lesions=False), [
            "model", "data", "gate_threshold", "idle_error_increase", "lesions", "batch_size",
            "max_examples", "progress_bar"]),
        "filter_refinement": (analysis.filter_refinement, dict(quiet), [
            "model", "data", "twin", "method", "stages", "channels", "random_pairs", "seed",
            "batch_size", "max_examples", "progress_bar"]),
        "norm_growth": (analysis.norm_growth, dict(model=chain, x=_X), [
            "model", "x", "expand_stacks", "training", "batch_size", "max_examples",
            "progress_bar"]),
        "shattering": (analysis.shattering, dict(kinds=("plain",), depths=(1,), seeds=1,
                                                 width=4, n_points=8, max_lag=2,
                                                 progress_bar=False), [
            "model_or_builder", "kinds", "depths", "seeds", "width", "n_points", "input_range",
            "max_lag", "progress_bar"]),
        "zero_init_hessian": (analysis.zero_init_hessian, dict(shortcuts=(1,), max_depth=2,
                                                               dim=2, n_examples=4,
                                                               progress_bar=False), [
            "shortcuts", "max_depth", "dim", "n_examples", "seed", "noise", "data", "rtol",
            "atol", "progress_bar"]),
    }


class _Accepted(Exception):
    """Every check of a builder passed: the network would now be allocated."""


def _accept_within_memory(what, parameters, activations, arguments=None):
    from keras_resnet_lab import _checks

    _checks.memory(what, parameters, activations, arguments)  # over the limit: its ValueError
    raise _Accepted


@contextlib.contextmanager
def _stop_before_allocating():
    with mock.patch.object(builder, "memory", _accept_within_memory):
        yield


def _cases(table):
    """(entry, argument, category, value) for every argument of every entry of ``table``."""
    def values(argument):
        pairs = [(c, v) for c, vs in BAD_VALUES.items() for v in vs]
        if argument in ("data", "x"):
            pairs += [("bad data", d) for d in BAD_DATA]
        return st.sampled_from(pairs)

    return st.sampled_from([(entry, arg) for entry, (_, _, args) in table.items()
                            for arg in args]).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), values(pair[1])))


def _default(function, argument):
    """The documented default of ``argument`` (``inspect.Parameter.empty`` when none)."""
    parameter = inspect.signature(function).parameters.get(argument)
    return inspect.Parameter.empty if parameter is None else parameter.default


def _must_refuse(function, argument, value):
    """Why ``value`` must be refused whatever else holds, or None: NaN and infinities are
    never valid; an option whose default is a bool takes only booleans, one whose default is
    an int only integers (NumPy's included, bools not; or a list, one per stage)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "a NaN or infinite value"
    default = _default(function, argument)
    is_bool = isinstance(value, (bool, np.bool_))
    if isinstance(default, bool) and not is_bool:
        return "a non-boolean for a boolean option"
    if (isinstance(default, int) and not isinstance(default, bool)
            and (is_bool or not isinstance(value, (int, np.integer, list, tuple)))):
        return "a non-integer for an integer argument"
    return None


def _check_outcome(table, case, after=None, context=contextlib.nullcontext):
    """Run one case; return "result" or "refused", asserting the fuzz properties."""
    entry, argument, (category, value) = case
    function, base, _ = table[entry]
    kwargs = dict(base, **{argument: value})
    try:
        with context():
            result = function(**kwargs)
            if after is not None:
                after(result, kwargs)
        outcome = "result"
    except _Accepted:
        outcome = "result"
    except (ValueError, TypeError) as error:
        assert re.search(rf"\b{re.escape(argument)}\b", str(error)), (
            f"{entry}({argument}={value!r}) raised {type(error).__name__} not naming "
            f"`{argument}`: {error}")
        outcome = "refused"
    reason = _must_refuse(function, argument, value)
    assert outcome == "refused" or reason is None, (
        f"{entry}({argument}={value!r}) accepted {reason}")
    event(f"{category}: {outcome}")
    return outcome


FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(max_examples=900, **FUZZ)
@given(case=_cases(BUILDERS))
def test_fuzz_builders_give_a_model_or_name_the_argument(case):
    _check_outcome(BUILDERS, case, context=_stop_before_allocating)


def _build_block(layer, kwargs):
    if isinstance(layer, keras.initializers.Initializer):
        assert tuple(layer((4, 2)).shape) == (4, 2)
        return
    shape = (None, 4) if kwargs.get("form") == "dense" else (None, 4, 4, 4)
    layer.build(shape)
    assert layer.compute_output_shape(shape)[-1] == getattr(layer, "filters", 4)


@settings(max_examples=700, **FUZZ)
@given(case=_cases(BLOCKS))
def test_fuzz_blocks_build_or_name_the_argument(case):
    _check_outcome(BLOCKS, case, after=_build_block)


@settings(max_examples=200, **FUZZ)
@given(data=st.data())
def test_fuzz_surgery_gives_a_model_or_names_the_argument(fuzz_models, data):
    table = _surgery(fuzz_models)
    _check_outcome(table, data.draw(_cases(table)))


@settings(max_examples=600, **FUZZ)
@given(data=st.data())
def test_fuzz_analyses_give_a_result_or_name_the_argument(fuzz_models, data):
    table = _analyses(fuzz_models)
    _check_outcome(table, data.draw(_cases(table)))


NUMPY_INTEGERS = [np.int64, np.int32, np.int16, np.uint8, np.uint32]


def _as_numpy(value, kind):
    if isinstance(value, int) and not isinstance(value, bool):
        return kind(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_as_numpy(v, kind) for v in value)
    return value


def _holds_integers(value):
    if isinstance(value, (tuple, list)):
        return bool(value) and all(_holds_integers(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _integer_arguments(table):
    """(entry, argument) of every base argument holding integers."""
    return [(entry, arg) for entry, (_, base, _) in table.items()
            for arg, value in base.items() if _holds_integers(value)]


@settings(max_examples=200, **FUZZ)
@given(data=st.data())
def test_fuzz_numpy_integers_are_accepted_wherever_ints_are(fuzz_models, data):
    """Point 11 of issue 17: every integer argument (and integer list) of every builder,
    block, surgery and analysis takes NumPy integers, and gives what the ints give."""
    tables = {"builders": (BUILDERS, None, _stop_before_allocating),
              "blocks": (BLOCKS, _build_block, contextlib.nullcontext),
              "surgery": (_surgery(fuzz_models), None, contextlib.nullcontext),
              "analyses": (_analyses(fuzz_models), None, contextlib.nullcontext)}
    name = data.draw(st.sampled_from(sorted(tables)))
    table, after, context = tables[name]
    entry, argument = data.draw(st.sampled_from(_integer_arguments(table)))
    kind = data.draw(st.sampled_from(NUMPY_INTEGERS))
    value = _as_numpy(table[entry][1][argument], kind)
    outcome = _check_outcome(table, (entry, argument, ("numpy integer", value)), after,
                             context)
    assert outcome == "result", f"{entry}({argument}={value!r}) was refused"
