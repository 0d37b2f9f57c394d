"""What a model was trained on travels with it (keras_resnet_lab.data.preprocessing): ``train``
writes ``preprocessing.json`` beside ``model.keras``, ``export`` and the lab record it in every
manifest, and ``export/inspect_onnx.py --image`` turns a digit PNG (white strokes on black,
0-255) into the input the network was trained on, so it predicts the digit.

One tiny network is trained once by ``keras-resnet-lab train`` on 8x8 digits (module fixture).
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
ort = pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")

from keras_resnet_lab.cli import main  # noqa: E402
from keras_resnet_lab.data import (  # noqa: E402
    CIFAR10_MEAN,
    CIFAR10_STD,
    PREPROCESSING_FILE,
    dataset_preprocessing,
    digit_layout,
    digits_preprocessing,
    load_digits,
    read_preprocessing,
    write_preprocessing,
)
from keras_resnet_lab.export import load_manifest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSUMER = os.path.join(ROOT, "export", "inspect_onnx.py")
SIZE = 8


def _consumer_module():
    spec = importlib.util.spec_from_file_location("inspect_onnx", CONSUMER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digit_png(path, grey):
    """Write a digit image in [0, 1] as an 8-bit greyscale PNG: white strokes on black."""
    Image.fromarray(np.round(grey * 255).astype(np.uint8), mode="L").save(path)


def _as_json(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("size", [8, 16])
def test_digits_preprocessing_reproduces_load_digits_input(size, tmp_path):
    spec = digits_preprocessing(size)
    assert spec["color"] == "grayscale" and spec["scale"] == 1 / 255
    assert dataset_preprocessing("digits", size) == spec
    _, (raw, _) = load_digits(size, normalize=False)
    _, (normalized, _) = load_digits(size)
    mean, std = np.asarray(spec["mean"]), np.asarray(spec["std"])
    # The formula and its constants are exact on the 0-255 pixel values ...
    x = (raw[:20].astype(np.float64) * 255 * spec["scale"] - mean) / std
    np.testing.assert_allclose(x, normalized[:20], atol=1e-5, rtol=0)
    # ... and a PNG of them (8 bits) is as close as 8 bits allow: half a grey level.
    consumer = _consumer_module()
    bound = 0.5 * spec["scale"] / std.min() + 1e-5
    input_spec = {"shape": [None, size, size, 3], "preprocessing": spec}
    for i in range(5):
        _digit_png(tmp_path / f"{i}.png", raw[i, ..., 0])
        batch, _, notes = consumer.load_image(str(tmp_path / f"{i}.png"), input_spec)
        assert batch.shape == (1, size, size, 3) and "standardized" in notes[0]
        assert np.abs(batch[0] - normalized[i]).max() <= bound
    digit, border = digit_layout(size)
    assert f"{digit}x{digit}" in spec["description"] and "white strokes on black" in \
        spec["description"]
    assert raw[:, :border].max() == 0  # black border: the layout the description states


def test_dataset_preprocessing_of_the_other_datasets():
    cifar = dataset_preprocessing("cifar10")
    assert cifar["mean"] == [float(v) for v in CIFAR10_MEAN]
    assert cifar["std"] == [float(v) for v in CIFAR10_STD]
    assert cifar["color"] == "rgb" and "32x32 as stored" in cifar["description"]
    assert "resized from 32x32 to 16x16" in dataset_preprocessing("cifar100", 16)["description"]
    assert "resized to 256, centre crop 224x224" in \
        dataset_preprocessing("imagenet2012")["description"]
    assert "32x32" in dataset_preprocessing("digits")["description"]  # the default size
    with pytest.raises(ValueError, match="name must be one of .*'mnist'"):
        dataset_preprocessing("mnist")


def test_read_and_write_preprocessing(tmp_path):
    assert read_preprocessing(tmp_path / "model.keras") is None
    path = write_preprocessing(tmp_path, digits_preprocessing(SIZE))
    assert path == str(tmp_path / PREPROCESSING_FILE)
    assert read_preprocessing(tmp_path / "model.keras") == digits_preprocessing(SIZE)
    (tmp_path / PREPROCESSING_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        read_preprocessing(tmp_path / "model.keras")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny network trained on 8x8 digits by ``keras-resnet-lab train``: its --out."""
    from keras_resnet_lab.models import cifar_network

    root = tmp_path_factory.mktemp("train")
    keras.utils.set_random_seed(0)
    cifar_network(1, widths=(8, 16), input_shape=(SIZE, SIZE, 3), num_classes=10,
                  name="tiny_digits").save(root / "tiny.keras")
    out = root / "run"
    assert main(["train", "--resume", str(root / "tiny.keras"), "--dataset", "digits",
                 "--image-size", str(SIZE), "--epochs", "3", "--batch-size", "64",
                 "--recipe", "general", "--lr", "0.01", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_its_preprocessing_beside_the_model(trained_run):
    assert {"model.keras", "results.json", PREPROCESSING_FILE} <= set(os.listdir(trained_run))
    with open(trained_run / PREPROCESSING_FILE, encoding="utf-8") as handle:
        assert json.load(handle) == _as_json(digits_preprocessing(SIZE))
    assert read_preprocessing(trained_run / "model.keras") == dataset_preprocessing("digits",
                                                                                     SIZE)


def test_export_records_it_and_inspect_predicts_the_digit_of_a_png(trained_run, tmp_path,
                                                                   capsys):
    out = tmp_path / "exports"
    assert main(["export", str(trained_run / "model.keras"), "--format", "onnx",
                 "--out", str(out)]) == 0
    assert f"recorded beside the model in {trained_run / PREPROCESSING_FILE}" in \
        capsys.readouterr().out
    manifest = load_manifest(out / "onnx")
    assert manifest.input["preprocessing"] == _as_json(digits_preprocessing(SIZE))

    model = keras.models.load_model(trained_run / "model.keras")
    _, (raw, _) = load_digits(SIZE, normalize=False)
    _, (x_test, y_test) = load_digits(SIZE)
    logits = model.predict(x_test, verbose=0)
    ranked = np.sort(logits, axis=1)
    confident = np.flatnonzero((logits.argmax(1) == y_test) & (ranked[:, -1] - ranked[:, -2] > 1))
    chosen = [int(i) for i in confident[:: max(1, len(confident) // 6)][:6]]
    assert len(chosen) >= 3, "the tiny network learned too little to pick digits from"
    consumer = _consumer_module()
    for i in chosen:
        png = tmp_path / f"digit{i}.png"
        _digit_png(png, raw[i, ..., 0])
        stats = tmp_path / f"digit{i}.json"
        assert consumer.main([str(out / "onnx"), "--image", str(png), "--json", str(stats)]) == 0
        with open(stats, encoding="utf-8") as handle:
            assert json.load(handle)["output"]["argmax"] == [int(y_test[i])]
    # And as a deployment runs it: a fresh process without TensorFlow or this library.
    stubs = tmp_path / "stubs"
    for name in ("tensorflow", "keras", "keras_resnet_lab"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name} blocked')\n")
    i = chosen[0]
    proc = subprocess.run([sys.executable, CONSUMER, str(out / "onnx"), "--image",
                           str(tmp_path / f"digit{i}.png")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(stubs)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"argmax [{int(y_test[i])}]" in proc.stdout
    assert "preprocessed as the manifest records: embedded digits at 8x8" in proc.stdout


def test_lab_export_records_the_preprocessing(trained_run, tmp_path):
    import shutil

    from keras_resnet_lab.lab.pipeline import Lab, LabConfig

    lab = Lab(LabConfig(out=str(tmp_path / "lab"), quick=True), progress=None)
    for kind in ("residual", "plain"):
        os.makedirs(tmp_path / "lab" / "train" / kind)
    shutil.copy(trained_run / "model.keras", tmp_path / "lab" / "train" / "residual")
    numbers = lab.step_export()
    want = _as_json(digits_preprocessing(lab.config.image_size))
    for fmt in ("savedmodel", "onnx"):
        assert numbers[fmt]["passed"]
        manifest = load_manifest(tmp_path / "lab" / "export" / fmt)
        assert manifest.input["preprocessing"] == want
        assert manifest.parity["input"] == "given sample"  # real test digits
    for kind in ("residual", "plain"):
        folder = tmp_path / "lab" / "train" / kind
        assert read_preprocessing(folder / "model.keras") == want


def test_a_broken_recorded_preprocessing_is_one_error_line(trained_run, tmp_path, capsys):
    import shutil

    shutil.copy(trained_run / "model.keras", tmp_path / "model.keras")
    (tmp_path / PREPROCESSING_FILE).write_text("{broken")
    argv = ["export", str(tmp_path / "model.keras"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and PREPROCESSING_FILE in err[0] and "--preprocessing" in err[0]
    assert not (tmp_path / "out").exists()
    given = json.dumps({"scale": 1 / 255, "color": "grayscale"})
    assert main(argv + ["--format", "onnx", "--no-intermediate", "--preprocessing",
                        given]) == 0  # --preprocessing wins over the recorded file
    assert load_manifest(tmp_path / "out" / "onnx").input["preprocessing"]["mean"] is None
