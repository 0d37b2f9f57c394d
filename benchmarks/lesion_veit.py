"""Veit et al. (arXiv 1605.06431): residual networks survive lesions, plain networks do not.

Trains a pre-activation CIFAR-style ResNet and its plain twin (same layers, no shortcuts), then
deletes one block at a time, k random blocks, and reorders blocks by random swaps (error against
Kendall tau). The finding: deleting one block barely changes the ResNet's error (more at the
downsampling blocks), deleting one layer of the plain twin sends it to about chance, and the
error grows smoothly with the number of deleted blocks and with the amount of reordering.

    python benchmarks/lesion_veit.py --quick --out /tmp/lesion     # ResNet-32 v2, 8x8
    python benchmarks/lesion_veit.py --out results/lesion          # ResNet-56 v2, 32x32

Full mode uses CIFAR-10 when it is prepared for tensorflow-datasets, else the digits at 32x32.
The ensemble behaviour needs depth: at 4 blocks a stage (ResNet-26) single deletions already
cost 6-13 points for some seeds; from 5 blocks a stage on they cost about 2-3 (seeds 0-2).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, blocks_per_stage=5, widths=(8, 16, 32), epochs=6, lr=3e-3,
             draws=20, batch_size=64)
FULL = dict(image_size=32, blocks_per_stage=9, widths=(16, 32, 64), epochs=40, lr=1e-3,
            draws=20, batch_size=128)


def add_arguments(parser):
    parser.add_argument("--blocks-per-stage", type=int, default=None,
                        help="blocks per stage (depth 6n+2; default 5 quick = 32, 9 full = 56; "
                             "Veit et al. used 18 = ResNet-110)")


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "lesion_veit", argv, add_arguments)
    import keras

    from keras_resnet_lab.analysis.lesion import lesion_study
    from keras_resnet_lab.models import cifar_network

    cfg = _common.mode_settings(args, QUICK, FULL)
    if args.blocks_per_stage:
        cfg["blocks_per_stage"] = args.blocks_per_stage
    train, test, _, _ = _common.training_data(cfg, args.quick)
    models = []
    for plain in (False, True):
        keras.utils.set_random_seed(args.seed)
        model = cifar_network(cfg["blocks_per_stage"], widths=cfg["widths"], preact=True,
                              plain=plain, shortcut="A", input_shape=test[0].shape[1:],
                              num_classes=10, name="plain" if plain else "resnet")
        print(f"training {model.name}-{6 * cfg['blocks_per_stage'] + 2} "
              f"({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg["lr"], cfg["epochs"] * max(1, len(train[0]) // cfg["batch_size"])
            if isinstance(train, tuple) else cfg["epochs"] * 390)
        _common.compile_and_fit(model, train, cfg["epochs"], keras.optimizers.Adam(schedule),
                                cfg["batch_size"], verbose=_common.verbosity(args))
        models.append(model)
    result = lesion_study(models[0], test, plain_model=models[1], draws=cfg["draws"],
                          seed=args.seed, progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "lesion.png"))]
    result.to_json(os.path.join(args.out, "lesion_result.json"))

    res, plain = result.summary(), result.plain.summary()
    numbers = {
        "resnet": {"intact_error": result.intact_error, **res,
                   "single_error": dict(zip(result.block_names, result.single_error)),
                   "mean_error_by_k": result.mean_error_by_k()},
        "plain": {"intact_error": result.plain.intact_error, **plain,
                  "single_error": dict(zip(result.block_names, result.plain.single_error))},
        "chance_error": result.chance_error, "n_examples": result.n_examples,
        "downsampling_blocks": [n for n, d in zip(result.block_names, result.downsampling)
                                if d],
    }
    return _common.finish(args, "lesion_veit", result.assessments(seed=args.seed), numbers,
                          cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
