"""Abdi & Nahavandi (arXiv 1609.05672): multi-residual networks at equal parameters.

The paper's claim: at equal parameters, fewer blocks with several residual branches each are
at least as accurate as more blocks with one (CIFAR-10 at 10.2M parameters: Multi-ResNet-200
with k = 5, 4.35% test error, against Pre-ResNet-1001, 4.62%). The rule it is judged by is the
registry entry ``abdi_multires`` (``keras_resnet_lab/findings/registry.py``): the test
accuracy of the k-branch net minus the 1-branch net, paired by seed, with a 95% interval over
seeds; results.json reports that verdict and nothing else decides one.

A multi-residual block adds k residual branches to its shortcut, x + sum_i F_i(x). The script
gives every network the same budget of residual branches per stage and spends it two ways:
many ordinary blocks (k = 1) or fewer blocks of k branches (quick: 4 blocks a stage against
1 block of 4 branches in two stages, 8 blocks against 2; full: 24 blocks against 12 of k = 2
and 6 of k = 4; the finding compares the most branches with k = 1). Every stage is as wide as
its input and the blocks are post-activation with option-A shortcuts, so the trainable
parameter counts are exactly equal (the library refuses unequal ones). The nets are trained
alike, once per seed (``--seed``, ``--seeds``: each seed initializes and trains every net
anew), with ``keras_resnet_lab.analysis.multi_residual.compare_multi_residual``. The exact
path counts are reported too: (k + 1)^n paths, C(n, j) k^j of length j.

Figures: multires_comparison.png (the first seed), path_lengths_k*.png and
findings_over_seeds.png (the statistic per seed, with its interval and threshold).

    python benchmarks/multires_abdi.py --quick --out /tmp/multires   # 8x8 digits, 3 seeds
    python benchmarks/multires_abdi.py --out results/multires        # 24 / 12 x 2 / 6 x 4
"""

import contextlib
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

# The quick budget: 4 residual branches a stage, two stages of 16 channels on 8x8 digits: 8
# ordinary blocks against 2 blocks of 4 branches, 6 epochs per seed. The k = 4 net must stay
# above the paper's depth threshold: with 8 channels, 3 blocks of 4 branches lose 2-3 points to
# 12 ordinary blocks. A run's test accuracy is measured on 360 digits (1 digit = 0.28 points).
QUICK = dict(image_size=8, total_branches=4, branches=(1, 4), widths=(16, 16), epochs=6,
             lr=0.1, batch_size=128)
FULL = dict(image_size=32, total_branches=8, branches=(1, 2, 4), widths=(32, 32, 32),
            epochs=30, lr=0.1, batch_size=128)

# The paper's CIFAR networks (pre-activation bottleneck blocks, 9n + 2 layers, 3 stages):
# Pre-ResNet-1001 (111 blocks a stage, k = 1) against Multi-ResNet-200 (22 blocks, k = 5), both
# 10.2M parameters, 4.62% against 4.35% CIFAR-10 error.
PAPER = {"pre_resnet1001": dict(blocks=3 * 111, branches=1, cifar10_error=4.62),
         "multi_resnet200_k5": dict(blocks=3 * 22, branches=5, cifar10_error=4.35)}


