"""Weight-shared residual stacks, activation-norm growth, training stability, and the scaling
(Szegedy et al.) and sharing (Liao & Poggio; Jastrzebski et al.) reproductions."""

import json
import math

import keras
import numpy as np
import pytest
from _scripts import check_results, run_script

from keras_resnet_lab.analysis._training import training_digits
from keras_resnet_lab.analysis.comparisons import SeededComparison
from keras_resnet_lab.analysis.norms import (
    LossRecorder,
    hidden_states,
    norm_growth,
    training_stability,
)
from keras_resnet_lab.analysis.scaling import (
    ScalingComparison,
    compare_residual_scales,
    scaled_stack,
)
from keras_resnet_lab.analysis.sharing import (
    VARIANTS,
    SharingComparison,
    compare_weight_sharing,
    sharing_network,
)
from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.layers.shared import SharedResidualStack
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.mlp import residual_mlp
from keras_resnet_lab.models.surgery import chain_plan, run_plan


def _x(shape, seed=0, low=-1.0):
    return np.random.default_rng(seed).uniform(low, 1.0, shape).astype("float32")


def _stack_net(steps=3, channels=4, **kwargs):
    return build_network(conv_stem(channels, 3, 1, norm=False), [Stage(channels, 1)],
                         SharedResidualStack, dict(steps=steps, **kwargs),
                         input_shape=(6, 6, 3), name="stack_net", post_norm=True,
                         num_classes=5)


def _identity_kernels(layer):
    for w in layer.trainable_weights:
        w.assign(np.eye(w.shape[0], dtype="float32"))


# -- the weight-shared stack ------------------------------------------------------------------
def test_parameters_are_one_block_plus_a_batch_norm_pair_per_step():
    c, k, n = 8, 3, 5
    unshared = SharedResidualStack(c, steps=n, kernel_size=k)
    unshared.build((None, 6, 6, c))
    conv = 2 * k * k * c * c  # conv1 and conv2, shared by every step
    assert sum(int(np.prod(w.shape)) for w in unshared.trainable_weights) == conv + n * 2 * 2 * c
    assert sum(int(np.prod(w.shape)) for w in unshared.non_trainable_weights) == n * 2 * 2 * c
    assert len(unshared.norms) == 2 * n
    for norm in unshared.norms:
        np.testing.assert_array_equal(norm.gamma.numpy(), np.full(c, 0.1, "float32"))
        np.testing.assert_array_equal(norm.beta.numpy(), np.zeros(c, "float32"))
    assert unshared.step_norms(0)[0] is not unshared.step_norms(1)[0]
    # the two shared convolutions start from different draws of the same distribution
    k1, k2 = unshared.conv1.kernel.numpy(), unshared.conv2.kernel.numpy()
    assert not np.allclose(k1, k2)
    assert 0.5 < k1.std() / k2.std() < 2.0

    naive = SharedResidualStack(c, steps=n, kernel_size=k, norm_per_step=False, gamma_init=1.0)
    naive.build((None, 6, 6, c))
    assert len(naive.norms) == 2  # one batch-norm pair, used by every step
    assert all(naive.step_norms(i) == naive.step_norms(0) for i in range(n))
    np.testing.assert_array_equal(naive.norms[0].gamma.numpy(), np.ones(c, "float32"))
    # exactly the weights of one pre-activation residual block
    block = ResidualBlock(c, kernel_size=k, preact=True)
    block.build((None, 6, 6, c))
    assert sorted(tuple(w.shape) for w in naive.weights) == sorted(
        tuple(w.shape) for w in block.weights)
    assert naive.count_params() == block.count_params() == conv + 4 * 2 * c


def test_one_step_naive_stack_equals_a_preact_residual_block():
    x = _x((2, 5, 5, 4))
    block = ResidualBlock(4, preact=True)
    block.build(x.shape)
    stack = SharedResidualStack(4, steps=1, norm_per_step=False, gamma_init=1.0)
    stack.build(x.shape)
    weights = {w.path.split("/", 1)[1]: w.numpy() for w in block.weights}
    for w in stack.weights:
        w.assign(weights[w.path.split("/", 1)[1]])
    np.testing.assert_allclose(stack(x), block(x), rtol=1e-6, atol=1e-6)


