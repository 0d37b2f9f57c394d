"""Balduzzi et al. (arXiv 1702.08591): a deep plain net trains from the looks-linear init.

Plain fully connected networks (no shortcuts, no normalization, no hidden biases) on the
flattened digits: ``flatten -> dense stem -> blocks x (act -> dense -> act -> dense) -> dense
classifier``, i.e. 2 * blocks hidden layers of ``width`` units. The arms differ only where
stated:

- ``looks_linear``: CReLU activations (``[relu(x), relu(-x)]``), every dense layer that reads a
  CReLU starts as the mirrored orthogonal kernel ``[W; -W]`` (``LooksLinear``) and the stem is
  orthogonal: the whole network is exactly linear (an orthogonal map) at initialization;
- ``he_relu``: the usual initialization: ReLU and He-normal kernels;
- ``he_crelu`` (full mode, a control): the looks-linear architecture (CReLU, twice the fan-in)
  with He-normal kernels, so that the initialization alone differs from ``looks_linear``.

Every arm gets the same optimizer (Adam), learning rate(s), batch size, epochs and data order
(seeded); in full mode each arm is trained at every learning rate of a small grid and reported
at its best one. The finding: the deep plain network trains from the looks-linear
initialization (high training accuracy) and barely moves from the usual one.

The networks are ``keras_resnet_lab.models.plain_mlp`` and the driver is
``keras_resnet_lab.analysis.looks_linear.compare_initializations`` (whose defaults are the quick
configuration); this script picks the configuration and writes results.json and the figure.

    python benchmarks/looks_linear_balduzzi.py --quick --out /tmp/ll   # ~25 s, 50 hidden layers
    python benchmarks/looks_linear_balduzzi.py --out results/ll        # 100 layers, lr grid
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

KINDS = ("looks_linear", "he_relu", "he_crelu")
QUICK = dict(image_size=8, blocks=25, width=32, epochs=6, batch_size=64, lrs=(1e-3,),
             kinds=("looks_linear", "he_relu"))
FULL = dict(image_size=8, blocks=50, width=64, epochs=30, batch_size=64, lrs=(1e-4, 3e-4, 1e-3),
            kinds=KINDS)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "looks_linear_balduzzi", argv)
    from keras_resnet_lab.analysis.looks_linear import CHANCE_ACCURACY, compare_initializations

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    cfg.update(optimizer="Adam (same for every arm)", hidden_layers=2 * cfg["blocks"],
               normalization="none", shortcuts="none")
    train, test, _, _ = _common.training_data(cfg, quick=True)  # dense nets: digits only
    cfg["dataset"] = f"digits {cfg['image_size']}x{cfg['image_size']}x3, flattened"
    if not args.quiet:
        print(f"training {', '.join(cfg['kinds'])} plain nets of {cfg['hidden_layers']} hidden "
              f"layers (lr {', '.join(f'{lr:g}' for lr in cfg['lrs'])}, {cfg['epochs']} epochs)",
              flush=True)
    result = compare_initializations(
        train, test, inits=cfg["kinds"], blocks=cfg["blocks"], width=cfg["width"],
        epochs=cfg["epochs"], learning_rates=cfg["lrs"], batch_size=cfg["batch_size"],
        seed=args.seed, progress_bar=not args.quiet,
        verbose=0 if args.quiet or args.quick else 2)
    figures = [result.plot(os.path.join(args.out, "looks_linear.png"))]
    result.to_json(os.path.join(args.out, "looks_linear_result.json"))
    numbers = {"best": result.best, "runs": result.runs, "chance_accuracy": CHANCE_ACCURACY,
               "train_examples": result.train_examples, "test_examples": result.test_examples}
    return _common.finish(args, "looks_linear_balduzzi", "Balduzzi et al. 2017, arXiv 1702.08591",
                          result.finding, result.criteria(), numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
