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
         "--dataset", "digits", "--image-size", "8", "--epochs", "4", "--recipe", "general",
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
    time.sleep(0.2)  # inside epoch 3: epoch 2 just ended, and an 8x8 epoch lasts far longer
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
        lesion_study(model, (x[:16], y[:16]), progress_bar=False)


def _bad_model_file(kind, tmp_path):
    """A ``.keras`` path that is missing, truncated or a zip without a model."""
    path = tmp_path / "model.keras"
    if kind == "truncated":
        good = tmp_path / "good.keras"
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(good)
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "not_a_model":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    return path


@pytest.mark.parametrize("command", [
    ["export", "{model}", "--format", "onnx", "--out", "{out}"],
    ["vis", "{model}", "--method", "saliency", "--out", "{out}"],
    ["analyze", "{model}", "--experiment", "similarity", "--out", "{out}"],
])
@pytest.mark.parametrize("kind", ["missing", "truncated", "not_a_model"])
def test_bad_model_files_give_one_error_line(command, kind, tmp_path, capsys):
    path = _bad_model_file(kind, tmp_path)
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


def _fit_tiny(out, epochs, **kwargs):
    from keras_resnet_lab.models import cifar_network
    from keras_resnet_lab.training import fit, general_recipe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")
    return fit(lambda: cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=3),
               (x, y), epochs, general_recipe(warmup_epochs=0), out, batch_size=16, verbose=0,
               **kwargs)


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt  # an interrupted run: the backup of epoch 1 stays


@pytest.mark.parametrize("damage", ["truncated_weights", "bad_metadata"])
def test_a_corrupt_backup_gives_one_clear_error(damage, tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        _fit_tiny(tmp_path, 3, callbacks=[_StopAfterFirstEpoch()])
    backup = tmp_path / "backup"
    weights = next(backup.glob("*.weights.h5"))
    if damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        (backup / "training_metadata.json").write_text('{"epoch": ')
    with pytest.raises(ValueError, match="cannot resume from the training backup .*corrupt"):
        _fit_tiny(tmp_path, 3)
    assert backup.is_dir()  # the damaged backup is left for the user to inspect, not deleted


def test_train_resume_flag_needs_an_interrupted_run(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--resume",
                 "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no interrupted run" in err[0], err
    assert main(["train", "--resume", "--force", "--out", str(tmp_path / "x")]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "truncated", "not_a_model"])
def test_train_resume_bad_model_files_give_one_error_line(kind, tmp_path, capsys):
    path = _bad_model_file(kind, tmp_path)
    assert main(["train", "--resume", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert not (tmp_path / "out").exists()  # nothing was written for a refused command


def test_train_resume_a_saved_model_trains_it_further(tmp_path, capsys):
    from keras_resnet_lab.models import cifar_network

    model = cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=10, name="tiny")
    model.save(tmp_path / "tiny.keras")
    before = [w.copy() for w in model.get_weights()]
    argv = ["train", "--resume", str(tmp_path / "tiny.keras"), "--dataset", "digits",
            "--image-size", "8", "--epochs", "1", "--batch-size", "64", "--quiet",
            "--out", str(tmp_path / "more")]
    assert main(argv) == 0
    assert "training " + str(tmp_path / "tiny.keras") + " further" in capsys.readouterr().out
    trained = keras.models.load_model(tmp_path / "more" / "model.keras", compile=False)
    assert trained.name == "tiny" and trained.count_params() == model.count_params()
    assert any(not np.allclose(a, b) for a, b in zip(before, trained.get_weights()))
    # the architecture comes from the file: a model name or option cannot change it
    assert main(argv[:-1] + [str(tmp_path / "other"), "--model", "resnet56"]) == 2
    assert "--model cannot change it" in capsys.readouterr().err
    # a model whose input does not fit the dataset is refused with the shapes named
    assert main([a if a != "8" else "16" for a in argv[:-1]] + [str(tmp_path / "o2")]) == 2
    assert "(8, 8, 3)" in capsys.readouterr().err


def test_resuming_with_other_arguments_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
            "--batch-size", "64", "--quiet", "--out", str(out)]
    assert main(base) == 0
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["model"] == "resnet20" and recorded["image_size"] == 8
    (out / "backup").mkdir()  # as if the next run had been interrupted
    assert main(base + ["--model", "resnet32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model='resnet20'" in err[0] and "--force" in err[0], err
    assert json.loads((out / "run.json").read_text()) == recorded  # left as it was