@contextlib.contextmanager
def _fast_graphs(enabled):
    """Skip Grappler's graph optimizations while ``enabled`` (quick mode): in a half-minute CPU
    run they cost more compile time than they save; the setting is restored on exit."""
    import tensorflow as tf

    if not enabled:
        yield
        return
    saved = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": saved})


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "multires_abdi", argv, seeded=True)
    import numpy as np

    from keras_resnet_lab.analysis.multi_residual import compare_multi_residual
    from keras_resnet_lab.analysis.paths import path_lengths

    cfg = _common.mode_settings(args, QUICK, FULL)
    seeds = _common.seed_list(args)
    cfg["seeds"] = seeds
    train, test, steps, on_digits = _common.training_data(cfg, args.quick)
    shapes = ", ".join(f"{cfg['total_branches'] // k} x k={k}" for k in cfg["branches"])
    if not args.quiet:
        print(f"training {shapes} blocks a stage, {len(seeds)} seed(s), {cfg['epochs']} "
              f"epochs, {cfg['dataset']}", flush=True)
    settings = dict(total_branches=cfg["total_branches"], branches=cfg["branches"],
                    epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                    learning_rate=cfg["lr"], optimizer="sgd", weight_decay=5e-4,
                    steps_per_epoch=None if on_digits else steps, widths=cfg["widths"],
                    shortcut="A", require_equal=True,
                    jit_compile=False if args.quick else "auto")
    with _fast_graphs(args.quick):
        seeded = _common.run_seeds(
            args, "multires",
            lambda seed: compare_multi_residual(
                train, test, seeds=(seed,), progress_bar=not args.quiet,
                verbose=_common.verbosity(args), **settings),
            settings)
    result = seeded.runs[0]
    figures = [result.plot(os.path.join(args.out, "multires_comparison.png"))]
    result.to_json(os.path.join(args.out, "multires_result.json"))
    deep, wide = result.configs[0], result.configs[-1]
    figures.append(path_lengths(deep["n_blocks"], deep["branches"]).plot(
        os.path.join(args.out, f"path_lengths_k{deep['branches']}.png")))
    figures.append(path_lengths(wide["n_blocks"], wide["branches"]).plot(
        os.path.join(args.out, f"path_lengths_k{wide['branches']}.png")))
    figures.append(_common.seeds_figure(args, seeded))

    # Every seed's test accuracy per network (runs[s].test_accuracy[i] = [its one seed's]).
    accuracy = [[r.test_accuracy[i][0] for r in seeded.runs]
                for i in range(len(result.configs))]
    loss = [[r.test_loss[i][0] for r in seeded.runs] for i in range(len(result.configs))]
    mean = [float(np.mean(a)) for a in accuracy]
    index = {c["branches"]: i for i, c in enumerate(result.configs)}
    # The path counts come from the blocks of the built models (polynomial product); their
    # difference from the closed forms (k + 1)^n and C(n, j) k^j is reported.
    formula_error = max(
        max(abs(c["paths"] - (c["branches"] + 1) ** c["n_blocks"]),
            max(abs(a - math.comb(c["n_blocks"], j) * c["branches"] ** j)
                for j, a in enumerate(c["path_counts"])))
        for c in result.configs)
    params = [c["params"] for c in result.configs]
    paper = {}
    for name, net in PAPER.items():
        dist = path_lengths(net["blocks"], net["branches"])
        paper[name] = dict(net, log10_paths=dist.n_blocks * math.log10(net["branches"] + 1),
                           mean_path_length=dist.mean_length)
    numbers = {
        "networks": {c["name"]: {
            "blocks_per_stage": c["blocks_per_stage"][0], "branches": c["branches"],
            "n_blocks": c["n_blocks"], "trainable_params": c["params"],
            "total_params": c["total_params"], "paths": c["paths"],
            "path_counts": c["path_counts"], "mean_path_length": c["mean_path_length"],
            "test_accuracy": accuracy[i], "test_loss": loss[i],
            "mean_test_accuracy": mean[i], "std_test_accuracy": float(np.std(accuracy[i]))}
            for i, c in enumerate(result.configs)},
        "seeds": seeds,
        "trainable_parameter_difference": max(params) - min(params),
        "path_count_formula_error": formula_error,
        "accuracy_gap": mean[index[wide["branches"]]] - mean[index[deep["branches"]]],
        "accuracy_gap_vs_k1": {str(c["branches"]): mean[i] - mean[index[deep["branches"]]]
                               for i, c in enumerate(result.configs)},
        "paper_networks": paper,
    }
    return _common.finish(args, "multires_abdi", seeded.assessments(), numbers, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
