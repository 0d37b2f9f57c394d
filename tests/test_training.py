"""Tests for keras_resnet_lab.training: schedules, recipes, compile, callbacks, fit, resume."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_lab.outdir import LOCK_NAME, MARKER_NAME
from keras_resnet_lab.training import (
    AtomicModelCheckpoint,
    CoupledWeightDecaySGD,
    JsonHistory,
    Recipe,
    SparseCategoricalCrossentropyWithSmoothing,
    StepDecay,
    TerminateOnNonFinite,
    WarmupCosineDecay,
    compile_model,
    fit,
    general_recipe,
    get_strategy,
    he_cifar_recipe,
    is_chief,
    load_history,
    output_applies_softmax,
    plot_history,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Keras 3.15 saving (model.save / save_weights, also inside BackupAndRestore) calls np.array() on
# TF variables, which NumPy 2 flags; it comes from Keras, not from this package.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


# ----------------------------------------------------------------------------- helpers


def tiny_model(softmax=False, seed=0, activation="relu"):
    """A 2-layer functional model on 8x8x1 inputs, 2 classes."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Dense(16, activation=activation)(x)
    out = keras.layers.Dense(2, activation="softmax" if softmax else None)(x)
    return keras.Model(inp, out, name="tiny")


def separable_data(n=256, seed=0):
    """Two classes whose pixel mean is shifted by +-0.5: linearly separable with high margin."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype("int32")
    x = rng.normal(0.0, 1.0, size=(n, 8, 8, 1)) + (2.0 * y - 1.0)[:, None, None, None] * 0.5
    return x.astype("float32"), y


def lr_at(schedule, step):
    return float(schedule(step))


def no_temp_files(folder):
    return [f for f in os.listdir(folder) if ".tmp" in f] == []


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class InterruptAfter(keras.callbacks.Callback):
    """Raise at the end of 0-based epoch ``epoch`` (after the backup was written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch + 1}")


# ----------------------------------------------------------------------------- schedules


def test_he_step_schedule_values_at_milestones():
    s = StepDecay(0.1, total_steps=1000)
    assert s.boundaries == [500, 750]
    expected = {0: 0.1, 499: 0.1, 500: 0.01, 749: 0.01, 750: 0.001, 999: 0.001}
    for step, lr in expected.items():
        assert lr_at(s, step) == pytest.approx(lr, rel=1e-6), step

    # The recipe builds the same schedule over steps_per_epoch * epochs steps.
    sched = he_cifar_recipe().learning_rate(steps_per_epoch=10, epochs=100)
    assert isinstance(sched, StepDecay)
    for step, lr in expected.items():
        assert lr_at(sched, step) == pytest.approx(lr, rel=1e-6), step


def test_he_schedule_with_constant_warmup():
    # He et al.: ResNet-110 warms up at 0.01 (~400 iterations), then 0.1.
    sched = he_cifar_recipe(warmup_epochs=4).learning_rate(steps_per_epoch=100, epochs=10)
    assert sched.warmup_steps == 400
    for step, lr in {0: 0.01, 399: 0.01, 400: 0.1, 499: 0.1, 500: 0.01, 750: 0.001}.items():
        assert lr_at(sched, step) == pytest.approx(lr, rel=1e-6), step
    custom = he_cifar_recipe(warmup_epochs=0.5, warmup_lr=0.02).learning_rate(100, 10)
    assert lr_at(custom, 49) == pytest.approx(0.02) and lr_at(custom, 50) == pytest.approx(0.1)


