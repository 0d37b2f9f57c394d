"""Srivastava, Greff & Schmidhuber (arXiv 1507.06228): highway networks train at any depth.

The depth experiment of the paper's Figure 1, on the embedded digits (flattened grayscale
images; the paper used MNIST): thin fully-connected plain and highway networks of depth 10,
20 and 50, trained with the same optimizer (SGD, momentum 0.9), learning rate, batch size and
number of epochs. A network of depth d is, as in the paper, one plain dense layer (the stem,
50 units, ReLU) followed by d - 1 layers of 50 units and a linear softmax classifier. A plain
layer is ``y = H(x) = relu(W_H x + b_H)``; a highway layer is ``y = x + T(x) * (H(x) - x)``
with the same ``H`` and a transform gate ``T = sigmoid(W_T x + b_T)``. Every ``H`` (and gate)
kernel is He-normal with zero biases in both nets, and there is no batch normalization (as in
the paper), so the plain nets' difficulty at depth is one of optimization, not of a missing
normalizer or a different initialization.

Gate bias: -2 for the depth-10 highway net; deeper nets get a more negative bias, chosen so
that every highway net carries the same share of its input through all of its layers at
initialization, ``(1 - sigmoid(b))^(d - 1) = (1 - sigmoid(-2))^9``: -2, -2.78 and -3.75 at
depths 10, 20 and 50 (the paper, too, biases deeper nets more negatively: -1, -2 and -3 for
its convolutional nets of depth about 10, 20 and 30; and it searched the bias for each net of
its Figure 1). With -2 at depth 50, (1 - 0.12)^49 =
0.2% of the input survives the carry path at initialization; on this budget (15 epochs of 22
steps) such a net stayed on the loss plateau (2.30) with SGD at learning rate 0.005 (and at
0.01 with gradient clipping), diverged at 0.01 without clipping, and reached only ~20%
training error in 12 epochs with Adam (1e-3); with -3.75 it trains like the shallow nets.

Then, on the deepest highway net, the gate analysis of the paper's Figures 2 and 4: the mean
transform-gate activity of each layer over the test data, and the gate lesion (``T = 0`` in
one layer, so it only carries), counting the nearly idle layers, those whose lesion costs at
most 1 point of test accuracy.

The finding: the plain nets' training error grows with depth, the highway nets' does not, and
many late highway layers are nearly idle (the paper: layers 15-45 of 50 on MNIST).

The full mode uses 16x16 digits (256 features), depths 10, 20, 50 and 100, 60 epochs, and,
like the paper's per-network hyperparameter search, three learning rates per network, keeping
the one with the lowest final training loss.

    python benchmarks/highway_srivastava.py --quick --out /tmp/highway   # ~35 s
    python benchmarks/highway_srivastava.py --out results/highway        # depths 10..100
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, depths=(10, 20, 50), units=50, gate_bias=-2.0, epochs=15,
             optimizer="sgd", learning_rates=(0.01,), momentum=0.9, batch_size=64)
FULL = dict(image_size=16, depths=(10, 20, 50, 100), units=50, gate_bias=-2.0, epochs=60,
            optimizer="sgd", learning_rates=(0.003, 0.01, 0.03), momentum=0.9, batch_size=64)
LATE_FROM = 0.5  # "late" layers: the second half of the deepest highway net


def gate_bias_at(depth, gate_bias):
    """The gate bias of the depth-``depth`` highway net: ``gate_bias`` at depth 10, and for other
    depths the bias whose nets carry the same share of their input through all their layers at
    initialization, ``(1 - sigmoid(b))^(depth - 1) = (1 - sigmoid(gate_bias))^9``: -2, -2.78,
    -3.75, -4.46 at depths 10, 20, 50, 100 for ``gate_bias = -2``."""
    import math

    keep = (1 - 1 / (1 + math.exp(-gate_bias))) ** (9 / (depth - 1))
    return math.log((1 - keep) / keep)


def _data(image_size, batch_size):
    """Flattened grayscale digits; the training set cut to a multiple of the batch size."""
    from keras_resnet_lab.data import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits(image_size=image_size, channels=1)
    keep = len(x_train) - len(x_train) % batch_size
    return ((x_train[:keep].reshape(keep, -1), y_train[:keep]),
            (x_test.reshape(len(x_test), -1), y_test))


def _train(model, cfg, lr, train):
    """Fit ``model`` (no XLA: compiling 50-layer graphs costs more than the whole training)."""
    import keras

    optimizer = keras.optimizers.SGD(lr, momentum=cfg["momentum"])
    model.compile(optimizer=optimizer, jit_compile=False,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # Optimizer variables made eagerly: made inside the traced step they cost a second trace.
    model.optimizer.build(model.trainable_variables)
    history = model.fit(train[0], train[1], batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                        shuffle=True, verbose=0)
    return [float(v) for v in history.history["loss"]]


def _scores(model, data):
    """Loss and error of ``model`` on ``(x, y)`` (inference mode; NaN loss if it diverged)."""
    import keras
    import numpy as np

    logits = np.asarray(model(data[0], training=False))
    loss = keras.losses.sparse_categorical_crossentropy(data[1], logits, from_logits=True)
    return float(np.mean(np.asarray(loss))), float(np.mean(logits.argmax(-1) != data[1]))


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "highway_srivastava", argv)
    import keras
    import numpy as np

    from keras_resnet_lab.analysis.gates import IDLE_ERROR_INCREASE, gate_statistics
    from keras_resnet_lab.analysis.results import new_figure, save_figure
    from keras_resnet_lab.models.mlp import highway_mlp

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    cfg["depths"] = list(cfg["depths"])
    cfg.update(dataset=f"digits {cfg['image_size']}x{cfg['image_size']} grayscale, flattened",
               normalization="none", initialization="he_normal (H and gate kernels), zero "
               "biases, gate bias -> gate_bias_by_depth", activation="relu",
               depth_meaning="stem dense layer + (depth - 1) plain or highway layers",
               optimizer_note="SGD with momentum, no weight decay, no clipping; with several "
               "learning_rates each net keeps the one with the lowest final training loss",
               seed=args.seed, idle_error_increase=IDLE_ERROR_INCREASE)
    biases = {d: gate_bias_at(d, cfg["gate_bias"]) for d in cfg["depths"]}
    cfg["gate_bias_by_depth"] = {str(d): round(b, 4) for d, b in biases.items()}
    train, test = _data(cfg["image_size"], cfg["batch_size"])
    curves, train_loss, train_err, test_loss, test_err, params = {}, {}, {}, {}, {}, {}
    models, chosen_lr = {}, {}
    for kind in ("plain", "highway"):
        for depth in cfg["depths"]:
            name, best = f"{kind}{depth}", None
            for lr in cfg["learning_rates"]:
                keras.utils.set_random_seed(args.seed)
                model = highway_mlp(depth - 1, cfg["units"], gate_bias=biases[depth],
                                    plain=kind == "plain", input_shape=train[0].shape[1:],
                                    num_classes=10, name=name)
                if not args.quiet:
                    print(f"training {name} (lr {lr}, {cfg['epochs']} epochs, "
                          f"{cfg['dataset']})", flush=True)
                curve = _train(model, cfg, lr, train)
                scores = _scores(model, train)
                key = scores[0] if np.isfinite(scores[0]) else np.inf
                if best is None or key < best[0]:
                    best = (key, lr, model, curve, scores)
            _, chosen_lr[name], models[name], curves[name], (loss, error) = best
            train_loss[name], train_err[name] = loss, error
            test_loss[name], test_err[name] = _scores(models[name], test)
            params[name] = models[name].count_params()

    deepest = f"highway{max(cfg['depths'])}"
    gates = None
    if np.isfinite(test_loss[deepest]):
        gates = gate_statistics(models[deepest], test, progress_bar=not args.quiet)
    figures = []
    if gates is not None:
        figures.append(gates.plot(os.path.join(args.out, "gates.png")))
        gates.to_json(os.path.join(args.out, "gates_result.json"))

    figure, (ax1, ax2) = new_figure(2)
    for i, depth in enumerate(cfg["depths"]):
        for kind, style in (("plain", "--"), ("highway", "-")):
            ax1.plot(np.arange(1, cfg["epochs"] + 1), curves[f"{kind}{depth}"], style,
                     color=f"C{i}", label=f"{kind} {depth}")
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log",
            title="Optimization at depth (dashed: plain)")
    ax1.legend(fontsize=7)
    for kind, marker in (("plain", "s--"), ("highway", "o-")):
        ax2.plot(cfg["depths"], [train_err[f"{kind}{d}"] for d in cfg["depths"]], marker,
                 label=f"{kind}, train")
        ax2.plot(cfg["depths"], [test_err[f"{kind}{d}"] for d in cfg["depths"]], marker,
                 alpha=0.4, label=f"{kind}, test")
    ax2.set(xlabel="depth (layers)", ylabel="error", title="Final error against depth")
    ax2.set_xticks(cfg["depths"])
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    figures.insert(0, save_figure(figure, os.path.join(args.out, "depth_experiment.png")))

    shallow, deep = min(cfg["depths"]), max(cfg["depths"])
    gate_numbers, late_fraction = None, None
    if gates is not None:
        increase = gates.lesion_error_increase()
        first_late = int(len(increase) * LATE_FROM)
        late = increase[first_late:]
        idle = gates.idle_blocks()
        late_idle = sum(v <= gates.idle_error_increase for v in late)
        late_fraction = late_idle / len(late)
        gate_numbers = {
            "model": deepest, "layers": gates.block_names, "mean_gate": gates.mean_gate,
            "example_std": gates.example_std, "idle_unit_fraction": gates.idle_unit_fraction,
            "gate_threshold": gates.gate_threshold, "intact_test_error":
            1 - gates.intact_accuracy, "lesion_error_increase": increase,
            "lesion_loss_increase": gates.lesion_loss_increase(),
            "idle_error_increase": gates.idle_error_increase, "idle_layers": idle,
            "late_layers": gates.block_names[first_late:], "late_idle_layers": late_idle,
            "late_idle_fraction": late_fraction,
            "early_mean_gate": float(np.mean(gates.mean_gate[:first_late])),
            "late_mean_gate": float(np.mean(gates.mean_gate[first_late:])),
        }
    criteria = [
        _common.criterion(f"plain{deep}_minus_plain{shallow}_train_error",
                          train_err[f"plain{deep}"] - train_err[f"plain{shallow}"], ">=", 0.2,
                          "the plain net's training error grows with depth"),
        _common.criterion(f"highway{deep}_minus_highway{shallow}_train_error",
                          train_err[f"highway{deep}"] - train_err[f"highway{shallow}"], "<=",
                          0.05, "the highway net's training error does not"),
        _common.criterion(f"plain{deep}_minus_highway{deep}_train_error",
                          train_err[f"plain{deep}"] - train_err[f"highway{deep}"], ">=", 0.2,
                          f"at depth {deep} the highway net trains far better than the plain"),
        _common.criterion("late_idle_fraction", late_fraction, ">=", 0.5,
                          f"at least half of the late layers of {deepest} (second half) are "
                          f"nearly idle: their gate lesion (T = 0) costs <= "
                          f"{IDLE_ERROR_INCREASE:g} test accuracy"),
    ]
    numbers = {
        "final_train_error": train_err, "final_test_error": test_err,
        "final_train_loss": train_loss, "final_test_loss": test_loss, "params": params,
        "learning_rate": chosen_lr,
        "curves": curves, "gates": gate_numbers,
    }
    finding = ("Plain networks get harder to optimize as they get deeper while highway networks "
               f"(gate bias -2 at depth 10, more negative deeper) train as well at depth {deep} "
               f"as at {shallow}; many late highway layers are nearly idle: setting their "
               "transform gate to 0 barely changes the error.")
    return _common.finish(args, "highway_srivastava",
                          "Srivastava, Greff & Schmidhuber 2015, arXiv 1507.06228", finding,
                          criteria, numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
