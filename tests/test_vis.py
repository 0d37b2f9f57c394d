"""Visualization: tf-keras-vis adapters at our blocks; the refinement, branch, matching views."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet_lab  # noqa: F401  (registers the layers for loading)
from keras_resnet_lab.cli import main
from keras_resnet_lab.data import digit_layout
from keras_resnet_lab.models import cifar_network, from_keras_applications, residual_mlp
from keras_resnet_lab.outdir import MARKER_NAME
from keras_resnet_lab.vis import (
    branch_view,
    cam,
    channel_activation,
    load_image_files,
    match_filters,
    maximize_filter,
    refinement_view,
    resize_images,
    saliency,
    target_model,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _tiny(blocks=1, softmax=False, plain=False, shortcut="A", seed=0):
    keras.utils.set_random_seed(seed)
    return cifar_network(blocks, widths=(4, 8), input_shape=(8, 8, 3), num_classes=3,
                         plain=plain, classifier_activation="softmax" if softmax else None,
                         shortcut=shortcut,
                         name=f"tiny{blocks}{'_softmax' if softmax else ''}")


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


@pytest.fixture(scope="module")
def images8():
    return np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype(np.float32)


# -- attribution maps ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "gradcam", "gradcam++",
                                    "scorecam"])
def test_maps_have_the_input_spatial_shape_and_are_finite(tiny, images8, method, tmp_path):
    path = tmp_path / f"{method}.png"
    if method in ("saliency", "smoothgrad"):
        result = saliency(tiny, images8, 1, smooth_samples=4 if method == "smoothgrad" else 0,
                          path=path)
    else:
        result = cam(tiny, images8, [0, 1, 2], block="stage1_block1", method=method, path=path)
    assert result.method == method
    assert result.maps.shape == (3, 8, 8)
    assert np.isfinite(result.maps).all()
    assert result.maps.min() >= 0.0 and result.maps.max() <= 1.0 + 1e-6
    peaks = result.maps.reshape(3, -1).max(axis=1)
    # Each map is normalized to a peak of 1, or all zero where a CAM finds no positive
    # evidence for the class (possible in this untrained model); not all of them are zero.
    assert all(p == 0.0 or abs(p - 1.0) < 1e-3 for p in peaks), peaks
    if method != "gradcam":  # plain Grad-CAM of this untrained net may be all negative
        assert peaks.max() > 0.99, peaks
    assert path.read_bytes()[:8] == PNG
    data = json.loads(json.dumps(result.to_dict()))
    assert data["model"] == tiny.name and data["map_shape"] == [3, 8, 8]


def test_gradcam_at_a_block_is_computed_from_that_block(tiny, images8):
    """tf-keras-vis would silently seek the last Conv2D; the map must be the block's own."""
    block = tiny.get_layer("stage1_block1")  # 8x8 output: no upsampling in between
    features = keras.Model(tiny.inputs, [block.output, tiny.output])
    x = tf.constant(images8)
    with tf.GradientTape() as tape:
        tape.watch(x)
        activations, logits = features(x)
        score = tf.reduce_sum(logits[:, 2])
    grads = tape.gradient(score, activations).numpy()
    weights = grads.mean(axis=(1, 2), keepdims=True)
    expected = np.maximum((activations.numpy() * weights).sum(axis=-1), 0.0)
    low = expected.min(axis=(1, 2), keepdims=True)
    high = expected.max(axis=(1, 2), keepdims=True)
    expected = (expected - low) / (high - low + keras.backend.epsilon())
    result = cam(tiny, images8, 2, block="stage1_block1", method="gradcam")
    np.testing.assert_allclose(result.maps, expected, atol=1e-4)
    other = cam(tiny, images8, 2, block="stage2_block1", method="gradcam")
    assert np.abs(other.maps - result.maps).max() > 0.1


def test_softmax_model_is_explained_on_a_clone_and_left_untouched(images8):
    model = _tiny(softmax=True)
    before = [w.copy() for w in model.get_weights()]
    outputs = np.asarray(model(images8))
    result = cam(model, images8, block=-1, method="gradcam")
    sal = saliency(model, images8)
    assert result.block == "stage2_block1"  # default: the last block
    assert result.output_activation == sal.output_activation == "softmax"
    assert model.get_layer("predictions").activation is keras.activations.softmax
    np.testing.assert_array_equal(np.asarray(model(images8)), outputs)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert result.predicted == np.argmax(outputs, axis=-1).tolist() == result.class_indices