def test_cosine_schedule_with_linear_warmup_values():
    s = WarmupCosineDecay(1e-3, total_steps=110, warmup_steps=10)
    expected = {
        0: 0.0,
        5: 0.5e-3,
        10: 1e-3,
        35: 1e-3 * 0.5 * (1 + math.cos(math.pi / 4)),
        60: 0.5e-3,
        110: 0.0,
        500: 0.0,  # clipped past the end
    }
    for step, lr in expected.items():
        assert lr_at(s, step) == pytest.approx(lr, abs=1e-9), step

    sched = general_recipe("adamw", base_lr=1e-3, warmup_epochs=1).learning_rate(10, 11)
    assert isinstance(sched, WarmupCosineDecay)
    for step, lr in expected.items():
        assert lr_at(sched, step) == pytest.approx(lr, abs=1e-9), step

    floor = WarmupCosineDecay(1.0, total_steps=100, final_lr=0.1)
    assert lr_at(floor, 0) == pytest.approx(1.0) and lr_at(floor, 100) == pytest.approx(0.1)
    assert lr_at(floor, 50) == pytest.approx(0.55)


def test_constant_schedule():
    r = general_recipe("sgd", base_lr=0.05, schedule="constant", warmup_epochs=1)
    sched = r.learning_rate(steps_per_epoch=4, epochs=3)
    values = [lr_at(sched, i) for i in range(12)]
    np.testing.assert_allclose(values[:4], [0.0, 0.0125, 0.025, 0.0375], atol=1e-8)
    np.testing.assert_allclose(values[4:], [0.05] * 8, rtol=1e-6)


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(
            0.1,
            1000,
            milestones=(0.3, 0.6, 0.9),
            gamma=0.2,
            warmup_steps=7,
            warmup="linear",
            warmup_lr=0.01,
        ),
        WarmupCosineDecay(3e-3, 500, warmup_steps=50, warmup_lr=1e-4, final_lr=1e-5),
    ],
)
def test_schedules_round_trip_config_and_serialization(schedule):
    steps = [0, 3, 7, 49, 50, 299, 300, 600, 899, 900, 999]
    clone = type(schedule).from_config(schedule.get_config())
    assert clone.get_config() == schedule.get_config()
    for step in steps:
        assert lr_at(clone, step) == lr_at(schedule, step)
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    )
    assert type(restored) is type(schedule)
    for step in steps:
        assert lr_at(restored, step) == lr_at(schedule, step)


def test_model_saved_with_optimizer_reloads_schedule(tmp_path):
    model = compile_model(tiny_model(), he_cifar_recipe(warmup_epochs=1), 10, 8)
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    sched = loaded.optimizer._learning_rate
    assert isinstance(sched, StepDecay)
    assert sched.get_config() == model.optimizer._learning_rate.get_config()
    assert lr_at(sched, 0) == pytest.approx(0.01) and lr_at(sched, 40) == pytest.approx(0.01)


def test_schedule_argument_validation():
    with pytest.raises(ValueError, match=r"milestones.*increasing"):
        StepDecay(0.1, 100, milestones=(0.75, 0.5))
    with pytest.raises(ValueError, match=r"milestones.*1\.5"):
        StepDecay(0.1, 100, milestones=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"warmup_steps.*total_steps=100.*got 100"):
        WarmupCosineDecay(0.1, 100, warmup_steps=100)
    with pytest.raises(ValueError, match=r"`warmup` must be one of .*'cosine'"):
        StepDecay(0.1, 100, warmup_steps=5, warmup="cosine")
    with pytest.raises(ValueError, match=r"`base_lr` must lie in \(0, .*-0.1"):
        StepDecay(-0.1, 100)
    with pytest.raises(ValueError, match=r"`total_steps` must be a positive integer.*0"):
        WarmupCosineDecay(0.1, 0)


# ----------------------------------------------------------------------------- recipes


def test_recipe_is_json_serializable_and_round_trips():
    for recipe in (he_cifar_recipe(warmup_epochs=1), general_recipe("sgd", label_smoothing=0.1)):
        d = recipe.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert Recipe.from_dict(d) == recipe
    d = he_cifar_recipe().to_dict()
    assert d["optimizer_name"] == "sgd" and d["milestones"] == [0.5, 0.75]
    assert d["weight_decay"] == 1e-4 and d["momentum"] == 0.9 and d["nesterov"] is False
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_dict({**d, "batch": 3})


