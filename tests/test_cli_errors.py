"""Every bad input to the command line is one ``error:`` line (exit 2) that names the option and
the value, answered before TensorFlow loads where it can be, and nothing is written for it."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet_lab  # noqa: F401  (registers the layers)
from keras_resnet_lab.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small saved model, an image, and a few bad inputs."""
    from keras_resnet_lab.models import cifar_network

    folder = tmp_path_factory.mktemp("files")
    keras.utils.set_random_seed(0)
    model = cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=10)
    model.save(folder / "m.keras")
    layer = model.get_layer("predictions")
    layer.kernel.assign(np.full(layer.kernel.shape, np.nan, "float32"))
    model.save(folder / "nan.keras")
    np.save(folder / "nan.npy", np.full((2, 8, 8, 3), np.nan, "float32"))
    (folder / "file.txt").write_text("a file, not a folder")
    return folder


#: (argv, words the one error line must contain). ``{m}``: a good model file, ``{f}``: a
#: plain file, ``{d}``: the fixture folder.
BAD = [
    (["train", "--dataset", "bogus"], ["--dataset", "bogus"]),
    (["train", "--drop-path", "1.5"], ["--drop-path", "1.5"]),
    (["train", "--drop-path", "nan"], ["--drop-path", "NaN"]),
    (["train", "--model", "resnet21"], ["--model", "resnet21"]),
    (["train", "--model", "resnet20", "--stem", "deep"], ["--stem", "deep", "resnet20"]),
    (["train", "--model", "highway", "--se-ratio", "0.25"], ["--se-ratio", "highway"]),
    (["train", "--epochs", "0"], ["--epochs", "0"]),
    (["train", "--batch-size", "-3"], ["--batch-size", "-3"]),
    (["train", "--lr", "-1"], ["--lr", "-1"]),
    (["train", "--lr", "inf"], ["--lr", "inf"]),
    (["train", "--se-ratio", "0"], ["--se-ratio", "0"]),
    (["train", "--image-size", "4"], ["--image-size", "4"]),
    (["train", "--seed", "-1"], ["--seed", "-1"]),
    (["train", "--workers", "0"], ["--workers", "0"]),
    (["train", "--worker-timeout", "5"], ["--worker-timeout", "--workers"]),
    (["train", "--strategy", "tpu"], ["--strategy", "tpu"]),
    (["train", "--resume"], ["--resume", "no interrupted run"]),
    (["train", "--resume", "--force"], ["--resume", "--force"]),
    (["train", "--resume", "{d}/none.keras"], ["--resume", "none.keras"]),
    (["train", "--resume", "{m}", "--model", "resnet56"], ["--resume", "--model"]),
    (["train", "--resume", "{m}", "--image-size", "16"], ["--resume", "(8, 8, 3)"]),
    (["train", "--dataset", "cifar10", "--data-dir", "{d}/tfds"], ["cifar10"]),
    (["analyze", "--experiment", "lesion"], ["--experiment lesion", "MODEL.keras"]),
    (["analyze", "{d}/none.keras", "--experiment", "lesion"], ["not found", "none.keras"]),
    (["analyze", "{m}", "--experiment", "paths", "--plain", "{m}"], ["--plain"]),
    (["analyze", "{m}", "--experiment", "lesion", "--epochs", "3"], ["--epochs"]),
    (["analyze", "{m}", "--experiment", "hessian"], ["hessian", "MODEL.keras"]),
    (["analyze", "{m}", "--experiment", "lesion", "--draws", "0"], ["--draws", "0"]),
    (["analyze", "{m}", "--experiment", "bogus"], ["--experiment", "bogus"]),
    (["vis", "{d}/none.keras", "--method", "gradcam"], ["not found"]),
    (["vis", "{m}", "--method", "gradcam", "--count", "0"], ["--count", "0"]),
    (["vis", "{m}", "--method", "gradcam", "--images", "{d}/none.png"], ["--images", "none.png"]),
    (["vis", "{m}", "--method", "gradcam", "--block", "stage9_block9"], ["stage9_block9"]),
    (["vis", "{d}/nan.keras", "--method", "gradcam"], ["NaN"]),
    (["export", "{d}/none.keras"], ["not found"]),
    (["export", "{m}", "--opset", "20"], ["--opset", "20"]),
    (["export", "{m}", "--tolerance", "nan"], ["--tolerance", "NaN"]),
    (["export", "{m}", "--sample", "{d}/none.npy"], ["--sample", "none.npy"]),
    (["export", "{m}", "--sample", "{d}/nan.npy"], ["--sample", "NaN"]),
    (["export", "{m}", "--preprocessing", "{{bad"], ["--preprocessing"]),
    (["lab", "--force", "--resume"], ["--force", "--resume"]),
    (["lab", "--depth", "21"], ["--depth", "21"]),
    (["lab", "--epochs", "0"], ["--epochs", "0"]),
]


