"""layers/shared.py: the weight-shared residual stack (parameters, steps, parts, saving, errors)."""

import keras
import numpy as np
import pytest

from keras_resnet_lab.layers.residual import ResidualBlock
from keras_resnet_lab.layers.shared import SharedResidualStack
from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.surgery import chain_plan, run_plan


def _x(shape, seed=0, low=-1.0):
    return np.random.default_rng(seed).uniform(low, 1.0, shape).astype("float32")


def _stack_net(steps=3, channels=4, **kwargs):
    return build_network(conv_stem(channels, 3, 1, norm=False), [Stage(channels, 1)],
                         SharedResidualStack, dict(steps=steps, **kwargs),
                         input_shape=(6, 6, 3), name="stack_net", post_norm=True,
                         num_classes=5)


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