def test_steps_compose_and_parts_merge_to_the_call():
    stack = SharedResidualStack(4, steps=3, residual_scale=0.3, name="stage1_block1")
    x = _x((2, 6, 6, 4))
    states = stack.step_outputs(x)
    assert len(states) == 4
    np.testing.assert_array_equal(states[0], x)
    y = np.asarray(stack(x))
    np.testing.assert_allclose(states[-1], y, atol=1e-6)
    for i in range(3):
        np.testing.assert_allclose(states[i] + stack.step_residual(states[i], i),
                                   states[i + 1], atol=1e-6)
    np.testing.assert_array_equal(stack.shortcut(x), x)
    np.testing.assert_allclose(stack.merge(stack.shortcut(x), stack.residual(x)), y, atol=1e-6)
    assert stack.compute_output_shape((None, 6, 6, 4)) == (None, 6, 6, 4)


def test_stack_is_one_chain_block_of_a_functional_model():
    model = _stack_net(steps=3)
    assert [b.name for b in blocks(model)] == ["stage1_block1"]
    x = _x((3, 6, 6, 3))
    dropped = run_plan(chain_plan(model, drop=["stage1_block1"]), x)
    stem = keras.Model(model.inputs[0], model.get_layer("stem_conv").output)
    head = [model.get_layer(n) for n in ("post_bn", "post_relu", "avg_pool", "predictions")]
    h = stem(x)
    for layer in head:
        h = layer(h)
    np.testing.assert_allclose(dropped, h, atol=1e-5)  # the deleted stack is the identity


def test_save_load_and_clone_give_identical_outputs(tmp_path):
    inputs = keras.Input((6, 6, 4))
    stack = SharedResidualStack(4, steps=3, gamma_init=0.25, kernel_size=1,
                                residual_scale=0.5, bn_momentum=0.8, name="stage1_block1")
    model = keras.Model(inputs, stack(inputs))
    rng = np.random.default_rng(1)
    for w in model.weights:  # every weight non-trivial, so a lost or mixed-up one would show
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    x = _x((2, 6, 6, 4))
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.layers[1].get_config() == stack.get_config()
    config = stack.get_config()
    assert (config["steps"], config["norm_per_step"], config["gamma_init"],
            config["kernel_size"]) == (3, True, 0.25, 1)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)


def test_keras_layer_test_harness():
    from keras.src import testing

    class Harness(testing.TestCase):
        def runTest(self):
            self.run_layer_test(SharedResidualStack, init_kwargs=dict(filters=4, steps=2),
                                input_shape=(2, 5, 5, 4), expected_output_shape=(2, 5, 5, 4),
                                expected_num_trainable_weights=2 + 2 * 2 * 2,
                                expected_num_non_trainable_weights=2 * 2 * 2,
                                supports_masking=False, run_training_check=True)

    result = Harness().run()
    assert result.wasSuccessful(), result.errors + result.failures


@pytest.mark.parametrize("kwargs, argument", [
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(gamma_init=0.0), "gamma_init"),
    (dict(strides=2), "strides"),
    (dict(plain=True), "plain"),
    (dict(shortcut="C"), "shortcut"),
    (dict(avg_down=True), "avg_down"),
    (dict(kernel_size=0), "kernel_size"),
    (dict(residual_scale=1.5), "residual_scale"),
])
def test_invalid_stack_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        SharedResidualStack(4, **kwargs)


def test_stack_input_and_step_errors():
    with pytest.raises(ValueError, match="`filters`=8 channels, got 4"):
        SharedResidualStack(8)(_x((1, 4, 4, 4)))
    stack = SharedResidualStack(4, steps=2)
    with pytest.raises(ValueError, match=r"`step` must be an int in \[0, 2\)"):
        stack.step_residual(_x((1, 4, 4, 4)), 2)


# -- norm growth ------------------------------------------------------------------------------
def test_norm_growth_of_a_hand_checkable_stack(tmp_path):
    # dense form, no normalization, identity kernels, positive inputs: each step is
    # h + s * relu(relu(h)) = (1 + s) h, so ||h_i|| / ||h_0|| = 1.5 ** i exactly.
    stack = SharedResidualStack(4, steps=3, form="dense", normalization="none",
                                residual_scale=0.5)
    stack.build((None, 4))
    _identity_kernels(stack)
    x = _x((5, 4), low=0.1)
    result = norm_growth(stack, x)
    assert result.names == ["input", "step1", "step2", "step3"]
    np.testing.assert_allclose(result.ratio, [1.0, 1.5, 2.25, 3.375], rtol=1e-6)
    np.testing.assert_allclose(result.ratio_std, 0.0, atol=1e-6)
    np.testing.assert_allclose(result.mean_norm[0], np.linalg.norm(x, axis=1).mean(), rtol=1e-6)
    assert result.final_ratio == pytest.approx(3.375)
    result.to_json(tmp_path / "growth.json")
    assert json.loads((tmp_path / "growth.json").read_text())["names"] == result.names
    result.plot(tmp_path / "growth.png")
    assert (tmp_path / "growth.png").read_bytes()[:4] == b"\x89PNG"