def test_recipe_optimizer_hyperparameters():
    opt = he_cifar_recipe().optimizer(steps_per_epoch=391, epochs=164)
    assert type(opt) is keras.optimizers.SGD
    assert opt.momentum == 0.9 and opt.nesterov is False
    assert opt.weight_decay == pytest.approx(1e-4)
    assert opt._learning_rate.total_steps == 391 * 164
    assert he_cifar_recipe().optimizer(391, 164) is not opt  # fresh each call

    coupled = he_cifar_recipe(weight_decay_mode="l2").optimizer(391, 164)
    assert isinstance(coupled, CoupledWeightDecaySGD)
    assert coupled.l2 == pytest.approx(1e-4) and coupled.weight_decay is None
    assert coupled.momentum == 0.9

    adamw = general_recipe("adamw", weight_decay=0.05).optimizer(10, 20)
    assert type(adamw) is keras.optimizers.AdamW
    assert adamw.weight_decay == pytest.approx(0.05)
    sgd = general_recipe("sgd").optimizer(10, 20)
    assert sgd.nesterov is True and sgd.weight_decay == pytest.approx(5e-4)


def _two_sgd_steps(recipe):
    opt = recipe.optimizer(steps_per_epoch=10, epochs=10)
    var = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    grad = np.array([0.5, 0.5], dtype="float32")
    for _ in range(2):
        opt.apply_gradients([(keras.ops.convert_to_tensor(grad), var)])
    return np.array(var.numpy())


def test_weight_decay_update_rules_decoupled_and_coupled():
    lr, wd, mu = 0.1, 0.01, 0.9
    w0 = np.array([1.0, -2.0])
    g = np.array([0.5, 0.5])
    kwargs = {
        "base_lr": lr,
        "weight_decay": wd,
        "schedule": "constant",
        "momentum": mu,
        "nesterov": False,
    }

    # Keras weight_decay (decoupled): w -= lr*wd*w outside the momentum buffer.
    w, v = w0.copy(), np.zeros(2)
    for _ in range(2):
        w = w - lr * wd * w
        v = mu * v - lr * g
        w = w + v
    got = _two_sgd_steps(general_recipe("sgd", warmup_epochs=0, **kwargs))
    np.testing.assert_allclose(got, w, rtol=1e-6)

    # Coupled L2 (Caffe/PyTorch, He et al.): g += wd*w before momentum.
    w, v = w0.copy(), np.zeros(2)
    for _ in range(2):
        v = mu * v - lr * (g + wd * w)
        w = w + v
    recipe = Recipe(optimizer_name="sgd", weight_decay_mode="l2", **kwargs)
    np.testing.assert_allclose(_two_sgd_steps(recipe), w, rtol=1e-6)


def test_coupled_sgd_serializes():
    opt = CoupledWeightDecaySGD(0.1, momentum=0.9, l2=1e-4)
    clone = CoupledWeightDecaySGD.from_config(opt.get_config())
    assert clone.l2 == pytest.approx(1e-4) and clone.momentum == 0.9
    with pytest.raises(ValueError, match="weight_decay must not be given"):
        CoupledWeightDecaySGD(0.1, weight_decay=1e-4)


