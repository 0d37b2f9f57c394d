"""Liao & Poggio (arXiv 1604.03640), Jastrzebski et al. (arXiv 1710.04773): a weight-shared
residual stack needs batch norm that is not shared across its steps.

One pre-activation residual block applied n times in a small CIFAR-style network, built three
ways: ``naive`` (one batch-norm pair shared by every step, gamma 1), ``unshared_bn`` (a
batch-norm pair per step, gamma 0.1: the fix of Jastrzebski et al.) and ``unshared_weights``
(the reference, n ordinary blocks). Measured: ||h_i|| / ||h_0|| through the steps at
initialization, with batch statistics, and the test accuracy after training alike, with the
moving statistics and with each test batch's own (``test_accuracy_batch_stats``). The finding:
naive sharing gives a larger ||h_L|| / ||h_0|| at initialization and a worse test accuracy
than unshared batch norm. The networks and the comparison live in
``keras_resnet_lab.analysis.sharing`` (``sharing_network``, ``compare_weight_sharing``, which
explains where the accuracy gap comes from); this script is its command line.

Quick mode: 6 steps of width 16 on the 8x8 digits, 5 epochs. Full mode: 16 steps of width 32
on CIFAR-10 when prepared (else 32x32 digits), 30 epochs.

    python benchmarks/sharing_liao.py --quick --out /tmp/sharing   # ~25 s on 2 idle cores
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
    args = _common.parse_args(__doc__.splitlines()[0], "sharing_liao", argv)
    from keras_resnet_lab.analysis.sharing import VARIANTS, compare_weight_sharing

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    if not args.quiet:
        print(f"training {', '.join(VARIANTS)}: {cfg['steps']} steps of width {cfg['width']}, "
              f"{cfg['epochs']} epochs, {cfg['dataset']}", flush=True)
    result = compare_weight_sharing(
        train, test, steps=cfg["steps"], width=cfg["width"], epochs=cfg["epochs"],
        learning_rate=cfg["lr"], momentum=cfg["momentum"], batch_size=cfg["batch_size"],
        probe_examples=cfg["probe_examples"], naive_gamma=cfg["naive_gamma"],
        unshared_gamma=cfg["unshared_gamma"], blowup_factor=cfg["blowup_factor"],
        seed=args.seed, steps_per_epoch=steps, progress_bar=not args.quiet,
        verbose=0 if args.quiet or args.quick else 2)
    if not args.quiet:
        for variant in result.variants:
            print(f"  {variant}: ||h_L||/||h_0|| at init {result.runs[variant]['init_ratio']:.3g}")
    figures = [result.plot(os.path.join(args.out, "sharing.png"))]
    cfg.update(seed=args.seed, variants=list(VARIANTS))
    return _common.finish(args, "sharing_liao",
                          "Liao & Poggio 2016, arXiv 1604.03640; Jastrzebski et al. 2017, "
                          "arXiv 1710.04773", result.finding, result.criteria(),
                          {"runs": result.runs, "steps_per_epoch": steps}, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
