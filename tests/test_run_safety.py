"""A finished run is never lost and a damaged one never accepted: kills at the end of training,
damaged backups, a full disk, two runs on one folder, leftovers of killed runs."""

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from test_reliability import _fit_tiny  # the tiny fit of the interrupted-run tests

import keras_resnet_lab  # noqa: F401  (registers the layers)
from keras_resnet_lab import outdir
from keras_resnet_lab.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["train", "--model", "resnet20", "--dataset", "digits", "--image-size", "8",
         "--epochs", "2", "--recipe", "general", "--lr", "0.003", "--batch-size", "64",
         "--quiet"]

#: Runs the CLI with one step of the end of training replaced by SIGKILL of the process.
KILL_AT = textwrap.dedent("""
    import os, signal, sys
    import keras_resnet_lab.commands.train as train
    import keras_resnet_lab.training.loop as loop

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[1] == "model":
        loop.save_model_atomic = die        # killed while model.keras is being written
    else:
        train._write_results = die          # killed after model.keras, before results.json
    from keras_resnet_lab.cli import main
    main(sys.argv[2:])
""")


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return env


def _history(out):
    return json.loads((out / "history.json").read_text())["epochs"]


@pytest.mark.parametrize("step", ["model", "results"])
def test_a_kill_at_the_end_of_training_leaves_the_backup_and_resume_finishes(step, tmp_path,
                                                                             capsys):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_AT, step, *TRAIN, "--out", str(out)],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # at the instant of the kill the run had its backup (and, for "results", its model)
    assert (out / "backup" / "latest.weights.h5").is_file()
    assert (out / "model.keras").exists() == (step == "results")
    epochs = _history(out)
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert main(TRAIN + ["--out", str(out)]) == 0  # a plain start resumes (or --resume)
    assert "resuming the run" in capsys.readouterr().out
    assert _history(out) == epochs  # nothing trained again: the same records, times included
    assert json.loads((out / "results.json").read_text())["epochs"] == 2
    assert not (out / "backup").exists()
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert tuple(model.output.shape) == (None, 10)


