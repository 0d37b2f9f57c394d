"""Veit et al. (arXiv 1605.06431): the gradient of a ResNet comes from relatively short paths.

An unrolled network of n residual blocks has C(n, k) paths through k branches. For each k the
script samples paths (k random blocks pass gradient only through their branch, the others only
through their skip; forward values unchanged) and records the input-gradient norm of the loss.
The finding: the magnitude falls roughly exponentially with k, so the gradient, summed over all
paths of each length, comes mostly from paths far shorter than the network (Veit et al.: 5-17
of 54 blocks in ResNet-110, 0.45% of all paths).

    python benchmarks/paths_veit.py --quick --out /tmp/paths    # 18 blocks, 8x8 digits
    python benchmarks/paths_veit.py --out results/paths         # ResNet-110 shape (54 blocks)
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, blocks_per_stage=6, widths=(8, 16, 32), epochs=4, lr=0.05,
             samples_per_length=32, batch_size=64)
FULL = dict(image_size=32, blocks_per_stage=18, widths=(16, 32, 64), epochs=30, lr=0.1,
            samples_per_length=200, batch_size=128)


def add_arguments(parser):
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per path length (default 32 quick, 200 full; Veit et al. "
                             "used 1000)")


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "paths_veit", argv, add_arguments)
    import keras
    import numpy as np

    from keras_resnet_lab.analysis.paths import path_gradients, path_lengths
    from keras_resnet_lab.models import cifar_network

    cfg = _common.mode_settings(args, QUICK, FULL)
    if args.samples:
        cfg["samples_per_length"] = args.samples
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    keras.utils.set_random_seed(args.seed)
    model = cifar_network(cfg["blocks_per_stage"], widths=cfg["widths"], preact=True,
                          shortcut="A", input_shape=test[0].shape[1:], num_classes=10,
                          name=f"resnet{6 * cfg['blocks_per_stage'] + 2}v2")
    print(f"training {model.name} ({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
    schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
    history = _common.compile_and_fit(
        model, train, cfg["epochs"],
        keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4), cfg["batch_size"],
        verbose=_common.verbosity(args))
    test_error = 1.0 - float(model.evaluate(test[0], test[1], verbose=0)[1])
    result = path_gradients(model, test, cfg["samples_per_length"], seed=args.seed,
                            progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "paths.png"))]
    result.to_json(os.path.join(args.out, "paths_result.json"))
    paper = path_lengths(54)
    figures.append(paper.plot(os.path.join(args.out, "path_lengths_resnet110.png")))

    n = result.n_blocks
    weights = np.asarray(result.contribution_fraction)
    mean_length = float((np.asarray(result.lengths) * weights).sum())
    lo, hi = result.effective_range
    numbers = {
        "n_blocks": n, "test_error": test_error,
        "final_train_loss": float(history.history["loss"][-1]),
        "mean_norm_by_length": dict(zip(result.lengths, result.mean_norm)),
        "decay_per_block": result.decay_per_block, "decay_r2": result.decay_r2,
        "peak_length": result.peak_length, "gradient_weighted_mean_length": mean_length,
        "effective_range": [lo, hi], "effective_mass": result.effective_mass,
        "effective_path_share": result.effective_path_share,
        "resnet110_paths": {"n_blocks": 54, "total": paper.total,
                            "share_of_lengths_5_to_17": sum(paper.counts[5:18]) / paper.total,
                            "most_common_length": int(np.argmax(paper.counts))},
        "binomial_check": sum(math.comb(54, k) for k in range(55)) == 2 ** 54,
    }
    return _common.finish(args, "paths_veit", result.assessments(seed=args.seed), numbers,
                          cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
