"""Distributed training on TensorFlow's own engine: two workers on 127.0.0.1 train one model
(MultiWorkerMirroredStrategy), two replicas in one process (MirroredStrategy), and a launcher
that never leaves a worker hanging.

Multi-worker processes can hang forever (a worker whose peer never starts blocks in the
strategy constructor and ignores SIGTERM), so every process here runs under ``timeout -k``.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_resnet_lab  # noqa: F401  (registers the layers for loading)
from keras_resnet_lab.cli import main
from keras_resnet_lab.training.strategy import (
    free_ports,
    get_strategy,
    is_multi_worker,
    launch_local_workers,
    patch_for_multi_worker,
    tf_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env.pop("TF_CONFIG", None)
    return env


def _time_limit(base=170):
    """``base`` seconds on an idle machine, stretched by its load: with three test processes
    on two busy cores every worker gets a fraction of a core (capped at 10 minutes)."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] / cores
    return int(min(600, base * max(1.0, 1.0 + load)))


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory):
    """``train --workers 2``: resnet20 on 8x8 digits, 2 epochs (12 steps), bounded in time."""
    out = tmp_path_factory.mktemp("multiworker") / "run"
    limit = _time_limit()
    cmd = ["timeout", "-k", "10", str(limit), sys.executable, "-m", "keras_resnet_lab_cli",
           "train", "--model", "resnet20", "--dataset", "digits", "--image-size", "8",
           "--epochs", "2", "--batch-size", "256", "--out", str(out), "--quiet",
           "--workers", "2", "--worker-timeout", str(limit - 20)]
    try:
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                              timeout=limit + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"two-worker training timed out after {limit + 30} s (machine load "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if proc.returncode in (124, 137, -9) or "timeout after" in proc.stderr:
        pytest.fail(f"two-worker training timed out after {limit} s (machine load "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); its last output: "
                    + proc.stderr.strip()[-300:])
    return proc, out


def test_two_workers_end_with_identical_weights_and_a_lower_loss(two_worker_run):
    proc, out = two_worker_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    worker1 = out / ".workers" / "worker-1"
    chief = keras.models.load_model(out / "model.keras", compile=False)
    other = keras.models.load_model(worker1 / "model.keras", compile=False)
    assert len(chief.trainable_weights) == len(other.trainable_weights) > 0
    for a, b in zip(chief.trainable_weights, other.trainable_weights):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # bit-identical
    # Batch-norm moving statistics are per worker (each sees its shard of every batch), so
    # only the trainable weights are compared; BatchNormalization(synchronized=True) would
    # make them identical too.
    histories = [json.loads((d / "history.json").read_text())["epochs"] for d in (out, worker1)]
    losses = [[epoch["loss"] for epoch in h] for h in histories]
    assert len(losses[0]) == 2 and losses[0][1] < losses[0][0]
    # logs are averaged over the workers, so both workers report the same numbers
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    results = json.loads((out / "results.json").read_text())
    assert results["replicas"] == 2
    assert json.loads((worker1 / "results.json").read_text())["replicas"] == 2


MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_resnet_lab.models import cifar_network
    from keras_resnet_lab.training import fit, general_recipe, get_strategy

    strategy = get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype("int32")

    def build():
        keras.utils.set_random_seed(0)
        return cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3), num_classes=2)

    result = fit(build, (x, y), 3, general_recipe(base_lr=3e-2, warmup_epochs=0), sys.argv[1],
                 strategy=strategy, batch_size=16, verbose=0, seed=0)
    print(json.dumps({"replicas": result.num_replicas, "loss": result.history["loss"]}))
""")


def test_mirrored_strategy_trains_over_two_replicas(tmp_path):
    """Several GPUs on one machine: the same MirroredStrategy path, with two logical CPUs."""
    proc = subprocess.run(["timeout", "-k", "5", "100", sys.executable, "-c", MIRRORED,
                           str(tmp_path / "run")], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss"][-1] < report["loss"][0]


HANG = textwrap.dedent("""
    import json, os, signal, sys, time
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a worker blocked in a collective
    if index == int(sys.argv[1]):
        sys.exit(3)
    time.sleep(600)
""")


@pytest.mark.parametrize("failing, timeout, expected", [
    (1, 60, [-9, 3]),  # worker 1 fails: worker 0 (ignoring SIGTERM) is killed
    (-1, 1, [-9, -9]),  # nobody fails, nobody ends: the timeout stops both
])
def test_launcher_never_leaves_a_hanging_worker(failing, timeout, expected):
    start = time.monotonic()
    codes = launch_local_workers([sys.executable, "-c", HANG, str(failing)], 2, timeout=timeout,
                                 grace_s=1.0)
    assert codes == expected
    assert time.monotonic() - start < 15


def test_launcher_gives_each_worker_its_task(tmp_path):
    script = ("import json, os, sys; c = json.loads(os.environ['TF_CONFIG']); "
              "open(sys.argv[1] + str(c['task']['index']), 'w').write(json.dumps(c))")
    assert launch_local_workers([sys.executable, "-c", script, str(tmp_path / "w")], 3) == [0] * 3
    configs = [json.loads((tmp_path / f"w{i}").read_text()) for i in range(3)]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    workers = configs[0]["cluster"]["worker"]
    assert len(set(workers)) == 3 and all(w.startswith("127.0.0.1:") for w in workers)
    assert all(c["cluster"] == configs[0]["cluster"] for c in configs)


def test_cluster_helpers_and_single_process_strategies_are_untouched():
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p < 65536 for p in ports)
    assert json.loads(tf_config(["a:1", "b:2"], 1)) == {
        "cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="index must be in"):
        tf_config(["a:1"], 1)
    with pytest.raises(ValueError, match="devices applies to name='mirrored'"):
        get_strategy("default", devices=["/cpu:0"])
    strategy = get_strategy("default")
    assert not is_multi_worker(strategy)
    inp = keras.Input((2,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    step = model.train_step
    assert patch_for_multi_worker(model, (np.zeros((1, 2)), np.zeros(1)), strategy) is model
    assert model.train_step == step  # no patch outside multi-worker training


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers: must be >= 1"),
    (["--workers", "2", "--strategy", "mirrored"], "--strategy multiworker"),
    (["--workers", "2", "--worker-timeout", "0"], "--worker-timeout"),
])
def test_train_workers_bad_input_is_one_error_line(argv, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_train_workers_refuses_an_existing_tf_config(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config(["127.0.0.1:1"], 0))
    assert main(["train", "--out", str(tmp_path / "out"), "--workers", "2"]) == 2
    assert "TF_CONFIG is already set" in capsys.readouterr().err
