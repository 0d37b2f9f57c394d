"""Chu et al. (arXiv 1701.02362): consecutive residual blocks refine the same filters.

Trains a post-activation ResNet (option A shortcuts) and its plain twin (the same layers
without shortcuts) and scores, for every pair of consecutive blocks of a stage, how much more
channel j at block i+1 resembles channel j at block i than random channel pairs (j, k != j)
do: the correlation of the channels' activation maps over the test images (the score is the
mean same-channel correlation minus the mean random-pair correlation). The finding: the score
is high for the ResNet, at every pair, and near 0 for the plain twin, where nothing ties
channel j of one block to channel j of the next. The full mode also scores Chu et al.'s own
view, the activation-maximization images of the channels (``method="images"``), on stage 2.

    python benchmarks/filters_chu.py --quick --out /tmp/filters
    python benchmarks/filters_chu.py --out results/filters        # ResNet-20 + plain-20
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, blocks_per_stage=3, widths=(8, 16, 32), epochs=3, lr=0.05,
             batch_size=64, probe_examples=256, image_stage=None)
FULL = dict(image_size=32, blocks_per_stage=3, widths=(16, 32, 64), epochs=30, lr=0.1,
            batch_size=128, probe_examples=1000, image_stage=2, image_channels=16,
            image_steps=100)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "filters_chu", argv)
    import keras
    import numpy as np

    from keras_resnet_lab.analysis.filter_refinement import filter_refinement
    from keras_resnet_lab.models.cifar import cifar_network

    cfg = _common.mode_settings(args, QUICK, FULL)
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    probe = (test[0][:cfg["probe_examples"]], test[1][:cfg["probe_examples"]])
    depth = 6 * cfg["blocks_per_stage"] + 2
    models, accuracy = {}, {}
    for kind, plain in (("resnet", False), ("plain", True)):
        keras.utils.set_random_seed(args.seed)
        model = cifar_network(cfg["blocks_per_stage"], widths=cfg["widths"], plain=plain,
                              shortcut="A", input_shape=test[0].shape[1:], num_classes=10,
                              name=f"{'plain' if plain else 'resnet'}{depth}")
        print(f"training {model.name} ({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
        schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
        _common.compile_and_fit(
            model, train, cfg["epochs"],
            keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4), cfg["batch_size"],
            verbose=_common.verbosity(args))
        models[kind] = model
        accuracy[kind] = _common.accuracy(model, probe)

    result = filter_refinement(models["resnet"], probe, twin=models["plain"], seed=args.seed,
                               progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "filter_refinement.png"))]
    result.to_json(os.path.join(args.out, "filter_refinement_result.json"))
    pair_scores = (np.array(result.same_channel) - np.array(result.random_pair)).tolist()
    twin_pair_scores = (np.array(result.twin_same_channel)
                        - np.array(result.twin_random_pair)).tolist()
    numbers = {
        "test_accuracy": accuracy, "pairs": result.pairs,
        "resnet": {"score": result.score, "same_channel_mean": result.same_channel_mean,
                   "random_pair_mean": result.random_pair_mean,
                   "same_channel": result.same_channel, "random_pair": result.random_pair,
                   "pair_scores": pair_scores, "min_pair_score": min(pair_scores)},
        "plain": {"score": result.twin_score, "same_channel_mean": result.twin_same_channel_mean,
                  "random_pair_mean": result.twin_random_pair_mean,
                  "same_channel": result.twin_same_channel,
                  "random_pair": result.twin_random_pair, "pair_scores": twin_pair_scores},
        "score_over_twin": result.score_over_twin,
    }

    if cfg["image_stage"] is not None:
        from keras_resnet_lab.vis import refinement_view

        print("activation maximization (method='images')", flush=True)
        images = filter_refinement(
            models["resnet"], twin=models["plain"], method="images",
            refinement_view=refinement_view,
            stages=[cfg["image_stage"]], channels=cfg["image_channels"], seed=args.seed,
            image_options={"steps": cfg["image_steps"], "seed": args.seed, "progress_bar": False,
                           "grayscale": cfg["dataset"] != "cifar10"})
        figures.append(images.plot(os.path.join(args.out, "filter_refinement_images.png")))
        numbers["images"] = {"stage": cfg["image_stage"], "resnet_score": images.score,
                             "plain_score": images.twin_score,
                             "score_over_twin": images.score_over_twin,
                             "resnet_same_channel_mean": images.same_channel_mean,
                             "plain_same_channel_mean": images.twin_same_channel_mean}

    # The verdict is the activation statistic's (the registry's chu_filters); the images'
    # score is Chu et al.'s own view, reported as a number.
    return _common.finish(args, "filters_chu", result.assessments(seed=args.seed), numbers,
                          cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