def test_recipe_argument_validation():
    with pytest.raises(ValueError, match=r"`optimizer_name` must be one of 'sgd', 'adamw'"):
        Recipe(optimizer_name="rmsprop")
    with pytest.raises(ValueError, match=r"`optimizer` must be one of .*'lamb'"):
        general_recipe("lamb")
    with pytest.raises(ValueError, match=r"`schedule` must be one of .*'poly'"):
        general_recipe(schedule="poly")
    with pytest.raises(ValueError, match=r"weight_decay_mode='l2'.*adamw"):
        Recipe(optimizer_name="adamw", weight_decay_mode="l2")
    with pytest.raises(ValueError, match=r"`label_smoothing` must lie in \[0, 1\)"):
        general_recipe(label_smoothing=1.0)
    # automatic warm-up: 5 epochs, or 10% of a shorter run
    assert general_recipe().learning_rate(10, 100).warmup_steps == 50
    assert general_recipe().learning_rate(10, 20).warmup_steps == 20
    assert general_recipe().learning_rate(10, 1).warmup_steps == 1
    with pytest.raises(ValueError, match=r"warmup_epochs must be shorter than the run"):
        general_recipe(warmup_epochs=5).optimizer(steps_per_epoch=10, epochs=5)
    with pytest.raises(ValueError, match=r"`steps_per_epoch` must be a positive integer.*0"):
        he_cifar_recipe().optimizer(steps_per_epoch=0, epochs=5)


# ----------------------------------------------------------------------------- compile_model


def _identity_classifier(final):
    """Input(3) -> Dense(3, identity kernel) [-> final]: the model outputs x or softmax(x)."""
    inp = keras.Input((3,))
    dense = keras.layers.Dense(
        3,
        use_bias=False,
        kernel_initializer="identity",
        activation="softmax" if final == "dense_softmax" else None,
    )
    out = dense(inp)
    if final == "softmax_layer":
        out = keras.layers.Softmax()(out)
    elif final == "activation_softmax":
        out = keras.layers.Activation("softmax")(out)
    return keras.Model(inp, out)


@pytest.mark.parametrize(
    ("final", "is_softmax"),
    [
        ("logits", False),
        ("dense_softmax", True),
        ("softmax_layer", True),
        ("activation_softmax", True),
    ],
)
def test_compile_model_detects_logits_or_softmax(final, is_softmax):
    model = _identity_classifier(final)
    assert output_applies_softmax(model) is is_softmax
    compile_model(model, he_cifar_recipe(), steps_per_epoch=1, epochs=1)
    x = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    y = np.array([2])
    expected = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3.0  # -log softmax(x)[2]
    loss = float(model.loss(y, model(x)))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_compile_model_loss_via_evaluate_and_label_smoothing():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], dtype="float32")
    y = np.array([2, 0])
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    plain = float(np.mean(-logp[np.arange(2), y]))
    model = compile_model(_identity_classifier("dense_softmax"), he_cifar_recipe(), 1, 1)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(plain, rel=1e-5) and acc == pytest.approx(0.5)

    eps = 0.1
    target = np.full((2, 3), eps / 3) + (1 - eps) * np.eye(3)[y]
    smoothed = float(np.mean(-(target * logp).sum(axis=1)))
    for final in ("logits", "dense_softmax"):
        model = compile_model(
            _identity_classifier(final), general_recipe(label_smoothing=eps), 1, 1
        )
        assert isinstance(model.loss, SparseCategoricalCrossentropyWithSmoothing)
        assert model.loss.from_logits is (final == "logits")
        assert float(model.loss(y, model(x))) == pytest.approx(smoothed, rel=1e-5)
        assert float(model.loss(y[:, None], model(x))) == pytest.approx(smoothed, rel=1e-5)

    with pytest.raises(ValueError, match="label_smoothing only configures the default loss"):
        compile_model(
            _identity_classifier("logits"),
            general_recipe(label_smoothing=eps),
            1,
            1,
            loss="sparse_categorical_crossentropy",
        )
    with pytest.raises(ValueError, match="recipe must be a Recipe"):
        compile_model(_identity_classifier("logits"), {"base_lr": 0.1}, 1, 1)


# ----------------------------------------------------------------------------- callbacks


