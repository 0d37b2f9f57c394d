"""Srivastava, Greff & Schmidhuber (arXiv 1507.06228): highway networks train at any depth.

The depth experiment of the paper's Figure 1, on the embedded digits (flattened grayscale
images; the paper used MNIST): thin fully-connected plain and highway networks of depth 10,
20 and 50 (a stem dense layer and d - 1 layers of 50 units, He-normal kernels, no batch
normalization), trained alike with SGD (momentum 0.9). Then, on the deepest highway net, the
gate analysis of the paper's Figures 2 and 4: the mean transform-gate activity of each layer
and the gate lesion (``T = 0`` in one layer), counting the nearly idle layers, those whose
lesion costs at most 1 point of test accuracy. The driver is the library's
``keras_resnet_lab.analysis.highway_depth.compare_highway_depths`` (its docstring describes the
networks); this script picks the configuration and writes results.json and the figures.

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

The finding: the plain nets' training error grows with depth, the highway nets' does not, and
many late highway layers are nearly idle (the paper: layers 15-45 of 50 on MNIST).

The full mode uses 16x16 digits (256 features), depths 10, 20, 50 and 100, 60 epochs, and,
like the paper's per-network hyperparameter search, three learning rates per network, keeping
the one with the lowest final training loss.

Figures: depth_experiment.png (training curves, final error against depth, and the deepest
highway net's mean gate and gate-lesion cost per layer) and gates.png (its full gate analysis).

    python benchmarks/highway_srivastava.py --quick --out /tmp/highway   # ~40 s
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
# The keys of numbers["gates"] in results.json and where they come from in result.gates.
GATE_KEYS = {"model": "model_name", "layers": "block_names", "mean_gate": "mean_gate",
             "example_std": "example_std", "idle_unit_fraction": "idle_unit_fraction",
             "gate_threshold": "gate_threshold", "intact_test_error": "intact_test_error",
             "lesion_error_increase": "lesion_error_increase",
             "lesion_loss_increase": "lesion_loss_increase",
             "idle_error_increase": "idle_error_increase", "idle_layers": "idle_layers",
             "late_layers": "late_layers", "late_idle_layers": "late_idle_layers",
             "late_idle_fraction": "late_idle_fraction", "early_mean_gate": "early_mean_gate",
             "late_mean_gate": "late_mean_gate"}


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "highway_srivastava", argv)
    from keras_resnet_lab.analysis._training import training_digits
    from keras_resnet_lab.analysis.gates import IDLE_ERROR_INCREASE
    from keras_resnet_lab.analysis.highway_depth import compare_highway_depths

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
    train, test = training_digits(cfg["image_size"], channels=1,
                                  batch_size=cfg["batch_size"], flatten=True)
    if not args.quiet:
        print(f"training plain and highway nets of depth "
              f"{'/'.join(str(d) for d in cfg['depths'])} (lr "
              f"{'/'.join(f'{r:g}' for r in cfg['learning_rates'])}, {cfg['epochs']} epochs, "
              f"{cfg['dataset']})", flush=True)
    result = compare_highway_depths(
        train, test, depths=cfg["depths"], units=cfg["units"], gate_bias=cfg["gate_bias"],
        epochs=cfg["epochs"], learning_rates=cfg["learning_rates"], momentum=cfg["momentum"],
        batch_size=cfg["batch_size"], late_from=LATE_FROM, seed=args.seed,
        progress_bar=not args.quiet)
    cfg["gate_bias_by_depth"] = {d: round(b, 4) for d, b in result.gate_bias_by_depth.items()}

    figures = [result.plot(os.path.join(args.out, "depth_experiment.png"))]
    result.to_json(os.path.join(args.out, "highway_depth_result.json"))
    gates = result.gate_result()
    if gates is not None:
        figures.append(gates.plot(os.path.join(args.out, "gates.png")))
        gates.to_json(os.path.join(args.out, "gates_result.json"))

    numbers = {
        "final_train_error": result.final_train_error,
        "final_test_error": result.final_test_error,
        "final_train_loss": result.final_train_loss, "final_test_loss": result.final_test_loss,
        "params": result.params, "learning_rate": result.learning_rate,
        "curves": result.curves,
        "gates": None if result.gates is None else {
            key: result.gates[field] for key, field in GATE_KEYS.items()},
    }
    shallow, deep = result.shallowest, result.deepest
    finding = ("Plain networks get harder to optimize as they get deeper while highway networks "
               f"(gate bias -2 at depth 10, more negative deeper) train as well at depth {deep} "
               f"as at {shallow}; many late highway layers are nearly idle: setting their "
               "transform gate to 0 barely changes the error.")
    return _common.finish(args, "highway_srivastava",
                          "Srivastava, Greff & Schmidhuber 2015, arXiv 1507.06228", finding,
                          result.criteria(), numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
