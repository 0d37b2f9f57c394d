"""The command line: train end to end on the embedded data, and one-line errors."""

import json
import subprocess
import sys

import keras
import pytest

import keras_resnet_lab  # noqa: F401  (registers the layers for loading)
from keras_resnet_lab.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    code = main(["train", "--model", "resnet20", "--dataset", "digits", "--image-size", "16",
                 "--epochs", "2", "--batch-size", "128", "--recipe", "general", "--lr", "0.003",
                 "--out", str(out), "--quiet"])
    return code, out


def test_train_writes_model_history_curves_and_results(trained_run):
    code, out = trained_run
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "resnet20" and results["epochs"] == 2
    assert 0.3 < results["test_accuracy"] <= 1.0  # well above chance (0.1) after 2 epochs
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    assert history["epochs"][1]["loss"] < history["epochs"][0]["loss"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "backup").exists()
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert tuple(model.input.shape) == (None, 16, 16, 3)


def test_train_refuses_a_finished_run_without_force(trained_run, capsys):
    _, out = trained_run
    assert main(["train", "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist"], "digits"),
    (["--model", "resnet21"], "known models"),
    (["--epochs", "0"], "--epochs"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}"], "cifar10"),
])
def test_train_bad_input_is_one_error_line(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path / "tfds")) for a in argv]
    assert main(["train", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_help_lists_the_commands_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "keras_resnet_lab.cli", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "train" in proc.stdout