def test_json_history_replaces_resumed_epochs_and_writes_atomically(tmp_path):
    path = tmp_path / "history.json"
    old = [{"epoch": e, "loss": 1.0 / e, "lr": 0.1, "time_s": 1.0} for e in (1, 2, 3)]
    path.write_text(json.dumps({"epochs": old}))
    model = compile_model(tiny_model(), he_cifar_recipe(), 10, 4)

    cb = JsonHistory(str(path), resume=True)
    cb.set_model(model)
    cb.on_train_begin()
    assert [r["epoch"] for r in cb.records] == [1, 2, 3]
    cb.on_epoch_begin(1)  # resumed at 0-based epoch 1: old epochs 2 and 3 are replaced
    cb.on_epoch_end(1, {"loss": np.float32(0.25), "accuracy": 0.5, "val_loss": float("nan")})
    records = load_history(str(path))
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[0] == old[0]
    assert records[1]["loss"] == 0.25 and records[1]["accuracy"] == 0.5
    assert records[1]["val_loss"] is None  # non-finite -> null (strict JSON)
    assert records[1]["lr"] == pytest.approx(0.1) and records[1]["time_s"] >= 0
    assert no_temp_files(tmp_path)

    fresh = JsonHistory(str(path), resume=False)
    fresh.set_model(model)
    fresh.on_train_begin()
    assert fresh.records == []
    with pytest.raises(ValueError, match=r"path must end in '.json'"):
        JsonHistory(str(tmp_path / "history.txt"))


def test_terminate_on_non_finite_direct():
    model = tiny_model()
    cb = TerminateOnNonFinite()
    model.stop_training = False  # as Model.fit sets it
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(2)
    cb.on_train_batch_end(0, {"loss": 0.5})
    assert model.stop_training is False and cb.message is None
    cb.on_train_batch_end(4, {"loss": np.float32(np.inf)})
    assert model.stop_training is True
    assert cb.stopped_epoch == 3 and cb.stopped_step == 5
    assert "epoch 3" in cb.message and "step 5" in cb.message and "inf" in cb.message