def test_gradcam_on_trained_digits_puts_more_mass_on_strokes_than_border(trained_digits):
    model, _, (x_test, y_test) = trained_digits
    x, y = x_test[:64], y_test[:64]
    result = cam(model, x, y, method="gradcam")  # last block (4x4 map upsampled to 16x16)
    size, border = digit_layout(x.shape[1])
    frame = np.ones(x.shape[1:3], bool)
    frame[border:border + size, border:border + size] = False
    grey = x.mean(axis=-1)  # the digits are padded with a constant background
    ratios = []
    for image, heat in zip(grey, result.maps):
        background = image[frame].mean()
        strokes = image > background + 0.5
        ratios.append(heat[strokes].mean() / max(heat[frame].mean(), 1e-6))
    assert np.median(ratios) > 1.4, np.median(ratios)


def test_cam_and_saliency_work_on_a_converted_keras_applications_resnet():
    source = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=4)
    model = from_keras_applications(source)
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32)
    result = cam(model, x, 1, block="stage3_block2", method="gradcam++")
    assert result.maps.shape == (2, 32, 32) and np.isfinite(result.maps).all()
    assert result.output_activation == "softmax"
    assert model.get_layer("predictions").activation is keras.activations.softmax


def test_saliency_on_a_dense_residual_mlp_keeps_the_feature_shape():
    keras.utils.set_random_seed(0)
    model = residual_mlp(2, 16, input_shape=(12,), num_classes=3)
    x = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    result = saliency(model, x, 0)
    assert result.maps.shape == (4, 12) and np.isfinite(result.maps).all()
    with pytest.raises(ValueError, match="spatial output"):
        cam(model, x, 0)