def test_norm_growth_through_a_chain_model_and_an_expanded_stack():
    model = residual_mlp(3, 4, input_shape=(4,), preact=True, normalization="none",
                         residual_scale=0.25)
    for info in blocks(model):
        _identity_kernels(info.layer)
    stem = model.get_layer("stem_dense")
    stem.set_weights([np.eye(4, dtype="float32"), np.zeros(4, "float32")])
    x = _x((6, 4), seed=2, low=0.1)  # so h_0 = relu(stem(x)) = x
    result = norm_growth(model, x, batch_size=4)  # two batches, merged
    assert result.names == ["stage1_block1.input", "stage1_block1", "stage1_block2",
                            "stage1_block3"]
    assert result.n_examples == 6
    labelled = norm_growth(model, (x, np.zeros(6, "int64")), batch_size=4)  # labels ignored
    np.testing.assert_array_equal(labelled.ratio, result.ratio)
    np.testing.assert_allclose(result.mean_norm[0], np.linalg.norm(x, axis=1).mean(), rtol=1e-6)
    # h_0 >= 0, so every block maps h to h + 0.25 * relu(relu(h)) = 1.25 h
    np.testing.assert_allclose(result.ratio, 1.25 ** np.arange(4), rtol=1e-6)

    net = _stack_net(steps=3)
    names, states = hidden_states(net, _x((4, 6, 6, 3)))
    assert names == ["stage1_block1.input"] + [f"stage1_block1.step{k}" for k in (1, 2, 3)]
    stem_out = keras.Model(net.inputs[0], net.get_layer("stem_conv").output)(_x((4, 6, 6, 3)))
    np.testing.assert_allclose(states[0], stem_out, atol=1e-6)
    collapsed = norm_growth(net, _x((4, 6, 6, 3)), expand_stacks=False)
    assert collapsed.names == ["stage1_block1.input", "stage1_block1"]
    expanded = norm_growth(net, _x((4, 6, 6, 3)))
    assert collapsed.ratio[-1] == pytest.approx(expanded.ratio[-1], rel=1e-6)


def test_training_mode_norms_use_batch_statistics_and_leave_the_model_unchanged():
    net = _stack_net(steps=4)
    for w in net.non_trainable_weights:
        w.assign(np.random.default_rng(3).uniform(0.5, 2.0, w.shape).astype("float32"))
    before = [w.numpy().copy() for w in net.weights]
    x = _x((16, 6, 6, 3))
    batch_stats = norm_growth(net, x, training=True)
    moving = norm_growth(net, x, training=False)
    assert batch_stats.training and not moving.training
    assert abs(batch_stats.final_ratio - moving.final_ratio) > 1e-3
    for w, value in zip(net.weights, before):
        np.testing.assert_array_equal(w.numpy(), value)


def test_naive_sharing_grows_activations_more_than_unshared_batch_norm():
    x = _x((32, 6, 6, 3))
    ratios = {}
    for naive in (True, False):
        keras.utils.set_random_seed(0)
        net = _stack_net(steps=6, channels=8, norm_per_step=not naive,
                         gamma_init=1.0 if naive else 0.1)
        ratios[naive] = norm_growth(net, x, training=True).final_ratio
    assert ratios[True] > 2.0 * ratios[False] > 2.0


def test_norm_growth_errors():
    model = residual_mlp(2, 4, input_shape=(4,))
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 4\) to match the input of "
                                         r"model '[^']+'; got \(3, 5\)"):
        norm_growth(model, _x((3, 5)))
    with pytest.raises(ValueError, match="`x` contains NaN"):
        norm_growth(model, np.full((2, 4), np.nan, "float32"))
    with pytest.raises(ValueError, match="`max_examples`"):
        norm_growth(model, _x((3, 4)), max_examples=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        norm_growth(model, _x((3, 4)), batch_size=0)
    with pytest.raises(ValueError, match="`model` must be a chain keras.Model"):
        norm_growth(keras.layers.Dense(3), _x((3, 4)))
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="no residual blocks"):
        norm_growth(keras.Model(plain.inputs, plain.outputs), _x((3, 4)))
    with pytest.raises(ValueError, match="is not built"):
        norm_growth(SharedResidualStack(4, form="dense"), _x((3, 4)))


