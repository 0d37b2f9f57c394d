"""Every file the package writes loads after ``import keras_resnet_lab`` alone, in a fresh
process, with ``compile=True``: optimizers, learning-rate schedules and losses included."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_resnet_lab.saving import MODULES

ROOT = pathlib.Path(__file__).resolve().parents[1]

LOAD = """
import json, sys
import keras
import keras_resnet_lab  # registers everything the package writes
report = {}
for path in sys.argv[1:]:
    model = keras.models.load_model(path, compile=True, safe_mode=True)
    rate = model.optimizer.get_config()["learning_rate"]
    report[path] = [type(model.optimizer).__name__,
                    rate["class_name"] if isinstance(rate, dict) else "float",
                    type(model.loss).__name__]
print(json.dumps(report))
"""


def test_every_registering_module_is_imported_by_the_package():
    registering = set()
    for path in (ROOT / "keras_resnet_lab").rglob("*.py"):
        if "register_keras_serializable" in path.read_text() and path.name != "saving.py":
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            registering.add(module)
    assert registering == set(MODULES)


def _train(out, recipe, loss=None):
    from keras_resnet_lab.models import cifar_network
    from keras_resnet_lab.training import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")
    fit(lambda: cifar_network(1, widths=(4,), input_shape=(8, 8, 3), num_classes=3),
        (x, y), 1, recipe, out, batch_size=16, verbose=0, loss=loss)
    return out / "model.keras"


def test_models_written_by_fit_train_and_the_lab_load_with_compile_in_a_fresh_process(
        tmp_path):
    from keras_resnet_lab.cli import main
    from keras_resnet_lab.lab.jobs import recipe
    from keras_resnet_lab.training import (
        SparseCategoricalCrossentropyWithSmoothing,
        general_recipe,
        he_cifar_recipe,
    )

    paths = [
        _train(tmp_path / "he", he_cifar_recipe(weight_decay_mode="l2")),
        _train(tmp_path / "general", general_recipe(warmup_epochs=0)),
        _train(tmp_path / "lab_sgd", recipe("sgd", 1)),  # what the lab's networks are fit with
        _train(tmp_path / "lab_adam", recipe("adam", 1)),
        _train(tmp_path / "smooth", general_recipe(warmup_epochs=0),
               loss=SparseCategoricalCrossentropyWithSmoothing(from_logits=True,
                                                                label_smoothing=0.1)),
    ]
    assert main(["train", "--image-size", "8", "--epochs", "1", "--batch-size", "64",
                 "--quiet", "--out", str(tmp_path / "cli")]) == 0
    paths.append(tmp_path / "cli" / "model.keras")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", LOAD, *map(str, paths)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    kinds = {pathlib.Path(p).parent.name: v for p, v in report.items()}
    assert kinds["he"][0] == "CoupledWeightDecaySGD" and kinds["he"][1] == "StepDecay"
    assert kinds["lab_sgd"][1] == "StepDecay" and kinds["cli"][1] == "StepDecay"
    assert kinds["general"][1] == kinds["lab_adam"][1] == "WarmupCosineDecay"
    assert kinds["smooth"][2] == "SparseCategoricalCrossentropyWithSmoothing"


@pytest.mark.parametrize("module", MODULES)
def test_each_registering_module_registers_under_the_package_name(module):
    import importlib

    source = pathlib.Path(importlib.import_module(module).__file__).read_text()
    assert re.findall(r"register_keras_serializable\(package=\"([^\"]+)\"\)", source) and all(
        p == "keras_resnet_lab" for p in re.findall(
            r"register_keras_serializable\(package=\"([^\"]+)\"\)", source))
