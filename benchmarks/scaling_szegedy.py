"""Szegedy et al. (arXiv 1602.07261): scaling residual branches down keeps deep stacks stable.

The paper's claim: without batch norm a deep residual stack whose branches enter the sum at
full size blows up (Inception-ResNet variants with over 1,000 filters "died" early in
training), while scaling each branch by 0.1-0.3 before the addition keeps it bounded and
trainable. The rule it is judged by is the registry entry ``szegedy_scaling``
(``keras_resnet_lab/findings/registry.py``): the growth of ||h_L|| / ||h_0|| at initialization
with s = 1 over s = 0.1 and the test accuracy with s = 0.1, each with a 95% interval over
seeds; results.json reports that verdict and nothing else decides one.

A deep pre-activation residual stack with no batch normalization anywhere (stem, branches and
head unnormalized), built three times with the branch scaled by s in {1, 0.3, 0.1} before the
addition (``residual_scale``), then trained with the same high learning rate, once per seed
(``--seed``, ``--seeds``: each seed builds and trains the three stacks anew). Measured:
||h_L|| / ||h_0|| through the blocks at initialization, whether training diverged (a NaN/inf
loss, or a loss above 10x the chance-level loss ln 10), and the final test accuracy. s = 0.3
is reported, not judged.

Why s = 1 can fail (activations growing like (1 + c s^2)^(L/2)): see
``keras_resnet_lab.analysis.scaling``, which builds the stacks (``scaled_stack``) and runs the
comparison (``compare_residual_scales``); this script is its command line. Szegedy et al.'s
networks had batch norm inside the branches; this setting has none, which is harsher.

Quick mode: 30 dense blocks of width 32 on the 8x8 digits. Full mode: one stage of 30 conv
blocks of 16 channels on CIFAR-10 when prepared (else 32x32 digits), with no downsampling, so
that ||h_L|| / ||h_0|| measures growth alone (a strided stage would also shrink the norm).

Figures: scaling.png (the first seed) and findings_over_seeds.png (every statistic per seed,
with its interval and threshold).

    python benchmarks/scaling_szegedy.py --quick --out /tmp/scaling   # 3 seeds
    python benchmarks/scaling_szegedy.py --out results/scaling        # 30 conv blocks
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(form="dense", image_size=8, blocks=30, width=32, scales=(1.0, 0.3, 0.1),
             epochs=4, lr=0.02, momentum=0.9, batch_size=64, probe_examples=256,
             blowup_factor=10.0)
FULL = dict(form="conv", image_size=32, blocks=30, widths=(16,), scales=(1.0, 0.3, 0.1),
            epochs=15, lr=0.05, momentum=0.9, batch_size=128, probe_examples=500,
            blowup_factor=10.0)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "scaling_szegedy", argv, seeded=True)
    from keras_resnet_lab.analysis.scaling import compare_residual_scales

    cfg = _common.mode_settings(args, QUICK, FULL)
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    seeds = _common.seed_list(args)
    if not args.quiet:
        print(f"training {cfg['blocks']} {cfg['form']} blocks without batch norm, s = "
              f"{', '.join(f'{s:g}' for s in cfg['scales'])}, {cfg['epochs']} epochs, "
              f"{cfg['dataset']}, {len(seeds)} seed(s)", flush=True)
    settings = dict(scales=cfg["scales"], form=cfg["form"], blocks=cfg["blocks"],
                    width=cfg.get("width", 32), widths=cfg.get("widths", (16,)),
                    epochs=cfg["epochs"], learning_rate=cfg["lr"], momentum=cfg["momentum"],
                    batch_size=cfg["batch_size"], probe_examples=cfg["probe_examples"],
                    blowup_factor=cfg["blowup_factor"])
    seeded = _common.run_training_seeds(args, "scaling", compare_residual_scales, train, test,
                                        settings)
    result = seeded.runs[0]
    if not args.quiet:
        for r in seeded.runs:
            print(f"  seed {r.seed}: ||h_L||/||h_0|| at init " + ", ".join(
                f"s={scale:g} {r.run(scale)['init_ratio']:.3g}" for scale in r.scales))
    figures = [result.plot(os.path.join(args.out, "scaling.png")),
               _common.seeds_figure(args, seeded)]
    cfg.update(seeds=seeds, chance_loss=result.chance_loss, normalization="none",
               preact=True)
    # The first seed's runs in full, every seed's headline numbers under per_seed.
    numbers = {"seed": result.seed, "runs": result.runs, "steps_per_epoch": steps,
               "per_seed": {str(r.seed): {
                   f"{scale:g}": {k: r.run(scale)[k] for k in (
                       "init_ratio", "diverged", "first_nonfinite_step", "final_loss",
                       "test_accuracy")} for scale in r.scales} for r in seeded.runs}}
    return _common.finish(args, "scaling_szegedy", seeded.assessments(), numbers, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
