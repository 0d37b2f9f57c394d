"""keras-hub ResNets (backbones and image classifiers) converted to block chains compute the
same function: outputs and every stage's feature map, on random weights with non-trivial
batch-norm statistics. Backbones are random-init (presets need internet)."""

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from keras_resnet_lab.models import blocks, from_keras_hub  # noqa: E402

#: The largest max relative difference allowed: ``max|ours - keras-hub| / max|keras-hub|``.
TOLERANCE = 1e-5

IMAGENET = dict(stackwise_num_filters=[64, 128, 256, 512], stackwise_num_strides=[1, 2, 2, 2])
CLASSIC = dict(input_conv_filters=[64], input_conv_kernel_sizes=[7])
DEEP = dict(input_conv_filters=[32, 32, 64], input_conv_kernel_sizes=[3, 3, 3])

#: name -> keras-hub ResNetBackbone arguments: ResNet-18/50/50-vd/50-v2 at full depth (the
#: presets' layouts), and the other block kinds with fewer blocks.
LAYOUTS = {
    "resnet18": dict(CLASSIC, **IMAGENET, stackwise_num_blocks=[2, 2, 2, 2],
                     block_type="basic_block"),
    "resnet50": dict(CLASSIC, **IMAGENET, stackwise_num_blocks=[3, 4, 6, 3],
                     block_type="bottleneck_block"),
    "resnet50_vd": dict(DEEP, **IMAGENET, stackwise_num_blocks=[3, 4, 6, 3],
                        block_type="bottleneck_block_vd"),
    "resnet50_v2": dict(CLASSIC, **IMAGENET, stackwise_num_blocks=[3, 4, 6, 3],
                        block_type="bottleneck_block", use_pre_activation=True),
    "resnet_vd_basic": dict(DEEP, **IMAGENET, stackwise_num_blocks=[2, 1, 1, 1],
                            block_type="basic_block_vd"),
    "resnet_v2_basic": dict(CLASSIC, **IMAGENET, stackwise_num_blocks=[2, 1, 1, 1],
                            block_type="basic_block", use_pre_activation=True),
    # keras-hub builds v2 "_vd" blocks only without a strided stack (their projection does
    # not pool); a single 5x5 stem convolution and a narrow second stage on the way.
    "resnet_v2_vd": dict(input_conv_filters=[16], input_conv_kernel_sizes=[5],
                         stackwise_num_filters=[64, 24], stackwise_num_strides=[1, 1],
                         stackwise_num_blocks=[2, 1], block_type="basic_block_vd",
                         use_pre_activation=True),
}

TINY = dict(input_conv_filters=[8, 8, 16], input_conv_kernel_sizes=[3, 3, 3],
            stackwise_num_filters=[64, 8], stackwise_num_strides=[1, 2],
            stackwise_num_blocks=[1, 2], block_type="bottleneck_block_vd")


