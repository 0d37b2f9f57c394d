"""Greff et al. (arXiv 1612.07771): the blocks of a stage perform unrolled iterative estimation.

Trains a pre-activation ResNet and measures, for every block i of every stage, the estimation
error h_i - h_end (h_end: the output of the stage's last block) over the test images: its
mean and standard deviation over examples and units, divided by the RMS of h_end. The finding:
the mean is near 0 (each block's output is an unbiased estimate of the stage's final features)
and the standard deviation shrinks block after block inside every stage. The last block of a
stage has error 0 by definition and is not part of the criteria. The full mode also measures a
highway network (the paper's other subject) and reports its numbers.

    python benchmarks/estimation_greff.py --quick --out /tmp/estimation
    python benchmarks/estimation_greff.py --out results/estimation        # ResNet-56 v2 + highway
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, blocks_per_stage=4, widths=(8, 16, 32), epochs=3, lr=0.05,
             batch_size=64, probe_examples=256, highway=False)
FULL = dict(image_size=32, blocks_per_stage=9, widths=(16, 32, 64), epochs=30, lr=0.1,
            batch_size=128, probe_examples=1000, highway=True, gate_bias=-2.0)


def _train(model, cfg, train, steps, verbose):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
    _common.compile_and_fit(
        model, train, cfg["epochs"],
        keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4), cfg["batch_size"],
        verbose=verbose)


def _summary(result):
    """The numbers of one model's result that the finding is judged on."""
    import numpy as np

    measured = np.array(result.measured)
    mean = np.abs(np.array(result.normalized_mean, dtype=float)[measured])
    std = np.array(result.normalized_std, dtype=float)[measured]
    first = [result.stage_indices(s)[0] for s in result.measured_stages()]
    return {
        "max_abs_normalized_mean": float(mean.max()),
        "max_abs_mean_over_std": float((mean / std).max()),
        "std_decrease_fraction": result.std_decrease_fraction(),
        "max_first_block_relative_error": float(max(result.relative_error[i] for i in first)),
        "mean_unit_bias": float(np.mean(np.array(result.unit_bias, dtype=float)[measured])),
    }


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "estimation_greff", argv)
    import keras

    from keras_resnet_lab.analysis.estimation import estimation_errors
    from keras_resnet_lab.models.cifar import cifar_network

    cfg = _common.mode_settings(args, QUICK, FULL)
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    probe = (test[0][:cfg["probe_examples"]], test[1][:cfg["probe_examples"]])
    verbose = 0 if args.quiet or args.quick else 2
    keras.utils.set_random_seed(args.seed)
    model = cifar_network(cfg["blocks_per_stage"], widths=cfg["widths"], preact=True,
                          shortcut="A", input_shape=test[0].shape[1:], num_classes=10,
                          name=f"resnet{6 * cfg['blocks_per_stage'] + 2}v2")
    print(f"training {model.name} ({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
    _train(model, cfg, train, steps, verbose)
    accuracy = _common.accuracy(model, probe)
    result = estimation_errors(model, probe, progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "estimation.png"))]
    result.to_json(os.path.join(args.out, "estimation_result.json"))
    summary = _summary(result)
    numbers = {"resnet": dict(summary, name=model.name, test_accuracy=accuracy,
                              blocks=result.block_names, normalized_mean=result.normalized_mean,
                              normalized_std=result.normalized_std,
                              relative_error=result.relative_error,
                              unit_bias=result.unit_bias, rms_end=result.rms_end)}

    if cfg["highway"]:
        keras.utils.set_random_seed(args.seed)
        highway = cifar_network(cfg["blocks_per_stage"], block="highway", widths=cfg["widths"],
                                gate_bias=cfg["gate_bias"], input_shape=test[0].shape[1:],
                                num_classes=10, name="highway")
        print(f"training {highway.name}", flush=True)
        _train(highway, cfg, train, steps, verbose)
        h_result = estimation_errors(highway, probe, progress_bar=not args.quiet)
        figures.append(h_result.plot(os.path.join(args.out, "estimation_highway.png")))
        numbers["highway"] = dict(
            _summary(h_result), name=highway.name,
            test_accuracy=_common.accuracy(highway, probe),
            normalized_mean=h_result.normalized_mean, normalized_std=h_result.normalized_std)

    return _common.finish(args, "estimation_greff", result.assessments(seed=args.seed),
                          numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