def test_odd_batches_through_projection_shortcuts_do_not_crash():
    """TF 2.21's oneDNN input gradient of a strided 1x1 convolution corrupts the heap on odd
    batches; the adapters run gradients on even batches. In a subprocess: a regression aborts."""
    script = (
        "import numpy as np\n"
        "from keras_resnet_lab.models import cifar_network\n"
        "from keras_resnet_lab.vis import cam, maximize_filter, saliency\n"
        "m = cifar_network(1, widths=(4, 8), input_shape=(16, 16, 3), num_classes=3,"
        " shortcut='B')\n"
        "x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype('float32')\n"
        "assert saliency(m, x[:1]).maps.shape == (1, 16, 16)\n"
        "assert cam(m, x, block=0).maps.shape == (3, 16, 16)\n"
        "assert maximize_filter(m, 0, 1, steps=2, progress_bar=False).images.shape[0] == 1\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


# -- activation maximization ----------------------------------------------------------------

def test_maximization_raises_the_activation_well_above_blank_and_random(trained_digits):
    model, _, (x_test, _) = trained_digits
    value_range = (float(x_test.min()), float(x_test.max()))
    result = maximize_filter(model, -1, [0, 1, 2, 3, 4, 5], steps=60, input_range=value_range,
                             progress_bar=False)
    activation = np.array(result.activation)
    baseline = np.maximum(np.array(result.blank_activation), np.array(result.random_activation))
    assert result.images.shape == (6, 16, 16, 3)
    assert result.images.min() >= value_range[0] - 1e-6
    assert result.images.max() <= value_range[1] + 1e-6
    assert activation.mean() > 3.0 * baseline.mean(), (activation, baseline)
    assert (activation > np.array(result.blank_activation)).all()
    sub = target_model(model, -1)
    np.testing.assert_allclose(channel_activation(sub, result.images, [0, 1, 2, 3, 4, 5]),
                               activation, rtol=1e-4, atol=1e-4)


def test_maximization_is_deterministic_under_a_seed(tiny):
    kwargs = dict(steps=6, jitter=1, rotation=3.0, blur=0.5, progress_bar=False)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    first = maximize_filter(tiny, "stage2_block1", [0, 5], seed=3, **kwargs)
    second = maximize_filter(tiny, "stage2_block1", [0, 5], seed=3, **kwargs)
    other = maximize_filter(tiny, "stage2_block1", [0, 5], seed=4, **kwargs)
    np.testing.assert_array_equal(first.images, second.images)
    assert np.abs(first.images - other.images).max() > 1e-3
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    tf_keras_vis_jitter = dict(kwargs, cumulative_jitter=True)
    np.testing.assert_array_equal(
        maximize_filter(tiny, 0, 1, seed=7, **tf_keras_vis_jitter).images,
        maximize_filter(tiny, 0, 1, seed=7, **tf_keras_vis_jitter).images)


def test_grayscale_maximization_keeps_channels_equal(tiny):
    result = maximize_filter(tiny, 0, 2, steps=4, grayscale=True, progress_bar=False)
    np.testing.assert_allclose(result.images, result.images[..., :1].repeat(3, axis=-1))


def test_branch_view_maximizes_shortcut_branch_and_output(tmp_path):
    model = _tiny(blocks=2)
    view = branch_view(model, "stage2_block1", [0, 3, 4, 7], steps=4, progress_bar=False,
                       path=tmp_path / "branch.png")
    assert view.targets == ["shortcut", "residual", "output"]
    assert view.zero_padded == [4, 7]  # option A pads 4 input channels up to 8
    for target in view.targets:
        assert view.results[target].images.shape == (4, 8, 8, 3)
    assert (tmp_path / "branch.png").read_bytes()[:8] == PNG
    plain = branch_view(_tiny(blocks=2, plain=True), 1, [0], steps=2, progress_bar=False)
    assert plain.targets == ["residual", "output"] and plain.zero_padded == []
    projected = branch_view(_tiny(blocks=2, shortcut="B"), "stage2_block1", [7], steps=2,
                            progress_bar=False)
    assert projected.zero_padded == [] and "shortcut" in projected.targets
    residual = target_model(model, "stage2_block2", "residual")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    layer = model.get_layer("stage2_block2")
    inner = keras.Model(model.inputs, layer.input)([x])
    np.testing.assert_allclose(residual([x]), layer.residual(inner), atol=1e-5)


def test_refinement_grid_has_one_panel_per_block_of_the_stage(tmp_path):
    model = _tiny(blocks=3)
    view = refinement_view(model, stage=2, filter_index=[1, 6], steps=4, progress_bar=False,
                           path=tmp_path / "refinement.png")
    assert view.blocks == ["stage2_block1", "stage2_block2", "stage2_block3"]
    assert view.images.shape == (2, 3, 8, 8, 3)
    assert view.activation.shape == (2, 3)
    panels, titles, labels = view.panels()
    assert [len(row) for row in panels] == [3, 3] and labels == ["filter 1", "filter 6"]
    assert "stage2_block3" in titles[0][2]
    assert (tmp_path / "refinement.png").read_bytes()[:8] == PNG
    assert len(view.same_filter_similarity) == 2
    assert -1.0 <= view.other_filter_similarity <= 1.0
    single = refinement_view(model, stage=1, filter_index=0, steps=2, progress_bar=False)
    assert single.images.shape[:2] == (1, 3) and single.other_filter_similarity is None
    json.loads(json.dumps(view.to_dict()))


def test_cross_stage_matching_finds_the_identity_shortcut_channels(trained_digits, tmp_path):
    model, plain, (x_test, _) = trained_digits
    x = x_test[:128]
    matches = match_filters(model, 1, x, maximize=False)
    assert (matches.source, matches.target) == ("stage1_block2", "stage2_block1")
    assert matches.correlation.shape == (8, 16) and len(matches.pairs) == 8
    # option A: channel i of stage 2 is channel i of stage 1 (subsampled) plus a correction
    assert matches.identity_fraction >= 0.75
    assert np.mean(matches.pair_correlation) > matches.baseline_correlation + 0.3
    greedy = match_filters(plain, 1, x, matching="greedy", maximize=False)
    assert greedy.identity_fraction <= 0.5
    assert len({j for _, j in greedy.pairs}) == 8  # one-to-one
    shown = match_filters(model, 2, x[:32], top_k=2, steps=3, progress_bar=False,
                          path=tmp_path / "matching.png")
    assert shown.source_images.shape == (2, 16, 16, 3)
    assert (tmp_path / "matching.png").read_bytes()[:8] == PNG


# -- bad input ----------------------------------------------------------------------------

def test_bad_inputs_say_what_is_allowed(tiny, images8):
    with pytest.raises(ValueError, match="stage1_block1, stage2_block1"):
        cam(tiny, images8, block="stage9_block1")
    with pytest.raises(ValueError, match=r"class_index.*\[0, 2\]"):
        saliency(tiny, images8, 3)
    with pytest.raises(ValueError, match=r"filter_index.*\[0, 7\]"):
        maximize_filter(tiny, -1, 8, steps=1, progress_bar=False)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 3\).*rejected, not resized.*resize_images"):
        cam(tiny, np.zeros((2, 16, 16, 3)))
    with pytest.raises(ValueError, match="method"):
        cam(tiny, images8, method="lime")
    with pytest.raises(ValueError, match="target"):
        maximize_filter(tiny, -1, 0, target="gate", steps=1)
    with pytest.raises(ValueError, match="no shortcut"):
        maximize_filter(_tiny(plain=True), 0, 0, target="shortcut", steps=1)
    with pytest.raises(ValueError, match=r"stage.*\[1\]"):
        match_filters(tiny, 2, images8)
    with pytest.raises(ValueError, match=r"stage.*\[1, 2\]"):
        refinement_view(tiny, stage=3)
    with pytest.raises(ValueError, match="input_range"):
        maximize_filter(tiny, 0, 0, input_range=(1.0, 1.0))
    headless = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), include_top=False)
    with pytest.raises(ValueError, match="include_top"):
        saliency(headless, images8)


