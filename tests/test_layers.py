"""Block layers: behaviour, shapes, parameter counts, validation and serialization."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_resnet_lab import (
    FusedBatchNormalization,
    HighwayBlock,
    MultiResidualBlock,
    ResidualBlock,
    SharedResidualStack,
    SqueezeExcite,
)
from keras_resnet_lab.layers.conv import Conv2D


def _x(shape, seed=0, nonneg=False):
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    return np.abs(x) if nonneg else x


def _params(layers):
    return sum(int(np.prod(w.shape)) for layer in layers if layer is not None
               for w in layer.trainable_weights)


# -- behaviour ----------------------------------------------------------------------------
@pytest.mark.parametrize("bottleneck", [False, True])
def test_zero_init_preact_block_is_exact_identity(bottleneck):
    x = _x((2, 8, 8, 16))
    block = ResidualBlock(16, bottleneck=bottleneck, preact=True, zero_init_residual=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(block(x)), x)


def test_zero_init_postact_block_is_identity_on_relu_outputs():
    x = _x((2, 8, 8, 16), nonneg=True)
    block = ResidualBlock(16, zero_init_residual=True)
    np.testing.assert_allclose(ops.convert_to_numpy(block(x)), x, atol=1e-6)
    # ... and not without zero init
    assert np.abs(ops.convert_to_numpy(ResidualBlock(16)(x)) - x).max() > 0.1


def test_dense_form_zero_init_identity_and_shape():
    x = _x((5, 12))
    block = ResidualBlock(12, form="dense", preact=True, zero_init_residual=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(block(x)), x)
    assert tuple(ResidualBlock(20, form="dense", shortcut="B")(x).shape) == (5, 20)


@pytest.mark.parametrize("preact", [False, True])
def test_call_equals_merge_of_parts_and_residual_scale(preact):
    x = _x((2, 8, 8, 8))
    block = ResidualBlock(16, strides=2, preact=preact, residual_scale=0.2)
    y = ops.convert_to_numpy(block(x))
    skip, branch = block.shortcut(x), block.residual(x)
    np.testing.assert_allclose(ops.convert_to_numpy(block.merge(skip, branch)), y, atol=1e-6)
    unscaled = ops.convert_to_numpy(block.branch(x))
    np.testing.assert_allclose(ops.convert_to_numpy(branch), 0.2 * unscaled, atol=1e-6)


def test_drop_path_inactive_at_inference_and_drops_whole_branches_in_training():
    keras.utils.set_random_seed(0)
    x = _x((4000, 6))
    block = ResidualBlock(6, form="dense", preact=True, normalization="none",
                          drop_path_rate=0.5, seed=3)
    skip = ops.convert_to_numpy(block.shortcut(x))
    branch = ops.convert_to_numpy(block.residual(x))
    np.testing.assert_allclose(ops.convert_to_numpy(block(x, training=False)), skip + branch,
                               atol=1e-5)
    y = ops.convert_to_numpy(block(x, training=True))
    scale = 1e-5 * (1.0 + np.abs(skip) + np.abs(branch))
    dropped = np.all(np.abs(y - skip) <= scale, axis=1)
    kept = np.all(np.abs(y - (skip + 2.0 * branch)) <= 2 * scale, axis=1)
    assert np.all(dropped | kept)  # every example is either dropped or kept, scaled by 1/keep
    assert 0.45 < dropped.mean() < 0.55


def test_multi_residual_sums_its_branches():
    x = _x((2, 6, 6, 8))
    block = MultiResidualBlock(8, branches=3, preact=True)
    y = ops.convert_to_numpy(block(x))
    total = sum(ops.convert_to_numpy(block.branch(x, k)) for k in range(3))
    np.testing.assert_allclose(y, x + total, atol=1e-5)
    one = ResidualBlock(8)
    one.build((None, 6, 6, 8))
    block3 = MultiResidualBlock(8, branches=3)
    block3.build((None, 6, 6, 8))
    assert block3.count_params() == 3 * one.count_params()
    with pytest.raises(ValueError, match="index"):
        block.branch(x, 3)


def test_highway_gate_range_decomposition_and_carry_lesion():
    x = _x((3, 8, 8, 8))
    block = HighwayBlock(8, gate_bias=-2.0)
    gate = ops.convert_to_numpy(block.transform_gate(x))
    assert gate.min() > 0.0 and gate.max() < 1.0
    assert gate.mean() < 0.3  # biased towards carrying at init (sigmoid(-2) = 0.12)
    h = ops.convert_to_numpy(block.transform(x))
    y = ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(y, gate * h + (1 - gate) * x, atol=1e-5)
    np.testing.assert_array_equal(ops.convert_to_numpy(block.shortcut(x)), x)
    closed = HighwayBlock(8, gate_bias=-60.0)  # T = 0: the layer only carries
    np.testing.assert_allclose(ops.convert_to_numpy(closed(x)), x, atol=1e-6)


def test_highway_projection_on_carry_when_shape_changes():
    block = HighwayBlock(16, strides=2)
    assert tuple(block(_x((2, 8, 8, 8))).shape) == (2, 4, 4, 16)
    assert block.projection is not None
    assert block.gate_conv.use_bias and not block.transform_conv.use_bias


def test_plain_block_has_no_shortcut():
    x = _x((2, 8, 8, 8))
    block = ResidualBlock(16, strides=2, plain=True, shortcut="C")
    y = block(x)
    assert block.projection is None and block.subsample is None
    np.testing.assert_allclose(ops.convert_to_numpy(y),
                               ops.convert_to_numpy(ops.relu(block.branch(x))), atol=1e-6)
    with pytest.raises(ValueError, match="plain"):
        block.shortcut(x)


def test_squeeze_excite_gates_channels():
    x = _x((2, 4, 4, 8), nonneg=True)
    y = ops.convert_to_numpy(SqueezeExcite(0.25)(x))
    ratio = y / np.where(x == 0, 1, x)
    per_channel = ratio.reshape(2, -1, 8)
    assert np.allclose(per_channel, per_channel[:, :1, :], atol=1e-5)  # one gate per channel
    assert 0 < ratio.min() and ratio.max() < 1


# -- shortcut options: shapes and parameter counts -----------------------------------------
@pytest.mark.parametrize("option, in_ch, out_ch, stride, proj_params", [
    ("A", 16, 32, 2, 0),
    ("A", 16, 16, 1, 0),
    ("B", 16, 16, 1, 0),
    ("B", 16, 32, 2, 16 * 32 + 2 * 32),
    ("B", 16, 16, 2, 16 * 16 + 2 * 16),
    ("C", 16, 16, 1, 16 * 16 + 2 * 16),
])
def test_shortcut_options(option, in_ch, out_ch, stride, proj_params):
    block = ResidualBlock(out_ch, strides=stride, shortcut=option)
    x = _x((2, 8, 8, in_ch))
    y = block(x)
    assert tuple(y.shape) == (2, 8 // stride, 8 // stride, out_ch)
    assert tuple(block.compute_output_shape(x.shape)) == tuple(y.shape)
    assert _params([block.projection, block.projection_norm]) == proj_params
    if option == "A":
        skip = ops.convert_to_numpy(block.shortcut(x))
        np.testing.assert_array_equal(skip[..., :in_ch], x[:, ::stride, ::stride, :])
        assert np.all(skip[..., in_ch:] == 0)  # zero-padded channels


def test_bottleneck_grouped_wide_parameter_count():
    # ResNeXt 32x4d first block: 64 -> 256 outputs, inner width 128, 32 groups
    block = ResidualBlock(256, bottleneck=True, groups=32, width=2.0)
    block.build((None, 8, 8, 64))
    convs = 64 * 128 + 9 * 128 * 128 // 32 + 128 * 256
    norms = 2 * (128 + 128 + 256)
    projection = 64 * 256 + 2 * 256
    assert block.inner_filters == 128
    trainable = sum(int(np.prod(w.shape)) for w in block.trainable_weights)
    assert trainable == convs + norms + projection


def test_stride_position():
    v15 = ResidualBlock(64, strides=2, bottleneck=True)
    caffe = ResidualBlock(64, strides=2, bottleneck=True, stride_in_1x1=True)
    for block in (v15, caffe):
        block.build((None, 8, 8, 32))
    assert v15.convs[1].strides == (2, 2) and v15.convs[0].subsample == 1
    # a strided 1x1 convolution runs as subsampling + stride-1 convolution (same function)
    assert caffe.convs[0].subsample == 2 and caffe.convs[0].strides == (1, 1)
    assert caffe.convs[1].strides == (1, 1)


def test_subsampled_conv_is_the_strided_1x1_convolution():
    x = _x((3, 7, 7, 4))
    ours = Conv2D(5, 1, subsample=2, use_bias=True)
    strided = keras.layers.Conv2D(5, 1, strides=2, use_bias=True)
    ours.build(x.shape)
    strided.build(x.shape)
    strided.set_weights(ours.get_weights())
    y = ops.convert_to_numpy(ours(x))
    np.testing.assert_allclose(y, ops.convert_to_numpy(strided(x)), rtol=1e-6, atol=1e-6)
    assert y.shape == tuple(ours.compute_output_shape(x.shape)) == (3, 4, 4, 5)
    assert Conv2D.from_config(ours.get_config()).subsample == 2
    assert isinstance(ours, keras.layers.Conv2D) and Conv2D(5, 3).subsample == 1
    for kwargs in (dict(kernel_size=3), dict(kernel_size=1, strides=2)):
        with pytest.raises(ValueError, match="`subsample`"):
            Conv2D(5, subsample=2, **kwargs)
    with pytest.raises(ValueError, match="`subsample`"):
        Conv2D(5, 1, subsample=0)


def test_saved_weights_keep_their_names(tmp_path):
    """A .keras file names a block's weights after its sublayers' classes; the names of files
    written before the convolutions became our layer (``convs/conv2d``, ...) must not move, or
    those files stop loading."""
    import zipfile

    import h5py

    inputs = keras.Input((8, 8, 8))
    block = ResidualBlock(16, strides=2, bottleneck=True, stride_in_1x1=True)
    model = keras.Model(inputs, block(inputs))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    names = []
    with h5py.File(tmp_path / "model.weights.h5", "r") as weights:
        weights.visit(names.append)
    prefix = "layers/residual_block/"
    sublayers = {n[len(prefix):] for n in names if n.startswith(prefix) and n.endswith("/vars")}
    assert sublayers - {"vars"} == {  # "vars": the block's own (none)
        "convs/conv2d/vars", "convs/conv2d_1/vars", "convs/conv2d_2/vars",
        "norms/fused_batch_normalization/vars", "norms/fused_batch_normalization_1/vars",
        "norms/fused_batch_normalization_2/vars", "projection/vars", "projection_norm/vars"}


def test_fold_rule_counts_kernel_against_output_positions():
    from keras_resnet_lab.layers import fusion

    conv = keras.layers.Conv2D(8, 3, padding="same")
    conv.build((None, 4, 4, 16))
    # kernel elements per output channel 3 * 3 * 16 = 144 against batch * 4 * 4 positions
    assert not fusion.fold_pays(conv, keras.KerasTensor((8, 4, 4, 16)))  # 128 positions
    assert fusion.fold_pays(conv, keras.KerasTensor((16, 4, 4, 16)))  # 256 positions
    assert not fusion.fold_pays(conv, keras.KerasTensor((16, None, 4, 16)))  # unknown size
    subsampled = Conv2D(8, 1, subsample=2)
    subsampled.build((None, 8, 8, 16))
    assert fusion.fold_pays(subsampled, keras.KerasTensor((1, 8, 8, 16))) is False  # 16 < 16
    assert fusion.fold_pays(subsampled, keras.KerasTensor((2, 8, 8, 16)))  # 16 < 32


def test_strided_pointwise_convolutions_train_on_odd_batches():
    """TensorFlow's oneDNN input gradient of a strided 1x1 convolution corrupts memory on odd
    batch sizes; our blocks must not use that kernel (run in a fresh process: a crash there
    would abort pytest itself)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, keras\n"
        "from keras_resnet_lab import ResidualBlock\n"
        "for bottleneck in (False, True):\n"
        "    inp = keras.Input((16, 16, 4))\n"
        "    y = ResidualBlock(8, strides=2, shortcut='C', bottleneck=bottleneck,\n"
        "                      stride_in_1x1=True)(inp)\n"
        "    m = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(y))\n"
        "    m.compile('sgd', 'mse')\n"
        "    for batch in (1, 3, 5, 1, 3):\n"
        "        m.train_on_batch(np.ones((batch, 16, 16, 4), 'float32'),\n"
        "                         np.ones((batch, 8), 'float32'))\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_odd_input_sizes_match_compute_output_shape():
    for size in (7, 9, 15):
        block = ResidualBlock(8, strides=2, shortcut="B")
        y = block(_x((1, size, size, 4)))
        assert tuple(y.shape) == tuple(block.compute_output_shape((1, size, size, 4)))


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, argument", [
    (dict(filters=0), "filters"),
    (dict(filters=-4), "filters"),
    (dict(filters=8, strides=0), "strides"),
    (dict(filters=8, shortcut="D"), "shortcut"),
    (dict(filters=8, residual_scale=0.0), "residual_scale"),
    (dict(filters=8, residual_scale=1.5), "residual_scale"),
    (dict(filters=8, drop_path_rate=1.0), "drop_path_rate"),
    (dict(filters=8, drop_path_rate=0.1, plain=True), "drop_path_rate"),
    (dict(filters=8, groups=3), "groups"),
    (dict(filters=8, se_ratio=2.0), "se_ratio"),
    (dict(filters=8, form="conv3d"), "form"),
    (dict(filters=8, form="dense", strides=2), "strides"),
    (dict(filters=2, bottleneck=True), "filters"),
    (dict(filters=8, normalization="layer"), "normalization"),
    (dict(filters=8, width=0), "width"),
    (dict(filters=8, branches=0), "branches"),
])
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ResidualBlock(**kwargs)