def test_plot_history_writes_png(tmp_path):
    path = tmp_path / "sub" / "curves.png"
    out = plot_history(
        {
            "loss": [1.0, 0.6, 0.4],
            "val_loss": [1.1, 0.7, 0.5],
            "accuracy": [0.5, 0.7, 0.9],
            "val_accuracy": [0.4, 0.6, 0.8],
        },
        str(path),
        title="demo",
    )
    assert out == str(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    assert img.shape[0] == 400 and img.shape[1] == 1000
    # records form, no accuracy logged, None for a diverged value
    plot_history([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": None}], str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert no_temp_files(path.parent)
    with pytest.raises(ValueError, match=r"path must end in '.png'"):
        plot_history({"loss": [1.0]}, str(tmp_path / "curves.jpg"))


# ----------------------------------------------------------------------------- strategy


def test_get_strategy_names():
    default = get_strategy()
    assert default is tf.distribute.get_strategy()
    assert get_strategy("default").num_replicas_in_sync == 1
    mirrored = get_strategy("Mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    gpus = len(tf.config.list_physical_devices("GPU"))
    assert mirrored.num_replicas_in_sync == max(1, gpus)
    assert is_chief(default) and is_chief(mirrored)
    with pytest.raises(ValueError, match=r"'default', 'mirrored', 'multiworker'.*'tpu'"):
        get_strategy("tpu")


# ----------------------------------------------------------------------------- fit


def test_fit_trains_and_writes_results(tmp_path):
    x, y = separable_data(256, seed=0)
    xv, yv = separable_data(128, seed=1)
    out = tmp_path / "run"
    ckpt = tmp_path / "ckpt" / "last.keras"
    recipe = he_cifar_recipe(base_lr=0.05)
    result = fit(
        tiny_model,
        (x, y),
        epochs=4,
        recipe=recipe,
        out_dir=str(out),
        validation_data=(xv, yv),
        batch_size=32,
        verbose=0,
        seed=0,
        callbacks=[AtomicModelCheckpoint(str(ckpt))],
    )
    h = result.history
    assert h["epoch"] == [1, 2, 3, 4]
    assert h["loss"][-1] < h["loss"][0]
    assert h["accuracy"][-1] >= 0.9 and h["val_accuracy"][-1] >= 0.9
    # 8 steps/epoch, milestones at 50% (step 16) and 75% (step 24): lr per epoch start
    np.testing.assert_allclose(h["lr"], [0.05, 0.05, 0.005, 0.0005], rtol=1e-5)
    assert all(t > 0 for t in h["time_s"])
    assert result.initial_epoch == 0 and result.epochs_run == 4 and result.terminated is None
    assert int(result.model.optimizer.iterations) == 32

    assert sorted(os.listdir(out)) == [MARKER_NAME, "curves.png", "history.json", "model.keras"]
    records = load_history(result.history_path)
    assert len(records) == 4 and [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert set(records[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time_s"}
    assert records[-1]["loss"] == pytest.approx(h["loss"][-1])
    with open(result.curves_path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE

    loaded = keras.saving.load_model(result.model_path)
    np.testing.assert_allclose(
        loaded.predict(xv, verbose=0), result.model.predict(xv, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert int(loaded.optimizer.iterations) == 32
    last = keras.saving.load_model(str(ckpt))
    np.testing.assert_allclose(
        last.predict(xv, verbose=0), loaded.predict(xv, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert no_temp_files(ckpt.parent)
    json.dumps(result.to_dict())


def test_fit_resumes_after_interruption(tmp_path):
    x, y = separable_data(128, seed=2)
    out = tmp_path / "run"
    recipe = he_cifar_recipe(base_lr=0.05)
    kwargs = {
        "epochs": 4,
        "recipe": recipe,
        "out_dir": str(out),
        "batch_size": 32,
        "verbose": 0,
        "seed": 0,
    }

    with pytest.raises(KeyboardInterrupt, match="after epoch 2"):
        fit(tiny_model, (x, y), callbacks=[InterruptAfter(1)], **kwargs)
    assert os.path.isdir(out / "backup")
    first = load_history(str(out / "history.json"))
    assert [r["epoch"] for r in first] == [1, 2]

    seen = RecordEpochs()
    result = fit(tiny_model, (x, y), callbacks=[seen], **kwargs)
    assert seen.epochs == [2, 3]  # continued at (1-based) epoch 3
    assert result.initial_epoch == 2 and result.epochs_run == 2
    records = load_history(result.history_path)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[:2] == first
    # optimizer state was restored: the schedule continues at step 8 (4 steps/epoch)
    assert int(result.model.optimizer.iterations) == 16
    np.testing.assert_allclose([r["lr"] for r in records], [0.05, 0.05, 0.005, 0.0005], rtol=1e-5)
    assert not os.path.exists(out / "backup")  # deleted when training completed
    assert result.history["loss"][-1] < result.history["loss"][0]


KILLED_RUN = """
import os, sys
import numpy as np, keras
from keras_resnet_lab.training import fit, he_cifar_recipe

rng = np.random.default_rng(5)
y = rng.integers(0, 2, size=128).astype("int32")
x = (rng.normal(size=(128, 8, 8, 1)) + (2.0 * y - 1.0)[:, None, None, None] * 0.5)
x = x.astype("float32")

def build():
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inp))
    return keras.Model(inp, keras.layers.Dense(2)(h))

class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os._exit(3)  # no exception handling, no on_train_end: like SIGKILL

recipe = he_cifar_recipe(base_lr=0.05, weight_decay_mode="l2")
fit(build, (x, y), 3, recipe, sys.argv[1], batch_size=32, verbose=0, callbacks=[Kill()])
"""


def test_fit_resumes_a_killed_process(tmp_path):
    out = tmp_path / "run"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(out)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    # the killed process's lock file stays behind, free: the resumed run takes it over
    assert sorted(os.listdir(out)) == [MARKER_NAME, LOCK_NAME, "backup", "history.json"]

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=128).astype("int32")
    x = rng.normal(size=(128, 8, 8, 1)) + (2.0 * y - 1.0)[:, None, None, None] * 0.5

    def build():
        inp = keras.Input((8, 8, 1))
        h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inp))
        return keras.Model(inp, keras.layers.Dense(2)(h))

    recipe = he_cifar_recipe(base_lr=0.05, weight_decay_mode="l2")
    result = fit(build, (x.astype("float32"), y), 3, recipe, str(out), batch_size=32, verbose=0)
    assert result.initial_epoch == 2 and result.epochs_run == 1
    assert [r["epoch"] for r in load_history(result.history_path)] == [1, 2, 3]
    assert int(result.model.optimizer.iterations) == 12
    assert isinstance(result.model.optimizer, CoupledWeightDecaySGD)
    assert sorted(os.listdir(out)) == [MARKER_NAME, "curves.png", "history.json", "model.keras"]


def test_fit_stops_on_nan_with_epoch_and_step(tmp_path, capsys):
    x, y = separable_data(96, seed=3)
    x[40] = np.nan  # sample 40 lies in the 3rd batch of 16
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    ckpt = tmp_path / "last.keras"
    # tanh propagates NaN (TF's relu maps NaN to 0, which would hide it)
    result = fit(
        lambda: tiny_model(activation="tanh"),
        ds,
        epochs=3,
        recipe=he_cifar_recipe(),
        out_dir=str(tmp_path / "r"),
        verbose=0,
        callbacks=[AtomicModelCheckpoint(str(ckpt))],
    )
    assert result.terminated is not None
    assert "epoch 1, step 3" in result.terminated
    assert "epoch 1, step 3" in capsys.readouterr().out
    assert result.epochs_run == 1
    records = load_history(result.history_path)
    assert len(records) == 1 and records[0]["loss"] is None
    assert not ckpt.exists()  # the diverged epoch was not checkpointed


def test_fit_with_tf_data_softmax_model_and_mirrored_strategy(tmp_path):
    x, y = separable_data(128, seed=4)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(128, seed=0).batch(32)
    result = fit(
        lambda: tiny_model(softmax=True),
        ds,
        epochs=2,
        recipe=general_recipe("adamw", base_lr=1e-2, warmup_epochs=0),
        out_dir=str(tmp_path / "m"),
        strategy="mirrored",
        verbose=0,
    )
    assert isinstance(result.model.distribute_strategy, tf.distribute.MirroredStrategy)
    assert result.model.loss.from_logits is False
    assert result.history["accuracy"][-1] >= 0.8
    assert len(load_history(result.history_path)) == 2


def test_fit_argument_validation(tmp_path):
    x, y = separable_data(16)
    recipe = he_cifar_recipe()
    with pytest.raises(ValueError, match=r"`epochs` must be a positive integer, got 0"):
        fit(tiny_model, (x, y), 0, recipe, str(tmp_path))
    with pytest.raises(ValueError, match=r"recipe must be a Recipe"):
        fit(tiny_model, (x, y), 1, "he", str(tmp_path))
    with pytest.raises(ValueError, match=r"train_data must be \(x, y\) with the same number"):
        fit(tiny_model, (x, y[:3]), 1, recipe, str(tmp_path))
    with pytest.raises(ValueError, match=r"model_fn must be a zero-argument callable"):
        fit(tiny_model(), (x, y), 1, recipe, str(tmp_path))
    with pytest.raises(ValueError, match=r"steps_per_epoch=None needs .* infinite"):
        fit(
            tiny_model,
            tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat(),
            1,
            recipe,
            str(tmp_path),
        )
    with pytest.raises(ValueError, match=r"name must be one of"):
        fit(tiny_model, (x, y), 1, recipe, str(tmp_path), strategy="tpu")