def _argv(argv, files, out):
    argv = [a.format(m=files / "m.keras", d=files) for a in argv]
    return argv + ["--out", str(out)]


@pytest.mark.parametrize("argv, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_it_and_writes_nothing(argv, words, files, tmp_path,
                                                            capsys):
    out = tmp_path / "out"
    assert main(_argv(argv, files, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    for word in words:
        assert word in err[0], (word, err[0])
    assert not out.exists(), f"{argv} created --out"


def _console(args, env=None):
    """Run the console script in a fresh process; reports whether TensorFlow was imported."""
    code = ("import sys, keras_resnet_lab_cli\n"
            "try:\n    code = keras_resnet_lab_cli.main(sys.argv[1:])\n"
            "except SystemExit as stop:\n    code = stop.code\n"
            "print('TENSORFLOW', 'tensorflow' in sys.modules)\nsys.exit(code)")
    env = dict(os.environ if env is None else env, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, rc, shown", [
    (["--help"], 0, "train"),
    (["--version"], 0, keras_resnet_lab.__version__),
    (["train", "--help"], 0, "--drop-path"),
    (["train", "--out", "x", "--drop-path", "1.5"], 2, "--drop-path"),
    (["export", "none.keras", "--out", "x"], 2, "not found"),
])
def test_help_version_and_argument_errors_do_not_load_tensorflow(args, rc, shown, tmp_path):
    proc = _console(args)
    assert proc.returncode == rc, proc.stderr[-1000:]
    assert "TENSORFLOW False" in proc.stdout
    assert shown in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == (1 if rc else 0), proc.stderr


def test_errors_after_tensorflow_loads_are_one_line_without_its_logs(files, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes((files / "m.keras").read_bytes()[:500])
    proc = _console(["vis", str(bad), "--method", "saliency", "--out", str(tmp_path / "o")])
    assert proc.returncode == 2 and "TENSORFLOW True" in proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error:") and "bad.keras" in proc.stderr


@pytest.mark.parametrize("command", [
    ["train", "--epochs", "1"],
    ["lab", "--quick"],
    ["analyze", "--experiment", "hessian", "--quick"],
    ["analyze", "{m}", "--experiment", "similarity"],
    ["vis", "{m}", "--method", "saliency"],
    ["export", "{m}", "--format", "onnx"],
])
@pytest.mark.parametrize("where", ["below_a_file", "read_only"])
def test_an_unwritable_out_is_one_error_line(command, where, files, tmp_path, capsys):
    if where == "below_a_file":
        out = files / "file.txt" / "out"
    else:
        disk = tmp_path / "ro"
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                                  str(disk)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
        out = disk / "out"
    try:
        argv = [a.format(m=files / "m.keras") for a in command] + ["--out", str(out)]
        assert main(argv) == 2
    finally:
        if where == "read_only":
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert ("file.txt" in err[0]) if where == "below_a_file" else ("Read-only" in err[0])


def test_force_never_writes_into_or_replaces_a_folder_of_the_users(files, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "onnx").mkdir()
    (mine / "onnx" / "model.onnx").write_text("my own model")
    for argv in (["train", "--epochs", "1", "--force"], ["lab", "--quick", "--force"],
                 ["analyze", "--experiment", "hessian", "--force"],
                 ["vis", "{m}", "--method", "saliency", "--force"],
                 ["export", "{m}", "--format", "onnx", "--force"]):
        argv = [a.format(m=files / "m.keras") for a in argv] + ["--out", str(mine)]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("did not write" in err[0] or "not an artifact" in err[0]), err
    assert sorted(p.name for p in mine.rglob("*")) == ["model.onnx", "notes.txt", "onnx"]
    assert (mine / "onnx" / "model.onnx").read_text() == "my own model"


def test_export_force_replaces_its_own_artifact_only(files, tmp_path, capsys):
    out = tmp_path / "exports"
    argv = ["export", str(files / "m.keras"), "--format", "onnx", "--out", str(out)]
    assert main(argv) == 0
    first = json.loads((out / "onnx" / "manifest.json").read_text())["created"]
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    assert json.loads((out / "onnx" / "manifest.json").read_text())["created"] >= first
    assert sorted(os.listdir(out)) == ["onnx"]