def test_invalid_highway_and_input_errors():
    with pytest.raises(ValueError, match="gate_bias"):
        HighwayBlock(8, gate_bias="big")
    with pytest.raises(ValueError, match="shortcut='A'"):
        ResidualBlock(8, shortcut="A")(_x((1, 4, 4, 16)))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        ResidualBlock(8, form="dense")(_x((1, 4, 4, 8)))
    with pytest.raises(ValueError, match=r"\(batch, height, width, channels\)"):
        ResidualBlock(8)(_x((3, 8)))
    block = ResidualBlock(8)
    block(_x((1, 4, 4, 8)))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 8"):
        block(_x((1, 4, 4, 5)))


# -- serialization --------------------------------------------------------------------------
CONFIGS = [
    (ResidualBlock, dict(filters=16, strides=2, shortcut="A")),
    (ResidualBlock, dict(filters=32, strides=2, bottleneck=True, groups=2, se_ratio=0.25,
                         preact=True, use_bias=True, residual_scale=0.3)),
    (ResidualBlock, dict(filters=16, shortcut="C", drop_path_rate=0.2, zero_init_residual=True,
                         kernel_regularizer="l2", bn_momentum=0.99)),
    (MultiResidualBlock, dict(filters=16, branches=3, width=0.5)),
    (HighwayBlock, dict(filters=16, strides=2, gate_bias=-3.0, kernel_size=5)),
]