def _randomize(model, seed=0):
    """Non-trivial batch-norm statistics, so that a missed or misplaced norm would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.0, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
        elif isinstance(layer, keras.Model):  # a classifier's backbone
            _randomize(layer, seed + 1)


def _backbone(layout, size=32):
    backbone = keras_hub.models.ResNetBackbone(image_shape=(size, size, 3), **layout)
    _randomize(backbone)
    return backbone


def _relative(ours, reference):
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape
    scale = np.abs(reference).max()
    assert scale > 1e-3  # a non-degenerate comparison
    return float(np.abs(ours - reference).max() / scale)


def _images(size=32, n=2, seed=1):
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


def _stage_outputs(model):
    last = {}
    for info in blocks(model):
        last[info.stage] = info.layer.output
    return keras.Model(model.input, [last[s] for s in sorted(last)])


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_backbone_conversion_is_exact(name):
    layout = LAYOUTS[name]
    backbone = _backbone(layout)
    model = from_keras_hub(backbone)
    x = _images()
    figures = {"output": _relative(model(x), backbone(x))}
    # every stage's feature map: keras-hub's pyramid outputs are its stacks' last blocks
    source_stages = keras.Model(backbone.input, list(backbone.pyramid_outputs.values()))(x)
    for s, (ours, theirs) in enumerate(zip(_stage_outputs(model)(x), source_stages), start=1):
        figures[f"stage{s}"] = _relative(ours, theirs)
    print(f"\n{name}: max relative difference " + ", ".join(
        f"{k} {v:.1e}" for k, v in figures.items()))
    assert max(figures.values()) <= TOLERANCE, figures
    assert len(figures) == len(layout["stackwise_num_blocks"]) + 1
    assert model.count_params() == backbone.count_params()  # no bias to fold: same weights
    assert [b.name for b in blocks(model)] == [
        f"stage{s + 1}_block{b + 1}"
        for s, n in enumerate(layout["stackwise_num_blocks"]) for b in range(n)]
    first = blocks(model)[0].layer
    vd = layout["block_type"].endswith("_vd")
    assert first.bottleneck == layout["block_type"].startswith("bottleneck")
    assert first.preact == layout.get("use_pre_activation", False)
    assert first.avg_down == vd
    assert tuple(model.output.shape[1:]) == tuple(backbone.output.shape[1:])
    if len(layout["stackwise_num_blocks"]) == 4 and vd:
        assert model.get_layer("stage1_block2").subsample is None  # identity shortcut
        stage2 = model.get_layer("stage2_block1")
        assert isinstance(stage2.subsample, keras.layers.AveragePooling2D)


@pytest.mark.parametrize("layout", [
    TINY, dict(input_conv_filters=[16], input_conv_kernel_sizes=[7],
               stackwise_num_filters=[64, 8], stackwise_num_strides=[1, 2],
               stackwise_num_blocks=[1, 1], block_type="bottleneck_block",
               use_pre_activation=True)], ids=["vd", "v2"])
def test_open_input_size_converts_and_matches_on_odd_sizes(layout):
    """Presets have ``image_shape=(None, None, 3)``; odd sizes check the padding of the
    strided convolutions and pools (v2's -inf-padded stem pool, vd's "same" average pool)."""
    backbone = keras_hub.models.ResNetBackbone(**layout)
    _randomize(backbone)
    model = from_keras_hub(backbone)
    assert tuple(model.input.shape) == (None, None, None, 3)
    for size in (17, 24):
        x = _images(size)
        assert _relative(model(x), backbone(x)) <= TOLERANCE


@pytest.mark.parametrize("pooling, dropout, activation", [("avg", 0.0, None),
                                                          ("max", 0.25, "softmax")])
def test_image_classifier_converts_with_its_head(pooling, dropout, activation):
    backbone = keras_hub.models.ResNetBackbone(image_shape=(32, 32, 3), **TINY)
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=5, pooling=pooling, dropout=dropout,
        activation=activation)
    _randomize(classifier)
    model = from_keras_hub(classifier, name="converted")
    x = _images()
    relative = _relative(model(x), classifier(x))
    print(f"\nclassifier ({pooling}, dropout {dropout}, {activation}): max relative "
          f"difference {relative:.1e}")
    assert relative <= TOLERANCE
    assert model.name == "converted"
    assert model.count_params() == classifier.count_params()
    assert model.get_layer(f"{pooling}_pool") is not None
    assert model.get_layer("predictions").get_config()["activation"] == (activation or "linear")
    names = [layer.name for layer in model.layers]
    assert ("output_dropout" in names) == (dropout > 0)


def test_preprocessor_runs_outside_the_converted_model():
    """The converted model equals ``classifier(x)``; ``classifier.predict`` preprocesses first
    (as documented): applying the image converter gives the same predictions."""
    backbone = keras_hub.models.ResNetBackbone(image_shape=(32, 32, 3), **TINY)
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(32, 32), scale=[1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)],
        offset=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    preprocessor = keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter)
    classifier = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=3,
                                                        preprocessor=preprocessor)
    _randomize(classifier)
    model = from_keras_hub(classifier)
    images = np.random.default_rng(2).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    expected = classifier.predict(images, verbose=0)
    ours = model(np.asarray(classifier.preprocessor.image_converter(images)))
    assert _relative(ours, expected) <= TOLERANCE
    assert _relative(model(images), classifier(images)) <= TOLERANCE


def test_converted_model_analyses_visualizes_exports_and_reloads(tmp_path):
    from keras_resnet_lab.analysis import lesion_study
    from keras_resnet_lab.export import export_onnx

    backbone = keras_hub.models.ResNetBackbone(image_shape=(16, 16, 3), **TINY)
    classifier = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=3)
    _randomize(classifier)
    model = from_keras_hub(classifier)
    x = _images(16, n=6)
    y = np.argmax(np.asarray(model(x)), axis=-1)  # the intact model is right on every example
    result = lesion_study(model, (x, y), k_values=[1], draws=2, swap_counts=(),
                          progress_bar=False)
    names = [b.name for b in blocks(model)]
    assert names == ["stage1_block1", "stage2_block1", "stage2_block2"]
    assert result.block_names == names and result.intact_error == 0.0
    assert len(result.single_loss) == 3 and np.all(np.isfinite(result.single_loss))
    assert max(abs(loss - result.intact_loss) for loss in result.single_loss) > 1e-4

    from keras_resnet_lab.vis import cam, saliency

    # Grad-CAM keeps only positive evidence: on random weights a map may be all zero
    maps = cam(model, x[:2], block="stage2_block1").maps
    assert maps.shape == (2, 16, 16) and np.all(np.isfinite(maps)) and maps.min() >= 0
    grads = saliency(model, x[:2]).maps
    assert grads.shape[:3] == (2, 16, 16) and np.all(np.isfinite(grads)) and grads.max() > 0

    manifest = export_onnx(model, tmp_path / "onnx", sample=x[:2])
    assert manifest.parity["passed"]
    assert [o["name"] for o in manifest.outputs] == ["stem", *names, "output"]

    path = tmp_path / "converted.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_refusals_name_what_is_unsupported():
    with pytest.raises(ValueError, match="from_keras_applications"):
        from_keras_hub(keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3)))
    with pytest.raises(ValueError, match="ResNetBackbone or"):
        from_keras_hub(keras.Sequential([keras.layers.Dense(2)]))
    backbone = keras_hub.models.ResNetBackbone(image_shape=(16, 16, 3), **TINY)
    backbone.block_type = "bottleneck_block_se"
    with pytest.raises(ValueError, match="block_type.*bottleneck_block_se"):
        from_keras_hub(backbone)
    backbone.block_type = TINY["block_type"]
    backbone.data_format = "channels_first"
    with pytest.raises(ValueError, match="data_format.*channels_first"):
        from_keras_hub(backbone)
    backbone.data_format = "channels_last"
    backbone.input_conv_kernel_sizes = [3, 5, 3]
    with pytest.raises(ValueError, match="input_conv_kernel_sizes"):
        from_keras_hub(backbone)
    backbone.input_conv_kernel_sizes = [3, 3, 3]
    backbone.get_layer("stack1_block0_1_bn").epsilon = 1e-3
    with pytest.raises(ValueError, match="epsilon"):
        from_keras_hub(backbone)