def test_image_files_are_resized_to_the_model_input(tiny, tmp_path):
    from PIL import Image

    paths = []
    for i, size in enumerate([(20, 12), (8, 8)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full(size[::-1], 255 * i, np.uint8)).save(path)
        paths.append(path)
    images, value_range = load_image_files(paths, tiny, preprocess="unit")
    assert images.shape == (2, 8, 8, 3) and value_range == (0.0, 1.0)
    assert images[0].max() == 0.0 and images[1].min() == 1.0
    assert resize_images(np.zeros((2, 16, 16, 3)), 8, 8).shape == (2, 8, 8, 3)
    with pytest.raises(FileNotFoundError):
        load_image_files([tmp_path / "missing.png"], tiny)


# -- command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vis") / "tiny.keras"
    _tiny(blocks=2).save(path)
    return path


@pytest.mark.parametrize("method, files", [
    ("gradcam++", ["gradcam_pp.png", "gradcam_pp.json"]),
    ("filters", ["filters_stage1_block2.png", "filters_stage1_block2.json"]),
    ("refinement", ["refinement_stage1.png", "branch_stage1_block2.png",
                    "matching_stage1.png", "refinement.json"]),
])
def test_cli_writes_the_figures(model_file, tmp_path, method, files):
    out = tmp_path / "out"
    code = main(["vis", str(model_file), "--method", method, "--block", "stage1_block2",
                 "--out", str(out), "--steps", "3", "--count", "2", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, MARKER_NAME])
    for name in files:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG
    data = json.loads((out / files[-1]).read_text())
    if method == "refinement":
        assert data["refinement"]["stage"] == 1 and data["branch"]["block"] == "stage1_block2"
        assert data["matching"]["target"] == "stage2_block1"
    else:
        assert data["model"] == "tiny2"


def test_cli_explains_image_files(model_file, tmp_path):
    from PIL import Image

    image = tmp_path / "seven.png"
    Image.fromarray(np.eye(24, dtype=np.uint8) * 255).save(image)
    out = tmp_path / "out"
    assert main(["vis", str(model_file), "--method", "saliency", "--images", str(image),
                 "--class-index", "1", "--out", str(out)]) == 0
    data = json.loads((out / "saliency.json").read_text())
    assert data["class_indices"] == [1] and data["map_shape"] == [1, 8, 8]


@pytest.mark.parametrize("argv, message", [
    (["--block", "stage7_block1"], "stage1_block1, stage1_block2"),
    (["--class-index", "5"], "[0, 2]"),
    (["--method", "filters", "--filter", "99"], "[0, 7]"),
    (["--steps", "0"], "--steps"),
    (["--images", "{tmp}/none.png"], "not found"),
])
def test_cli_bad_input_is_one_error_line(model_file, tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--method" not in argv:
        argv = ["--method", "gradcam", *argv]
    assert main(["vis", str(model_file), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_cli_refuses_a_folder_with_files_without_force(model_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["vis", str(model_file), "--method", "gradcam", "--out", str(out)]
    assert main(argv) == 0
    assert main(argv) == 2  # our earlier results: replaced only with --force
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")  # a folder of the user's: never written into
    assert main(["vis", str(model_file), "--method", "gradcam", "--out", str(mine),
                 "--force"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["keep.txt"]