@pytest.mark.parametrize("cls, kwargs", CONFIGS)
def test_save_load_and_clone_give_identical_outputs(cls, kwargs, tmp_path):
    inputs = keras.Input((8, 8, 8))
    outputs = cls(name="stage1_block1", **kwargs)(inputs)
    model = keras.Model(inputs, outputs)
    # non-trivial batch-norm statistics, so that a lost weight would show
    for w in model.non_trainable_weights:
        w.assign(np.random.default_rng(1).uniform(0.5, 1.5, w.shape).astype("float32"))
    x = _x((2, 8, 8, 8))
    expected = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


def _layer_test(**kwargs):
    """Keras's own layer harness (``keras.src.testing``; Keras 3.15 has no public one): the
    layer builds, runs eagerly and symbolically with the output shape, round-trips through
    its config and a ``.keras`` file, trains, and runs under mixed precision."""
    from keras.src import testing

    class Harness(testing.TestCase):
        def runTest(self):
            self.run_layer_test(**kwargs)

    result = Harness().run()
    assert result.wasSuccessful(), "\n".join(text for _, text in result.errors + result.failures)


#: ``(class, arguments, input shape, output shape, trainable, non-trainable weights)``: every
#: block configuration, each through the harness. A batch norm has 2 trainable (gamma, beta)
#: and 2 non-trainable (moving mean, variance) weights; a convolution before a batch norm has
#: no bias.
LAYER_CASES = {
    "basic_v1": (ResidualBlock, dict(filters=4), (2, 5, 5, 4), (2, 5, 5, 4), 2 + 4, 4),
    "basic_v1_strided_projection": (ResidualBlock, dict(filters=8, strides=2), (2, 8, 8, 4),
                                    (2, 4, 4, 8), 3 + 6, 6),
    "bottleneck_v1": (ResidualBlock, dict(filters=8, bottleneck=True), (2, 6, 6, 8),
                      (2, 6, 6, 8), 3 + 6, 6),
    "bottleneck_v1_stride_in_1x1": (  # the strided 1x1 convolution subsamples, odd input
        ResidualBlock, dict(filters=8, strides=2, bottleneck=True, stride_in_1x1=True),
        (2, 7, 7, 8), (2, 4, 4, 8), 4 + 8, 8),
    "basic_v2_preact": (ResidualBlock, dict(filters=4, preact=True), (2, 5, 5, 4),
                        (2, 5, 5, 4), 2 + 4, 4),  # preact_bn, conv1, bn1, conv2
    "bottleneck_v2_preact_projection": (  # the v2 projection has no batch norm
        ResidualBlock, dict(filters=8, strides=2, bottleneck=True, preact=True),
        (2, 6, 6, 4), (2, 3, 3, 8), 4 + 6, 6),
    "projection_shortcut_c": (ResidualBlock, dict(filters=4, shortcut="C"), (2, 5, 5, 4),
                              (2, 5, 5, 4), 3 + 6, 6),
    "option_a_shortcut": (ResidualBlock, dict(filters=8, strides=2, shortcut="A"),
                          (2, 6, 6, 4), (2, 3, 3, 8), 2 + 4, 4),
    "avg_down": (ResidualBlock, dict(filters=8, strides=2, avg_down=True), (2, 8, 8, 4),
                 (2, 4, 4, 8), 3 + 6, 6),
    "squeeze_excite": (ResidualBlock, dict(filters=4, se_ratio=0.25), (2, 5, 5, 4),
                       (2, 5, 5, 4), 2 + 4 + 4, 4),  # + reduce and expand, kernel and bias
    "drop_path": (ResidualBlock, dict(filters=4, drop_path_rate=0.2, seed=1), (2, 5, 5, 4),
                  (2, 5, 5, 4), 2 + 4, 4),
    "groups": (ResidualBlock, dict(filters=8, bottleneck=True, groups=2), (2, 6, 6, 8),
               (2, 6, 6, 8), 3 + 6, 6),
    "wide": (ResidualBlock, dict(filters=4, width=2.0), (2, 5, 5, 4), (2, 5, 5, 4), 2 + 4, 4),
    "dilated": (ResidualBlock, dict(filters=4, dilation_rate=2), (2, 7, 7, 4), (2, 7, 7, 4),
                2 + 4, 4),
    "learnable_scale": (ResidualBlock, dict(filters=4, learnable_scale=True), (2, 5, 5, 4),
                        (2, 5, 5, 4), 2 + 4 + 1, 4),  # + alpha
    "no_normalization_with_bias": (ResidualBlock, dict(filters=4, normalization="none",
                                                       use_bias=True),
                                   (2, 5, 5, 4), (2, 5, 5, 4), 4, 0),
    "plain": (ResidualBlock, dict(filters=4, plain=True), (2, 5, 5, 4), (2, 5, 5, 4), 2 + 4, 4),
    "dense_projection": (ResidualBlock, dict(filters=6, form="dense", shortcut="B"), (3, 5),
                         (3, 6), 3 + 6, 6),
    "highway": (HighwayBlock, dict(filters=4), (2, 6, 6, 4), (2, 6, 6, 4), 1 + 2 + 2, 2),
    "highway_strided_projection": (HighwayBlock, dict(filters=8, strides=2), (2, 8, 8, 4),
                                   (2, 4, 4, 8), 5 + 3, 4),
    "highway_dense": (HighwayBlock, dict(filters=5, form="dense"), (3, 5), (3, 5), 5, 2),
    "highway_plain": (HighwayBlock, dict(filters=4, plain=True), (2, 6, 6, 4), (2, 6, 6, 4),
                      1 + 2, 2),  # no gate
    "multi_residual": (MultiResidualBlock, dict(filters=4, branches=3), (2, 5, 5, 4),
                       (2, 5, 5, 4), 3 * (2 + 4), 3 * 4),
    "shared_stack": (SharedResidualStack, dict(filters=4, steps=2), (2, 5, 5, 4),
                     (2, 5, 5, 4), 2 + 2 * 2 * 2, 2 * 2 * 2),  # a batch-norm pair per step
    "shared_stack_naive": (SharedResidualStack, dict(filters=4, steps=3, norm_per_step=False),
                           (2, 5, 5, 4), (2, 5, 5, 4), 2 + 2 * 2, 2 * 2),
    "fused_batch_norm": (FusedBatchNormalization, dict(), (2, 4, 4, 3), (2, 4, 4, 3), 2, 2),
    "squeeze_excite_layer": (SqueezeExcite, dict(ratio=0.5), (2, 4, 4, 8), (2, 4, 4, 8), 4, 0),
    "subsampled_conv": (Conv2D, dict(filters=3, kernel_size=1, subsample=2), (2, 5, 5, 4),
                        (2, 3, 3, 3), 2, 0),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_keras_layer_test_harness(case):
    cls, kwargs, shape, out, trainable, non_trainable = LAYER_CASES[case]
    _layer_test(layer_cls=cls, init_kwargs=kwargs, input_shape=shape,
                expected_output_shape=out, expected_num_trainable_weights=trainable,
                expected_num_non_trainable_weights=non_trainable,
                expected_num_seed_generators=1 if kwargs.get("drop_path_rate") else None,
                # Keras's batch norm passes a mask through; the blocks take none
                supports_masking=issubclass(cls, keras.layers.BatchNormalization),
                run_training_check=True)


def test_same_shaped_kernels_of_a_block_start_different_and_reproducibly():
    import keras

    from keras_resnet_lab.layers import HighwayBlock, MultiResidualBlock, ResidualBlock

    def kernels():
        keras.utils.set_random_seed(3)
        block = ResidualBlock(8)
        block.build((None, 6, 6, 8))
        highway = HighwayBlock(8, form="dense")
        highway.build((None, 8))
        return ([c.kernel.numpy() for c in block.convs],
                [highway.transform_conv.kernel.numpy(), highway.gate_conv.kernel.numpy()])

    (c1, c2), (h, g) = kernels()
    assert c1.shape == c2.shape and not np.allclose(c1, c2)  # one shared draw made them equal
    multi = MultiResidualBlock(8, branches=3)
    multi.build((None, 6, 6, 8))
    firsts = [c.kernel.numpy() for c in multi.convs[::2]]
    assert all(not np.allclose(firsts[0], k) for k in firsts[1:])  # branches differ at init
    assert not np.allclose(h, g)
    (d1, d2), (h2, g2) = kernels()
    np.testing.assert_array_equal(c1, d1)  # ...and the draws are reproducible under a seed
    np.testing.assert_array_equal(g, g2)


def _randomize_batch_norms(layer, seed=0):
    rng = np.random.default_rng(seed)
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if isinstance(sub, keras.layers.BatchNormalization):
            n = sub.moving_mean.shape[0]
            sub.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                             rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])


