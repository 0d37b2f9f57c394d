"""analysis/norms.py: activation-norm growth through chains and stacks, and training
stability (LossRecorder, training_stability)."""

import json
import math

import keras
import numpy as np
import pytest
from test_shared import _stack_net, _x  # the stack network of layers/shared.py's tests

from keras_resnet_lab.analysis.norms import (
    LossRecorder,
    hidden_states,
    norm_growth,
    training_stability,
)
from keras_resnet_lab.layers.shared import SharedResidualStack
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.mlp import residual_mlp


def _identity_kernels(layer):
    for w in layer.trainable_weights:
        w.assign(np.eye(w.shape[0], dtype="float32"))


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
