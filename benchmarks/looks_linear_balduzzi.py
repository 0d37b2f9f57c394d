"""Balduzzi et al. (arXiv 1702.08591): a deep plain net trains from the looks-linear init.

The paper's claim: a deep plain network (about 200 layers in the paper) trains from the
looks-linear initialization, where the He initialization fails. The rule it is judged by is
the registry entry ``balduzzi_looks_linear`` (``keras_resnet_lab/findings/registry.py``): the
final training accuracy from the looks-linear initialization minus from the He
initialization, with a 95% interval over seeds; results.json reports that verdict and nothing
else decides one.

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
at its best one. The whole comparison runs once per seed (``--seed``, ``--seeds``: each seed
initializes and trains every arm anew).

The networks are ``keras_resnet_lab.models.plain_mlp`` and the driver is
``keras_resnet_lab.analysis.looks_linear.compare_initializations``; this script picks the
configuration and writes results.json and the figures: looks_linear.png (the first seed) and
findings_over_seeds.png (the statistic per seed, with its interval and threshold).

    python benchmarks/looks_linear_balduzzi.py --quick --out /tmp/ll   # 50 hidden layers, 3 seeds
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
    args = _common.parse_args(__doc__.splitlines()[0], "looks_linear_balduzzi", argv,
                              seeded=True)
    from keras_resnet_lab.analysis.looks_linear import CHANCE_ACCURACY, compare_initializations

    cfg = _common.mode_settings(args, QUICK, FULL)
    seeds = _common.seed_list(args)
    cfg.update(optimizer="Adam (same for every arm)", hidden_layers=2 * cfg["blocks"],
               normalization="none", shortcuts="none", seeds=seeds)
    train, test, _, _ = _common.training_data(cfg, quick=True)  # dense nets: digits only
    cfg["dataset"] = f"digits {cfg['image_size']}x{cfg['image_size']}x3, flattened"
    if not args.quiet:
        print(f"training {', '.join(cfg['kinds'])} plain nets of {cfg['hidden_layers']} hidden "
              f"layers (lr {', '.join(f'{lr:g}' for lr in cfg['lrs'])}, {cfg['epochs']} epochs),"
              f" {len(seeds)} seed(s)", flush=True)
    settings = dict(inits=cfg["kinds"], blocks=cfg["blocks"], width=cfg["width"],
                    epochs=cfg["epochs"], learning_rates=cfg["lrs"],
                    batch_size=cfg["batch_size"])
    seeded = _common.run_training_seeds(args, "looks_linear", compare_initializations, train,
                                        test, settings)
    result = seeded.runs[0]
    figures = [result.plot(os.path.join(args.out, "looks_linear.png")),
               _common.seeds_figure(args, seeded)]
    result.to_json(os.path.join(args.out, "looks_linear_result.json"))
    # The first seed's runs in full, every seed's best runs' headline numbers under per_seed.
    numbers = {"seed": result.seed, "best": result.best, "runs": result.runs,
               "chance_accuracy": CHANCE_ACCURACY, "train_examples": result.train_examples,
               "test_examples": result.test_examples,
               "per_seed": {str(r.seed): {init: {k: run[k] for k in (
                   "lr", "init_linearity_error", "train_accuracy", "test_accuracy")}
                   for init, run in r.best.items()} for r in seeded.runs}}
    return _common.finish(args, "looks_linear_balduzzi", seeded.assessments(), numbers, cfg,
                          figures, started)


if __name__ == "__main__":
    sys.exit(main())
