"""Srivastava, Greff & Schmidhuber (arXiv 1507.06228): highway networks train at any depth.

The paper's claims: plain networks get harder to optimize as they get deeper while highway
networks do not (Figure 1: plain nets of 50-100 layers fail to train on MNIST/CIFAR, highway
nets of 50-100 layers match those of 10-20), and in a trained deep highway network many late
layers are nearly idle, their transform gates shut (Figures 2 and 4: layers 15-45 of 50 on
MNIST). The rules these are judged by are the registry entries ``srivastava_depth`` and
``srivastava_gates`` (``keras_resnet_lab/findings/registry.py``): statistics, thresholds and
the 95% interval over seeds; results.json reports their verdicts and nothing else decides one.

The depth experiment, on the embedded digits (flattened grayscale images; the paper used
MNIST): thin fully-connected plain and highway networks of depth 10, 20 and 50 (a stem dense
layer and d - 1 layers of 50 units, He-normal kernels, no batch normalization), trained alike
with SGD (momentum 0.9). Then, on the deepest highway net, the gate analysis: the mean
transform-gate activity of each layer (after training and at initialization) and the gate
lesion (``T = 0`` in one layer), counting the nearly idle layers, those whose lesion costs at
most 1 point of test accuracy. The driver is the library's
``keras_resnet_lab.analysis.highway_depth.compare_highway_depths`` (its docstring describes the
networks), run once per seed (``--seed``, ``--seeds``: each seed trains every network anew);
this script picks the configuration and writes results.json and the figures.

Gate bias: -2 for the depth-10 highway net; deeper nets get a more negative bias, chosen so
that every highway net carries the same share of its input through all of its layers at
initialization, ``(1 - sigmoid(b))^(d - 1) = (1 - sigmoid(-2))^9``: -2, -2.78 and -3.75 at
depths 10, 20 and 50 (the paper, too, biases deeper nets more negatively: -1, -2 and -3 for
its convolutional nets of depth about 10, 20 and 30; and it searched the bias for each net of
its Figure 1). With -2 at depth 50, (1 - 0.12)^49 = 0.2% of the input would survive the carry
path at initialization.

The full mode uses 16x16 digits (256 features), depths 10, 20, 50 and 100, 60 epochs, and,
like the paper's per-network hyperparameter search, three learning rates per network, keeping
the one with the lowest final training loss. The quick mode trains depths 10, 20 and 50 for
10 epochs per seed; the findings need not show at that scale.

Figures (first seed): depth_experiment.png (training curves, final error against depth, and
the deepest highway net's mean gate and gate-lesion cost per layer) and gates.png (its full
gate analysis); findings_over_seeds.png: every statistic per seed with its interval and
threshold.

    python benchmarks/highway_srivastava.py --quick --out /tmp/highway   # 3 seeds
    python benchmarks/highway_srivastava.py --out results/highway        # depths 10..100
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, depths=(10, 20, 50), units=50, gate_bias=-2.0, epochs=10,
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
    args = _common.parse_args(__doc__.splitlines()[0], "highway_srivastava", argv,
                              seeded=True)
    from keras_resnet_lab.analysis._training import training_digits
    from keras_resnet_lab.analysis.gates import IDLE_ERROR_INCREASE
    from keras_resnet_lab.analysis.highway_depth import compare_highway_depths

    cfg = _common.mode_settings(args, QUICK, FULL)
    cfg["depths"] = list(cfg["depths"])
    seeds = _common.seed_list(args)
    cfg.update(dataset=f"digits {cfg['image_size']}x{cfg['image_size']} grayscale, flattened",
               normalization="none", initialization="he_normal (H and gate kernels), zero "
               "biases, gate bias -> gate_bias_by_depth", activation="relu",
               depth_meaning="stem dense layer + (depth - 1) plain or highway layers",
               optimizer_note="SGD with momentum, no weight decay, no clipping; with several "
               "learning_rates each net keeps the one with the lowest final training loss",
               seeds=seeds, late_from=LATE_FROM, idle_error_increase=IDLE_ERROR_INCREASE)
    train, test = training_digits(cfg["image_size"], channels=1,
                                  batch_size=cfg["batch_size"], flatten=True)
    if not args.quiet:
        print(f"training plain and highway nets of depth "
              f"{'/'.join(str(d) for d in cfg['depths'])} (lr "
              f"{'/'.join(f'{r:g}' for r in cfg['learning_rates'])}, {cfg['epochs']} epochs, "
              f"{cfg['dataset']}), {len(seeds)} seed(s)", flush=True)
    settings = dict(depths=cfg["depths"], units=cfg["units"], gate_bias=cfg["gate_bias"],
                    epochs=cfg["epochs"], learning_rates=cfg["learning_rates"],
                    momentum=cfg["momentum"], batch_size=cfg["batch_size"],
                    late_from=LATE_FROM)
    seeded = _common.run_seeds(
        args, "highway",
        lambda seed: compare_highway_depths(train, test, seed=seed,
                                            progress_bar=not args.quiet, **settings),
        settings)
    result = seeded.runs[0]
    cfg["gate_bias_by_depth"] = {d: round(b, 4) for d, b in result.gate_bias_by_depth.items()}

    figures = [result.plot(os.path.join(args.out, "depth_experiment.png"))]
    result.to_json(os.path.join(args.out, "highway_depth_result.json"))
    gates = result.gate_result()
    if gates is not None:
        figures.append(gates.plot(os.path.join(args.out, "gates.png")))
        gates.to_json(os.path.join(args.out, "gates_result.json"))
    figures.append(_common.seeds_figure(args, seeded))

    # The first seed's numbers in full, every seed's headline numbers under per_seed.
    numbers = {
        "seed": result.seed,
        "final_train_error": result.final_train_error,
        "final_test_error": result.final_test_error,
        "final_train_loss": result.final_train_loss, "final_test_loss": result.final_test_loss,
        "params": result.params, "learning_rate": result.learning_rate,
        "curves": result.curves,
        "init_mean_gate": result.init_mean_gate,
        "gates": None if result.gates is None else {
            key: result.gates[field] for key, field in GATE_KEYS.items()},
        "per_seed": {str(r.seed): {
            "final_train_error": r.final_train_error, "final_test_error": r.final_test_error,
            "learning_rate": r.learning_rate,
            "late_idle_fraction": None if r.gates is None else r.gates["late_idle_fraction"],
            "late_mean_gate": None if r.gates is None else r.gates["late_mean_gate"],
            "gate_change": r.gate_change()} for r in seeded.runs},
    }
    return _common.finish(args, "highway_srivastava", seeded.assessments(), numbers, cfg,
                          figures, started)


if __name__ == "__main__":
    sys.exit(main())
