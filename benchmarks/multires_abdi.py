"""Abdi & Nahavandi (arXiv 1609.05672): multi-residual networks at equal parameters.

A multi-residual block adds k residual branches to its shortcut, x + sum_i F_i(x). The script
gives every network the same budget of residual branches per stage and spends it two ways:
many ordinary blocks (k = 1) or fewer blocks of k branches (quick: 4 blocks a stage against
1 block of 4 branches in two stages, 8 blocks against 2; full: 24 blocks against 12 of k = 2
and 6 of k = 4). Every stage is as wide as its input and the blocks are post-activation with
option-A shortcuts, so the trainable parameter counts are exactly equal (asserted). The nets
are trained alike (same recipe, same seeds). The finding: the multi-residual network is at
least as accurate (mean test accuracy no lower than the deep network's minus a small
tolerance). The exact path counts are reported too: (k + 1)^n paths, C(n, j) k^j of length j.

    python benchmarks/multires_abdi.py --quick --out /tmp/multires   # 8x8 digits, ~35 s
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
# ordinary blocks against 2 blocks of 4 branches, 6 epochs, the mean of 2 seeds. The k = 4 net
# must stay above the paper's depth threshold: with 8 channels, 3 blocks of 4 branches lose 2-3
# points to 12 ordinary blocks. Tolerance: a run's test accuracy is measured on 360 digits
# (1 digit = 0.28 points) and one net's accuracy moves by about a point from seed to seed, the
# mean of 2 seeds by about 0.7; 0.01 (under 4 test digits) asks for "no worse beyond that
# noise", not for a significant win. min_accuracy: both nets must have learned the task (a tie
# at chance would prove nothing).
QUICK = dict(image_size=8, total_branches=4, branches=(1, 4), widths=(16, 16), epochs=6,
             lr=0.1, batch_size=128, seeds=2, tolerance=0.01, min_accuracy=0.8)
FULL = dict(image_size=32, total_branches=8, branches=(1, 2, 4), widths=(32, 32, 32),
            epochs=30, lr=0.1, batch_size=128, seeds=3, tolerance=0.005, min_accuracy=0.8)

# The paper's CIFAR networks (pre-activation bottleneck blocks, 9n + 2 layers, 3 stages):
# Pre-ResNet-1001 (111 blocks a stage, k = 1) against Multi-ResNet-200 (22 blocks, k = 5), both
# 10.2M parameters, 4.62% against 4.35% CIFAR-10 error.
PAPER = {"pre_resnet1001": dict(blocks=3 * 111, branches=1, cifar10_error=4.62),
         "multi_resnet200_k5": dict(blocks=3 * 22, branches=5, cifar10_error=4.35)}


def _positive(text):
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser):
    parser.add_argument("--seeds", type=_positive, default=None,
                        help="training runs per network (default 2 quick, 3 full); the seeds "
                             "are SEED*N .. SEED*N + N - 1")


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
    args = _common.parse_args(__doc__.splitlines()[0], "multires_abdi", argv, add_arguments)
    from keras_resnet_lab.analysis.multi_residual import compare_multi_residual
    from keras_resnet_lab.analysis.paths import path_lengths

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    seeds = [args.seed * cfg["seeds"] + i for i in range(cfg["seeds"])]
    cfg["seed_list"] = seeds
    train, test, steps, on_digits = _common.training_data(cfg, args.quick)
    shapes = ", ".join(f"{cfg['total_branches'] // k} x k={k}" for k in cfg["branches"])
    print(f"training {shapes} blocks a stage, {len(seeds)} seed(s), {cfg['epochs']} epochs, "
          f"{cfg['dataset']}", flush=True)
    with _fast_graphs(args.quick):
        result = compare_multi_residual(
            cfg["total_branches"], train, test, cfg["branches"], seeds=seeds,
            epochs=cfg["epochs"], batch_size=cfg["batch_size"], learning_rate=cfg["lr"],
            optimizer="sgd", weight_decay=5e-4, steps_per_epoch=None if on_digits else steps,
            widths=cfg["widths"], shortcut="A", require_equal=True,
            jit_compile=False if args.quick else "auto",
            verbose=0 if args.quiet or args.quick else 2, progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "multires_comparison.png"))]
    result.to_json(os.path.join(args.out, "multires_result.json"))
    deep, wide = result.configs[0], result.configs[-1]
    figures.append(path_lengths(deep["n_blocks"], deep["branches"]).plot(
        os.path.join(args.out, f"path_lengths_k{deep['branches']}.png")))
    figures.append(path_lengths(wide["n_blocks"], wide["branches"]).plot(
        os.path.join(args.out, f"path_lengths_k{wide['branches']}.png")))

    params = [c["params"] for c in result.configs]
    # The path counts come from the blocks of the built models (polynomial product); the
    # closed forms (k + 1)^n and C(n, j) k^j are checked against them.
    formula_error = max(
        max(abs(c["paths"] - (c["branches"] + 1) ** c["n_blocks"]),
            max(abs(a - math.comb(c["n_blocks"], j) * c["branches"] ** j)
                for j, a in enumerate(c["path_counts"])))
        for c in result.configs)
    gap = result.accuracy_gap(wide["branches"], deep["branches"])
    criteria = [
        _common.criterion("trainable_parameter_difference", max(params) - min(params), "<=", 0,
                          "the networks have exactly the same number of parameters"),
        _common.criterion("path_count_formula_error", formula_error, "<=", 0,
                          "n blocks of k branches have (k + 1)^n paths, C(n, j) k^j of length j"),
        _common.criterion(f"mean_accuracy_k{wide['branches']}_minus_k{deep['branches']}", gap,
                          ">=", -cfg["tolerance"],
                          f"{wide['n_blocks']} blocks of {wide['branches']} branches are at "
                          f"least as accurate as {deep['n_blocks']} ordinary blocks (within "
                          f"{cfg['tolerance']})"),
    ]
    criteria.append(_common.criterion(
        "min_mean_test_accuracy", min(result.mean_accuracy), ">=", cfg["min_accuracy"],
        "every network learned the task (the comparison is not a tie at chance)"))
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
            "test_accuracy": result.test_accuracy[i], "test_loss": result.test_loss[i],
            "mean_test_accuracy": result.mean_accuracy[i],
            "std_test_accuracy": result.std_accuracy[i]}
            for i, c in enumerate(result.configs)},
        "seeds": result.seeds,
        "accuracy_gap": gap,
        "accuracy_gap_vs_k1": {str(c["branches"]): result.accuracy_gap(c["branches"],
                                                                     deep["branches"])
                               for c in result.configs},
        "paper_networks": paper,
    }
    finding = (f"At equal parameter count ({params[0]:,}), {wide['n_blocks']} multi-residual "
               f"blocks of k = {wide['branches']} branches are at least as accurate as "
               f"{deep['n_blocks']} ordinary residual blocks; n blocks of k branches have "
               "(k + 1)^n paths, C(n, j) k^j of length j.")
    return _common.finish(args, "multires_abdi", "Abdi & Nahavandi 2016, arXiv 1609.05672",
                          finding, criteria, numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