def test_resume_finishes_a_run_whose_model_was_written_but_not_its_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    (out / "results.json").unlink()  # as if killed between the model and the results
    weights = keras.models.load_model(out / "model.keras", compile=False).get_weights()
    capsys.readouterr()
    assert main(TRAIN + ["--resume", "--out", str(out)]) == 0
    assert "finishing the run" in capsys.readouterr().out
    again = json.loads((out / "results.json").read_text())
    assert again["test_accuracy"] == pytest.approx(results["test_accuracy"], abs=1e-6)
    for a, b in zip(weights, keras.models.load_model(out / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)  # not trained again


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt  # an interrupted run: the backup of that epoch stays


@pytest.mark.parametrize("damage, message", [
    ("missing_weights", "weights file latest.weights.h5 is missing"),
    ("empty_weights", "weights file latest.weights.h5 is empty"),
    ("missing_metadata", "metadata training_metadata.json .* is missing"),
    ("epoch_beyond", "claims 9 finished epochs, more than the run's 4"),
    ("epoch_zero", "claims epoch 0"),
    ("history_short", "history.json lacks epoch"),
])
def test_a_damaged_backup_is_refused_naming_the_folder(damage, message, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit_tiny(tmp_path, 4, callbacks=[_StopAfter(2)])
    backup = tmp_path / "backup"
    if damage == "missing_weights":
        (backup / "latest.weights.h5").unlink()
    elif damage == "empty_weights":
        (backup / "latest.weights.h5").write_bytes(b"")
    elif damage == "missing_metadata":
        (backup / "training_metadata.json").unlink()
    elif damage in ("epoch_beyond", "epoch_zero"):
        epoch = 9 if damage == "epoch_beyond" else 0
        (backup / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))
    else:
        (tmp_path / "history.json").write_text(json.dumps(
            {"format": "keras_resnet_lab.history/1", "epochs": [{"epoch": 1}]}))
    with pytest.raises(ValueError, match=f"training backup in {backup}: .*{message}"):
        _fit_tiny(tmp_path, 4)
    assert backup.is_dir() and not (tmp_path / "model.keras").exists()


def test_a_damaged_backup_is_one_error_line_in_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _fit_tiny(out, 4, callbacks=[_StopAfter(1)])
    (out / "backup" / "latest.weights.h5").unlink()
    assert main(TRAIN + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing" in err[0], err


@contextlib.contextmanager
def _small_disk(folder, size, options=""):
    """A tmpfs of ``size`` mounted at ``folder`` (skips the test where mounting is not
    allowed)."""
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs",
                            str(folder)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_during_the_backup_is_one_error_line_and_keeps_the_last_backup(tmp_path):
    with _small_disk(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        argv = [a if a != "general" else "he" for a in TRAIN]
        proc = subprocess.run([sys.executable, "-m", "keras_resnet_lab_cli", *argv, "--out",
                               str(out)], env=_env(), capture_output=True, text=True,
                              timeout=600)
        err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert len(err) == 1 and "not enough free disk space for the training backup" in err[0]
        meta = json.loads((out / "backup" / "training_metadata.json").read_text())
        assert meta["epoch"] == 1  # the last good backup is intact
        assert (out / "backup" / "latest.weights.h5").stat().st_size > 1_000_000
        assert not (out / "backup.new").exists() and not (out / "model.keras").exists()


def test_a_write_the_disk_cannot_hold_is_refused_before_it_starts(tmp_path, monkeypatch,
                                                                   capsys):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(outdir.shutil, "disk_usage",
                        lambda path: usage._replace(free=200_000))
    assert main(TRAIN + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not enough free disk space" in err[0] and "MiB free" in err[0]
    assert not (tmp_path / "run" / "model.keras").exists()


def test_an_export_into_a_nearly_full_disk_is_one_error_line(tmp_path):
    from keras_resnet_lab.models import cifar_resnet

    cifar_resnet(20, input_shape=(8, 8, 3)).save(tmp_path / "m.keras")
    with _small_disk(tmp_path / "disk", "2m") as disk:
        proc = subprocess.run([sys.executable, "-m", "keras_resnet_lab_cli", "export",
                               str(tmp_path / "m.keras"), "--out", str(disk / "exports")],
                              env=_env(), capture_output=True, text=True, timeout=600)
        err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        assert proc.returncode == 2 and len(err) == 1, proc.stderr[-2000:]
        assert "not enough free disk space for the export" in err[0]
        assert os.listdir(disk) in ([], ["exports"]) and not list((disk).rglob("*.onnx"))


HOLD = textwrap.dedent("""
    import sys, time
    from keras_resnet_lab.outdir import folder_lock
    with folder_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.mark.parametrize("command", [
    TRAIN,
    ["lab", "--quick"],
    ["analyze", "--experiment", "hessian", "--quick", "--force"],
])
def test_a_second_run_on_a_folder_in_use_is_refused_at_once(command, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)],
                              env=dict(_env(), KERAS_RESNET_LAB_DEFER_IMPORTS="1"),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(command + ["--out", str(out)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by process {holder.pid}" in err[0], err
    assert sorted(os.listdir(out)) == [outdir.LOCK_NAME]  # nothing written by the second


def test_an_export_to_an_artifact_in_use_is_refused(tmp_path, capsys):
    from keras_resnet_lab.models import cifar_network

    cifar_network(1, widths=(4,), input_shape=(8, 8, 3)).save(tmp_path / "m.keras")
    out = tmp_path / "exports"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.replace("folder_lock(sys.argv[1])",
                                            "folder_lock(sys.argv[1], '.onnx.lock')"),
         str(out)], env=dict(_env(), KERAS_RESNET_LAB_DEFER_IMPORTS="1"),
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["export", str(tmp_path / "m.keras"), "--format", "onnx", "--out",
                     str(out)]) == 2
    finally:
        holder.kill()
        holder.wait()
    assert f"in use by process {holder.pid}" in capsys.readouterr().err
    assert not (out / "onnx").exists()


def test_leftovers_of_killed_runs_are_removed_at_the_next_start(tmp_path):
    from keras_resnet_lab.export import export_model
    from keras_resnet_lab.models import cifar_network

    run = tmp_path / "run"
    _fit_tiny(run, 1)
    leftovers = [run / ".history-1a2b3c4d.tmp.json", run / ".model-0badf00d.tmp.keras",
                 run / ".curves-12345678.tmp.png"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (run / ".backup-0a0b0c0d.trash").mkdir()
    _fit_tiny(run, 1, resume=False)
    assert not [p for p in leftovers if p.exists()] and not (run / ".backup-0a0b0c0d.trash"
                                                            ).exists()
    exports = tmp_path / "exports"
    (exports / ".onnx-89abcdef.tmp").mkdir(parents=True)
    (exports / ".onnx-89abcdef.tmp" / "model.onnx").write_bytes(b"partial")
    model = cifar_network(1, widths=(4,), input_shape=(8, 8, 3))
    export_model(model, exports, ("onnx",))
    assert sorted(os.listdir(exports)) == ["onnx"]


def test_a_loss_that_diverges_in_the_first_epoch_says_there_is_nothing_to_resume(tmp_path,
                                                                                 capsys):
    out = tmp_path / "run"
    argv = [a if a != "0.003" else "1e12" for a in TRAIN] + ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss is nan at epoch 1" in err[0], err
    assert "nothing to resume" in err[0] and "last good epoch" not in err[0]
    assert not (out / "backup").exists() and not (out / "model.keras").exists()
