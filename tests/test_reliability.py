"""Interrupted and failing work: resume after SIGKILL, stop on NaN, bad files, no overwrites."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest

import keras_resnet_lab  # noqa: F401  (registers the layers)
from keras_resnet_lab.cli import main

TRAIN = [sys.executable, "-m", "keras_resnet_lab.cli", "train", "--model", "resnet20",
         "--dataset", "digits", "--image-size", "16", "--epochs", "4", "--recipe", "general",
         "--lr", "0.003", "--batch-size", "32", "--quiet"]


def _epochs_done(out):
    try:
        with open(out / "history.json", encoding="utf-8") as f:
            return [r["epoch"] for r in json.load(f)["epochs"]]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


def test_sigkill_mid_epoch_then_resume(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(TRAIN + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_epochs_done(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert _epochs_done(out) == [1, 2], "training did not reach epoch 2 in time"
    time.sleep(0.3)  # well inside epoch 3 (an epoch takes seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "model.keras").exists()
    assert (out / "backup").is_dir()
    # every file left behind is complete: JSON parses, the backup's weights load
    for path in out.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        assert ".tmp" not in path.name, f"partial write left behind: {path}"
    resumed = subprocess.run(TRAIN + ["--out", str(out)], env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    assert _epochs_done(out) == [1, 2, 3, 4]
    model = keras.models.load_model(out / "model.keras", compile=False, safe_mode=True)
    assert tuple(model.output.shape) == (None, 10)
    assert json.loads((out / "results.json").read_text())["epochs"] == 4
    assert not (out / "backup").exists()


def test_nan_loss_stops_at_once_and_keeps_the_last_good_backup(tmp_path):
    from keras_resnet_lab.models import cifar_network
    from keras_resnet_lab.training import fit, general_recipe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = (np.arange(64) % 3).astype("int32")

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:  # from the second epoch on, the weights are NaN
                layer = self.model.get_layer("predictions")
                layer.kernel.assign(np.full(layer.kernel.shape, np.nan, "float32"))

    result = fit(lambda: cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=3),
                 (x, y), 3, general_recipe(warmup_epochs=0), tmp_path, batch_size=16,
                 verbose=0, callbacks=[PoisonAfterFirstEpoch()])
    assert result.terminated and "epoch 2, step 1" in result.terminated
    assert not (tmp_path / "model.keras").exists()  # the diverged model is not saved
    meta = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1  # the last good epoch is kept to resume from


def test_analyses_refuse_non_finite_models(digits16):
    from keras_resnet_lab.analysis import lesion_study
    from keras_resnet_lab.models import cifar_network

    (_, _), (x, y) = digits16
    model = cifar_network(1, widths=(4,), input_shape=x.shape[1:])
    layer = model.get_layer("predictions")
    layer.kernel.assign(np.full(layer.kernel.shape, np.inf, "float32"))
    with pytest.raises(ValueError, match="not finite"):
        lesion_study(model, (x[:16], y[:16]), progress=False)


@pytest.mark.parametrize("command", [
    ["export", "{model}", "--format", "onnx", "--out", "{out}"],
    ["vis", "{model}", "--method", "saliency", "--out", "{out}"],
    ["analyze", "{model}", "--experiment", "similarity", "--out", "{out}"],
])
@pytest.mark.parametrize("kind", ["missing", "truncated", "not_a_model"])
def test_bad_model_files_give_one_error_line(command, kind, tmp_path, capsys):
    path = tmp_path / "model.keras"
    if kind == "truncated":
        good = tmp_path / "good.keras"
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(good)
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "not_a_model":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    argv = [a.format(model=path, out=tmp_path / "out") for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert "Traceback" not in "\n".join(err)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="model file not found"):
        main(["--debug", "export", str(tmp_path / "none.keras"), "--out", str(tmp_path / "o")])


def test_unsafe_lambda_models_are_refused(tmp_path, capsys):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    assert main(["export", str(tmp_path / "lambda.keras"), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err
