"""He et al. (arXiv 1512.03385): deeper plain networks train worse; deeper ResNets do not.

The paper's claim (the "degradation problem"): a deeper plain network reaches a higher
training error than a shallower one, while a deeper residual network does not (CIFAR-10:
plain-56 trains worse than plain-20; ResNet-20/56/110 reach 8.75/6.97/6.43% test error). The
rule it is judged by is the registry entry ``he_degradation``
(``keras_resnet_lab/findings/registry.py``): the deep-minus-shallow final training error of
the plain nets and of the ResNets, each with a 95% interval over seeds; results.json reports
that verdict and nothing else decides one.

Trains a shallow and a deep CIFAR network, each as a ResNet (option A shortcuts) and as its
plain twin (same layers, no shortcuts), with He et al.'s recipe (SGD with momentum 0.9, weight
decay, the learning rate divided by 10 at 50% and 75% of the run; full mode first warms up for
one epoch at a tenth of it), then measures the training error of each trained network on the
whole training set in inference mode, and its test error. The driver is the library's
``keras_resnet_lab.analysis.degradation.compare_depths``, run once per seed (``--seed``,
``--seeds``: each seed initializes and trains the four networks anew); this script picks the
configuration and writes results.json and the figures.

Quick mode compares 20 and 38 layers of 8/16/32 channels on the 8x8 digits for 4 epochs (the
findings need not show at that scale); full mode 20 and 56 layers of 16/32/64 channels for 40
epochs on CIFAR-10 when prepared (as arrays, without augmentation: the training error is
measured on them), else on the 32x32 digits.

Figures: training_curves.png (the first seed) and findings_over_seeds.png (every statistic per
seed, with its interval and threshold).

    python benchmarks/plain_vs_residual_he.py --quick --out /tmp/he   # 20 vs 38 layers, 3 seeds
    python benchmarks/plain_vs_residual_he.py --out results/he        # 20 vs 56 layers, 32x32
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, depths=(20, 38), widths=(8, 16, 32), epochs=4, lr=0.05,
             momentum=0.9, weight_decay=5e-4, milestones=(0.5, 0.75), warmup_epochs=0,
             batch_size=64)
FULL = dict(image_size=32, depths=(20, 56), widths=(16, 32, 64), epochs=40, lr=0.1,
            momentum=0.9, weight_decay=1e-4, milestones=(0.5, 0.75), warmup_epochs=1,
            batch_size=128)


def add_arguments(parser):
    parser.add_argument("--depths", type=int, nargs=2, default=None, metavar=("SHALLOW", "DEEP"),
                        help="the two depths, 6n+2 (default 20 38 quick, 20 56 full)")


def _data(cfg, quick):
    """``(train, test)`` arrays: CIFAR-10 (not augmented) when prepared and not ``quick``, else
    the digits at ``cfg["image_size"]`` (training set cut to whole batches); records which in
    ``cfg["dataset"]``."""
    import numpy as np

    if not quick:
        from keras_resnet_lab.data import DatasetNotFoundError, load_dataset

        try:
            splits = [load_dataset("cifar10", split, batch_size=1000, augment=False,
                                   shuffle=False) for split in ("train", "test")]
        except (DatasetNotFoundError, ImportError, ModuleNotFoundError):
            splits = None
        if splits is not None:
            cfg["dataset"] = "cifar10 (no augmentation)"
            arrays = []
            for split in splits:
                xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in split])
                arrays.append((np.concatenate(xs), np.concatenate(ys)))
            return arrays[0], arrays[1]
    cfg["dataset"] = f"digits {cfg['image_size']}x{cfg['image_size']}"
    return _common.digits(cfg["image_size"], cfg["batch_size"])


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "plain_vs_residual_he", argv,
                              add_arguments, seeded=True)
    from keras_resnet_lab.analysis.degradation import compare_depths

    cfg = _common.mode_settings(args, QUICK, FULL)
    if args.depths:
        cfg["depths"] = tuple(args.depths)
    for depth in cfg["depths"]:
        if depth < 8 or (depth - 2) % 6:
            raise SystemExit(f"--depths must be 6n+2 (8, 14, 20, ...), got {depth}")
    train, test = _data(cfg, args.quick)
    seeds = _common.seed_list(args)
    cfg["seeds"] = seeds
    if not args.quiet:
        print(f"training plain and residual nets of {'/'.join(map(str, cfg['depths']))} layers "
              f"({cfg['epochs']} epochs, {cfg['dataset']}), {len(seeds)} seed(s)", flush=True)
    settings = dict(depths=cfg["depths"], widths=cfg["widths"], epochs=cfg["epochs"],
                    batch_size=cfg["batch_size"], learning_rate=cfg["lr"],
                    momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                    milestones=cfg["milestones"], warmup_epochs=cfg["warmup_epochs"])
    seeded = _common.run_training_seeds(args, "depth", compare_depths, train, test, settings)
    result = seeded.runs[0]
    figures = [result.plot(os.path.join(args.out, "training_curves.png")),
               _common.seeds_figure(args, seeded)]
    result.to_json(os.path.join(args.out, "depth_result.json"))
    # The first seed's numbers in full, every seed's final errors under per_seed.
    numbers = {
        "seed": result.seed,
        "final_train_error": result.final_train_error,
        "final_test_error": result.final_test_error,
        "final_train_loss": result.final_train_loss, "params": result.params,
        "curves": result.curves, "train_examples": result.train_examples,
        "per_seed": {str(r.seed): {"final_train_error": r.final_train_error,
                                   "final_test_error": r.final_test_error}
                     for r in seeded.runs},
    }
    return _common.finish(args, "plain_vs_residual_he", seeded.assessments(), numbers, cfg,
                          figures, started)


if __name__ == "__main__":
    sys.exit(main())
