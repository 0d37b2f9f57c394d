"""LiteRT export (keras_resnet_lab.export.tflite): a ``features`` signature whose outputs carry
the block names, float32 parity and int8 top-1 agreement measured with the LiteRT interpreter
(ai-edge-litert), the same manifest, atomic write and overwrite rules as the other formats, and
``keras-resnet-lab export --format tflite/all --quantize``.

One tiny network (ResNet-8 at 8x8, batch norms with non-trivial statistics) is exported once
as float32 (module fixture); the other tests convert it again only where they must.
"""

import json
import os
import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from keras_resnet_lab.cli import main  # noqa: E402
from keras_resnet_lab.export import (  # noqa: E402
    ExportParityError,
    export_model,
    export_tflite,
    features_model,
    load_manifest,
)
from keras_resnet_lab.export import tflite as tflite_module  # noqa: E402

NAMES = ["stem", "stage1_block1", "stage2_block1", "stage3_block1", "output"]
CLASSES = 4


def tiny_model():
    """ResNet-8 on 8x8x3, four classes, batch norms with non-trivial statistics."""
    from keras_resnet_lab.models import cifar_resnet

    keras.utils.set_random_seed(0)
    model = cifar_resnet(8, input_shape=(8, 8, 3), num_classes=CLASSES)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "moving_mean" in weight.path or weight.path.endswith("beta"):
            weight.assign(rng.normal(0, 0.2, shape).astype("float32"))
        elif "moving_variance" in weight.path or weight.path.endswith("gamma"):
            weight.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
    return model


def _keras_features(model, x):
    features, outputs = features_model(model)
    return {o.name: np.asarray(v) for o, v in zip(outputs, features(x, training=False))}


def _run(file, x):
    runner = Interpreter(model_path=str(file)).get_signature_runner("features")
    return {name: np.array(value) for name, value in runner(input=x).items()}


@pytest.fixture(scope="module")
def float_export(tmp_path_factory):
    """``(model, artifact folder, manifest)`` of the float32 export."""
    model = tiny_model()
    path = tmp_path_factory.mktemp("tflite") / "tflite"
    manifest = export_tflite(model, path, preprocessing={"scale": 1 / 255, "mean": 0.5,
                                                         "std": 0.25})
    return model, path, manifest


def test_float_outputs_carry_block_names_with_parity_at_any_batch(float_export):
    model, path, manifest = float_export
    assert sorted(os.listdir(path)) == ["manifest.json", "model.tflite"]  # no scratch left
    interpreter = Interpreter(model_path=str(path / "model.tflite"))
    signatures = interpreter.get_signature_list()
    assert list(signatures) == ["features"]  # not serving_default with one output
    assert signatures["features"]["inputs"] == ["input"]
    assert sorted(signatures["features"]["outputs"]) == sorted(NAMES)  # not output_0, ...
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, 8, 8, 3]
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 8, 8, 3)).astype("float32")
        got, want = _run(path / "model.tflite", x), _keras_features(model, x)
        assert got["stage2_block1"].shape == (batch, 4, 4, 32)  # NHWC kept
        for name in NAMES:
            scale = max(1.0, float(np.abs(want[name]).max()))
            np.testing.assert_allclose(got[name], want[name], atol=1e-4 * scale, rtol=0)
        assert np.abs(got["stage2_block1"]).max() > 0.1  # real values, not zeros


def test_float_manifest_fields(float_export):
    model, path, manifest = float_export
    assert load_manifest(path).to_dict() == manifest.to_dict()
    artifact = manifest.artifact
    assert artifact["format"] == "tflite" and artifact["file"] == "model.tflite"
    assert artifact["signature"] == "features" and artifact["input_name"] == "input"
    assert artifact["output_names"] == NAMES and artifact["quantization"] == "none"
    assert artifact["size_bytes"] == os.path.getsize(path / "model.tflite")
    assert [o["name"] for o in manifest.outputs] == NAMES
    assert manifest.outputs[1]["layer_type"] == "ResidualBlock"
    assert manifest.input["shape"] == [None, 8, 8, 3]
    assert manifest.input["preprocessing"]["mean"] == [0.5]
    assert manifest.versions["ai_edge_litert"] and manifest.versions["tensorflow"]
    parity = manifest.parity
    assert parity["artifact"] == "tflite" and parity["criterion"] == "max_abs_diff"
    assert parity["passed"] and parity["tolerance"] == 1e-4 and parity["batch_size"] == 8
    assert set(parity["max_abs_diff"]) == set(NAMES)
    assert 0 < parity["worst_diff"] < 1e-4 * max(1, max(parity["max_abs_reference"].values()))
    assert parity["top1_agreement"] is None and parity["logits_drift"] is None