# -- training stability -----------------------------------------------------------------------
def test_training_stability_summaries(tmp_path):
    nan = training_stability([2.3, 1.9, float("nan"), 1.0])
    assert (nan.diverged, nan.finite, nan.first_nonfinite) == (True, False, 2)
    assert nan.reference == 2.3 and nan.peak_ratio == 1.0
    blown = training_stability([2.0, 30.0, 1.0], reference=2.0, blowup_factor=10.0)
    assert blown.diverged and blown.finite and blown.peak_ratio == 15.0
    calm = training_stability([2.3, 1.2, 0.5], reference=math.log(10))
    assert not calm.diverged and calm.final_loss == 0.5
    assert calm.peak_ratio == pytest.approx(2.3 / math.log(10))
    assert calm.to_dict()["losses"] == [2.3, 1.2, 0.5]
    assert nan.to_dict()["losses"][2] is None  # strict JSON: NaN becomes null
    nan.plot(tmp_path / "nan.png")
    assert (tmp_path / "nan.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="`losses` is empty"):
        training_stability([])
    with pytest.raises(ValueError, match="`blowup_factor`"):
        training_stability([1.0], blowup_factor=1.0)
    with pytest.raises(ValueError, match="`reference`"):
        training_stability([1.0], reference=-1.0)
    with pytest.raises(ValueError, match="pass a positive `reference`"):
        training_stability([float("inf"), 1.0])


def _tiny_classifier():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    return model


def test_loss_recorder_recovers_each_batch_loss():
    model = _tiny_classifier()  # learning rate 0: the weights never change
    x, y = _x((40, 3), seed=4), np.arange(40) % 4
    recorder = LossRecorder()
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    per_example = keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
    expected = np.asarray(per_example).reshape(4, 10).mean(1)
    np.testing.assert_allclose(recorder.losses, np.tile(expected, 2), rtol=1e-5)
    assert not recorder.stability().diverged


def test_loss_recorder_stops_at_the_first_nonfinite_loss():
    model = _tiny_classifier()
    x, y = _x((40, 3), seed=4), np.arange(40) % 4
    x[15] = np.nan  # in the second batch
    recorder = LossRecorder(stop_on_nonfinite=True)
    model.fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0, callbacks=[recorder])
    assert len(recorder.losses) == 2 and math.isnan(recorder.losses[1])
    summary = recorder.stability()
    assert summary.diverged and summary.first_nonfinite == 1


# -- the library comparisons (tiny) ------------------------------------------------------------

@pytest.fixture(scope="module")
def digits256():
    (x, y), test = training_digits(8, 3, batch_size=64)
    return (x[:256], y[:256]), test


@pytest.fixture(scope="module")
def scaling(digits256):
    train, test = digits256
    return compare_residual_scales(train, test, blocks=6, width=8, epochs=1,
                                   progress_bar=False)


@pytest.fixture(scope="module")
def sharing(digits256):
    train, test = digits256
    return compare_weight_sharing(train, test, steps=3, width=8, epochs=1, progress_bar=False)


def _round_trip(result, tmp_path):
    """The result's JSON (numbers only: the findings are judged over seeds by
    run_comparison) and its figure."""
    path = result.to_json(tmp_path / "result.json")
    loaded = json.loads(open(path).read())
    for key in ("finding", "finding_held", "criteria", "description"):
        assert key not in loaded  # no verdict on one seed
    result.plot(tmp_path / "figure.png")
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    return loaded


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
    loaded = _round_trip(scaling, tmp_path)
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
    loaded = _round_trip(sharing, tmp_path)
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


def test_norm_growth_leaves_out_examples_whose_first_state_is_zero():
    """A zero input through a bias-free stem gives h_0 = 0: no ratio, left out of the mean
    (a narrow ReLU stem can switch every unit off for some example)."""
    keras.utils.set_random_seed(0)
    model = _stack_net(steps=3)
    x = _x((4, 6, 6, 3))
    x[0] = 0.0
    full, rest = norm_growth(model, x), norm_growth(model, x[1:])
    assert full.n_examples == 4 and full.mean_norm[0] < rest.mean_norm[0]
    np.testing.assert_allclose(full.ratio, rest.ratio, rtol=1e-6)
    np.testing.assert_allclose(full.ratio_std, rest.ratio_std, rtol=1e-5, atol=1e-7)
    none = norm_growth(model, np.zeros_like(x))
    assert all(math.isnan(r) for r in none.ratio) and math.isnan(none.final_ratio)


# -- the reproductions ------------------------------------------------------------------------
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
