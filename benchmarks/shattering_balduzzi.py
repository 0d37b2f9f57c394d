"""Balduzzi et al. (arXiv 1702.08591): gradients shatter with depth in plain nets, not in ResNets.

The paper's claim: the input gradients of a deep plain (feedforward) network decorrelate into
white noise with depth (by about 24 layers; covariance ~ 1/2^L), while a residual network's
stay correlated much longer (~ 1/sqrt(L) with batch norm); the "looks linear" initialization
keeps a plain network exactly linear. The rule it is judged by is the registry entry
``balduzzi_shattering`` (``keras_resnet_lab/findings/registry.py``): the |lag-1
autocorrelation| of the deepest plain net with batch norm, and the residual net's minus the
plain net's at that depth, each with a 95% interval over initialization seeds; results.json
reports that verdict and nothing else decides one.

Networks f: R -> R at initialization (width 200, rectifiers), 256 inputs on [-2, 2]; the
gradients g_j = df/dx(x_j) are measured along the line and their lag-1 autocorrelation is
computed at every depth, for plain and residual nets with and without batch normalization and
for the looks-linear initialization (``keras_resnet_lab.analysis.shattering.shattering``),
once per seed (``--seed``, ``--seeds``: each seed initializes every network anew). The finding
is judged with batch normalization in both (every unit then active on about half of the
inputs, the setting of the paper's analysis); the other kinds are reported.

Figures: shattering.png (the first seed) and findings_over_seeds.png (every statistic per seed,
with its interval and threshold).

    python benchmarks/shattering_balduzzi.py --quick --out /tmp/shatter   # 3 seeds
    python benchmarks/shattering_balduzzi.py --out results/shatter        # to 100 layers
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(depths=(1, 2, 4, 8, 12, 16, 24), width=200, n_points=256)
FULL = dict(depths=(1, 2, 4, 6, 8, 12, 16, 24, 32, 50), width=200, n_points=256)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "shattering_balduzzi", argv,
                              seeded=True)
    import numpy as np

    from keras_resnet_lab.analysis.shattering import KINDS, shattering
    from keras_resnet_lab.findings import finding

    cfg = dict(QUICK if args.quick else FULL)
    cfg["kinds"] = list(KINDS)
    cfg["layers_per_block"] = 2
    cfg["input_range"] = [-2.0, 2.0]
    cfg["seeds"] = _common.seed_list(args)
    settings = dict(kinds=cfg["kinds"], depths=cfg["depths"], width=cfg["width"],
                    n_points=cfg["n_points"], input_range=cfg["input_range"])
    seeded = _common.run_seeds(
        args, "shattering",
        lambda seed: shattering(seeds=[seed], progress_bar=not args.quiet, **settings),
        settings)
    result = seeded.runs[0]
    figures = [result.plot(os.path.join(args.out, "shattering.png")),
               _common.seeds_figure(args, seeded)]
    result.to_json(os.path.join(args.out, "shattering_result.json"))

    # Mean and spread over the seeds of the lag-1 autocorrelation (kinds x depths).
    per_seed = {kind: np.array([r.lag1[kind] for r in seeded.runs]) for kind in result.kinds}
    lag1 = {kind: v.mean(axis=0).tolist() for kind, v in per_seed.items()}
    layers = [d * cfg["layers_per_block"] for d in result.depths]
    # The registry's white-noise level (3/sqrt(n points)): the first depth below it, per kind.
    white = finding("balduzzi_shattering").criterion("plain_lag1").threshold

    def depth_below(kind, level):
        return next((n for n, v in zip(layers, lag1[kind]) if v < level), None)

    deepest = {kind: lag1[kind][-1] for kind in result.kinds}
    numbers = {
        "layers": layers, "lag1": lag1,
        "lag1_std": {kind: v.std(axis=0).tolist() for kind, v in per_seed.items()},
        "lag1_per_seed": {kind: v.tolist() for kind, v in per_seed.items()},
        "lag1_at_deepest": deepest,
        "white_noise_level": white,
        "depth_below_white": {k: depth_below(k, white) for k in result.kinds},
        "depth_below_0.5": {k: depth_below(k, 0.5) for k in result.kinds},
        "without_batch_norm": {
            "plain_lag1_at_deepest": deepest["plain"],
            "residual_lag1_at_deepest": deepest["residual"],
            "note": "Without normalization (He init, zero hidden biases) rectifier networks "
                    "of width 200 at these depths are reported for comparison; the finding is "
                    "judged with batch normalization.",
        },
    }
    return _common.finish(args, "shattering_balduzzi", seeded.assessments(), numbers, cfg,
                          figures, started)


if __name__ == "__main__":
    sys.exit(main())