def test_int8_replaces_our_artifact_and_records_agreement_drift_and_size(float_export,
                                                                        tmp_path):
    model, float_path, float_manifest = float_export
    ours = tmp_path / "ours"
    shutil.copytree(float_path, ours)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        export_tflite(model, ours, quantize=True)
    manifest = export_tflite(model, ours, quantize=True, intermediate=False, overwrite=True)
    assert sorted(os.listdir(ours)) == ["manifest.json", "model.tflite"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []  # no .old, no .tmp
    assert load_manifest(ours).to_dict() == manifest.to_dict()
    artifact, parity = manifest.artifact, manifest.parity
    assert artifact["quantization"] == "dynamic_range_int8"
    assert artifact["output_names"] == ["output"] and artifact["intermediate"] is False
    assert artifact["size_bytes"] == os.path.getsize(ours / "model.tflite")
    assert artifact["size_bytes"] < 0.5 * float_manifest.artifact["size_bytes"]
    assert parity["criterion"] == "top1_agreement" and parity["passed"]
    assert parity["batch_size"] == 32 and parity["min_agreement"] == 0.9  # the defaults
    assert 0.9 <= parity["top1_agreement"] <= 1.0
    drift = parity["max_abs_diff"]["output"] / parity["max_abs_reference"]["output"]
    assert parity["logits_drift"] == pytest.approx(drift)
    assert 0 < drift < 0.2  # int8 weights: it moves, but little
    x = np.random.default_rng(0).standard_normal((32, 8, 8, 3)).astype("float32")
    got = _run(ours / "model.tflite", x)
    assert list(got) == ["output"]
    agreement = np.mean(got["output"].argmax(1) == model(x).numpy().argmax(1))
    assert agreement == pytest.approx(parity["top1_agreement"])  # what was recorded


def test_int8_below_min_agreement_fails_and_leaves_nothing(float_export, tmp_path,
                                                           monkeypatch):
    model, float_path, _ = float_export
    flat = (float_path / "model.tflite").read_bytes()
    real = tflite_module.tflite_outputs

    def drifting(path, x):  # the artifact changes its mind on the first example
        found = real(path, x)
        found["output"][0] = np.roll(found["output"][0], 1)
        return found

    # The conversion is not what this checks: the float flatbuffer stands in for it.
    monkeypatch.setattr(tflite_module, "convert_tflite", lambda *args, **kwargs: flat)
    monkeypatch.setattr(tflite_module, "tflite_outputs", drifting)
    target = tmp_path / "new" / "int8"
    with pytest.raises(ExportParityError, match=r"agrees with Keras on 31 of 32 .*below "
                                                r"min_agreement 1 .*--sample") as info:
        export_tflite(model, target, quantize=True, min_agreement=1.0)
    report = info.value.report
    assert report.top1_agreement == pytest.approx(31 / 32) and not report.passed
    assert report.logits_drift > 0
    assert os.listdir(tmp_path) == []  # not the artifact, not the staging folder, not new/


def test_quantize_refused_without_class_scores_and_bad_arguments(tmp_path):
    from keras_resnet_lab.models import cifar_network

    keras.utils.set_random_seed(0)
    headless = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), include_top=False,
                             name="headless")
    with pytest.raises(ValueError, match=r"`quantize` needs .*class scores.*'headless'.*"
                                         r"\[None, 4, 4, 8\]"):
        export_tflite(headless, tmp_path / "a", quantize=True)
    with pytest.raises(ValueError, match="`min_agreement` must lie in"):
        export_tflite(tiny_model(), tmp_path / "b", quantize=True, min_agreement=1.5)
    with pytest.raises(ValueError, match="`quantize` must be True or False, got .yes."):
        export_tflite(tiny_model(), tmp_path / "c", quantize="yes")
    with pytest.raises(ValueError, match="`quantize` applies to the 'tflite' format"):
        export_model(tiny_model(), tmp_path / "d", formats=("onnx",), quantize=True)
    assert os.listdir(tmp_path) == []


