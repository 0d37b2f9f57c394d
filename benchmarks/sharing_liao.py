"""Liao & Poggio (arXiv 1604.03640), Jastrzebski et al. (arXiv 1710.04773): a weight-shared
residual stack needs batch norm that is not shared across its steps.

The papers' claim (Jastrzebski et al.): sharing one residual block's weights across steps
naively makes the activations grow at initialization and tests worse; separate batch-norm
statistics per step (unshared batch norm) fix it. The rule it is judged by is the registry
entry ``jastrzebski_sharing`` (``keras_resnet_lab/findings/registry.py``): ||h_L|| / ||h_0||
at initialization of naive sharing over per-step batch norm, and the test-accuracy gap between
them, each with a 95% interval over seeds; results.json reports that verdict and nothing else
decides one.

One pre-activation residual block applied n times in a small CIFAR-style network, built three
ways: ``naive`` (one batch-norm pair shared by every step, gamma 1), ``unshared_bn`` (a
batch-norm pair per step, gamma 0.1: the fix of Jastrzebski et al.) and ``unshared_weights``
(the reference, n ordinary blocks), once per seed (``--seed``, ``--seeds``: each seed builds
and trains the three networks anew). Measured: ||h_i|| / ||h_0|| through the steps at
initialization, with batch statistics, and the test accuracy after training alike, with the
moving statistics and with each test batch's own (``test_accuracy_batch_stats``, reported, not
judged). The networks and the comparison live in ``keras_resnet_lab.analysis.sharing``
(``sharing_network``, ``compare_weight_sharing``); this script is its command line.

Quick mode: 6 steps of width 16 on the 8x8 digits, 5 epochs. Full mode: 16 steps of width 32
on CIFAR-10 when prepared (else 32x32 digits), 30 epochs.

Figures: sharing.png (the first seed) and findings_over_seeds.png (every statistic per seed,
with its interval and threshold).

    python benchmarks/sharing_liao.py --quick --out /tmp/sharing   # 3 seeds
    python benchmarks/sharing_liao.py --out results/sharing        # 16 steps, width 32
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, width=16, steps=6, epochs=5, lr=0.1, momentum=0.9, batch_size=64,
             probe_examples=256, naive_gamma=1.0, unshared_gamma=0.1, blowup_factor=10.0)
FULL = dict(image_size=32, width=32, steps=16, epochs=30, lr=0.1, momentum=0.9,
            batch_size=128, probe_examples=500, naive_gamma=1.0, unshared_gamma=0.1,
            blowup_factor=10.0)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "sharing_liao", argv, seeded=True)
    from keras_resnet_lab.analysis.sharing import VARIANTS, compare_weight_sharing

    cfg = _common.mode_settings(args, QUICK, FULL)
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    seeds = _common.seed_list(args)
    if not args.quiet:
        print(f"training {', '.join(VARIANTS)}: {cfg['steps']} steps of width {cfg['width']}, "
              f"{cfg['epochs']} epochs, {cfg['dataset']}, {len(seeds)} seed(s)", flush=True)
    settings = dict(steps=cfg["steps"], width=cfg["width"], epochs=cfg["epochs"],
                    learning_rate=cfg["lr"], momentum=cfg["momentum"],
                    batch_size=cfg["batch_size"], probe_examples=cfg["probe_examples"],
                    naive_gamma=cfg["naive_gamma"], unshared_gamma=cfg["unshared_gamma"],
                    blowup_factor=cfg["blowup_factor"], steps_per_epoch=steps)
    seeded = _common.run_training_seeds(args, "sharing", compare_weight_sharing, train, test,
                                        settings)
    result = seeded.runs[0]
    if not args.quiet:
        for r in seeded.runs:
            print(f"  seed {r.seed}: ||h_L||/||h_0|| at init " + ", ".join(
                f"{v} {r.runs[v]['init_ratio']:.3g}" for v in r.variants))
    figures = [result.plot(os.path.join(args.out, "sharing.png")),
               _common.seeds_figure(args, seeded)]
    cfg.update(seeds=seeds, variants=list(VARIANTS))
    # The first seed's runs in full, every seed's headline numbers under per_seed.
    numbers = {"seed": result.seed, "runs": result.runs, "steps_per_epoch": steps,
               "per_seed": {str(r.seed): {
                   v: {k: r.runs[v][k] for k in (
                       "init_ratio", "diverged", "final_train_loss", "test_accuracy",
                       "test_accuracy_batch_stats")} for v in r.variants}
                   for r in seeded.runs}}
    return _common.finish(args, "sharing_liao", seeded.assessments(), numbers, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