@pytest.mark.parametrize("kwargs", [
    dict(filters=16, strides=2, shortcut="B"),                       # v1, projection shortcut
    dict(filters=16, strides=2, bottleneck=True, preact=True, shortcut="B"),  # v2 bottleneck
    dict(filters=8, form="dense"),                                   # dense form
])
def test_batch_norms_fold_into_the_convolutions_at_inference_only(kwargs, monkeypatch):
    """At inference each conv + batch norm runs as one convolution with a scaled kernel and a
    bias: the same function (to float32 rounding), and no batch-norm layer is called; training
    and the fold switched off call the batch norms as before. A small feature map at batch 1,
    where rescaling the kernel would move more numbers than the batch norm, is not folded."""
    from keras_resnet_lab.layers.base import BlockBase

    block_class = HighwayBlock if kwargs.get("form") == "dense" else ResidualBlock
    block = block_class(**kwargs)
    shape = (16, 8) if kwargs.get("form") == "dense" else (8, 16, 16, 8)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    block(x)
    _randomize_batch_norms(block)
    calls = []
    original = FusedBatchNormalization.call  # the blocks' batch norm layer

    def counted(self, *args, **kw):
        calls.append(self.name)
        return original(self, *args, **kw)

    monkeypatch.setattr(FusedBatchNormalization, "call", counted)
    folded = np.asarray(block(x, training=False))
    after_conv = [n for n in calls if "preact" not in n]  # a v2 block's first BN has no conv
    assert after_conv == []
    monkeypatch.setattr(BlockBase, "fold_batch_norm", False)
    calls.clear()
    unfolded = np.asarray(block(x, training=False))
    total, after_conv = len(calls), [n for n in calls if "preact" not in n]
    assert len(after_conv) >= 1
    np.testing.assert_allclose(folded, unfolded, rtol=1e-5, atol=1e-5 * np.abs(unfolded).max())
    monkeypatch.setattr(BlockBase, "fold_batch_norm", True)
    calls.clear()
    block(x, training=True)  # batch statistics: the batch norms run as layers
    assert len(calls) == total
    calls.clear()
    small = x[:1] if x.ndim == 2 else x[:1, :4, :4]  # few positions per kernel element
    block(small, training=False)
    assert [n for n in calls if "preact" not in n]