def test_overwrite_refuses_a_user_folder(float_export, tmp_path):
    model, _, _ = float_export
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_tflite(model, user)
    with pytest.raises(FileExistsError, match="not an artifact of keras_resnet_lab"):
        export_tflite(model, user, overwrite=True)
    assert os.listdir(user) == ["notes.txt"] and (user / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["user"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """The tiny model saved as .keras, with the preprocessing train records beside it."""
    from keras_resnet_lab.data import digits_preprocessing, write_preprocessing

    folder = tmp_path_factory.mktemp("model")
    tiny_model().save(folder / "model.keras")
    write_preprocessing(folder, digits_preprocessing(8))
    return folder / "model.keras"


def test_cli_exports_all_formats_quantized_and_optimized(model_file, tmp_path, capsys):
    from keras_resnet_lab.data import digits_preprocessing

    out = tmp_path / "exports"
    assert main(["export", str(model_file), "--format", "all", "--quantize", "--optimize",
                 "--min-agreement", "0.75", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "preprocessing: recorded beside the model" in text
    assert "top-1 agreement" in text and "(min 0.75)" in text and "Transpose" in text
    assert sorted(os.listdir(out)) == ["onnx", "savedmodel", "tflite"]
    want = json.loads(json.dumps(digits_preprocessing(8)))
    for kind in ("savedmodel", "onnx", "tflite"):
        manifest = load_manifest(out / kind)
        assert manifest.parity["passed"]
        assert manifest.input["preprocessing"] == want  # from preprocessing.json
    tflite = load_manifest(out / "tflite")
    assert tflite.artifact["quantization"] == "dynamic_range_int8"
    assert tflite.artifact["output_names"] == NAMES
    signatures = Interpreter(model_path=str(out / "tflite" / "model.tflite")).get_signature_list()
    assert sorted(signatures["features"]["outputs"]) == sorted(NAMES)
    assert tflite.parity["min_agreement"] == 0.75 and tflite.parity["top1_agreement"] >= 0.75
    optimization = load_manifest(out / "onnx").artifact["optimization"]
    assert optimization["tool"] == "onnxsim"
    assert optimization["transpose_after"] < optimization["transpose_before"]
    assert load_manifest(out / "savedmodel").artifact["format"] == "savedmodel"


@pytest.mark.parametrize("argv, words", [
    (["--format", "onnx", "--quantize"], ["--quantize", "tflite", "--format onnx"]),
    (["--format", "both", "--quantize"], ["--quantize", "tflite", "savedmodel, onnx"]),
    (["--format", "tflite", "--optimize"], ["--optimize", "onnx", "--format tflite"]),
    (["--format", "tflite", "--min-agreement", "0.95"], ["--min-agreement", "--quantize"]),
    (["--format", "tflite", "--quantize", "--min-agreement", "1.5"], ["--min-agreement",
                                                                     "1.5"]),
    (["--format", "tflite", "--quantize", "--min-agreement", "nan"], ["--min-agreement",
                                                                     "NaN"]),
    (["--format", "lite"], ["--format", "lite"]),
], ids=["quantize-onnx", "quantize-both", "optimize-tflite", "agreement-alone",
        "agreement-above-1", "agreement-nan", "unknown-format"])
def test_cli_argument_errors_are_one_line_and_write_nothing(model_file, tmp_path, capsys,
                                                            argv, words):
    out = tmp_path / "out"
    assert main(["export", str(model_file), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    for word in words:
        assert word in err[0], (word, err[0])
    assert not out.exists()


def test_cli_says_what_to_install(model_file, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    missing = {"ai_edge_litert", "onnxsim"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in missing else real(name, *a))
    for argv, words in ((["--format", "tflite"], ["ai_edge_litert", "ai-edge-litert>=2.0,<3"]),
                        (["--format", "onnx", "--optimize"], ["onnxsim", "onnxsim>=0.8,<0.9"])):
        assert main(["export", str(model_file), "--out", str(tmp_path / "o"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "not installed" in err
        for word in words:
            assert word in err
    assert os.listdir(tmp_path) == []
