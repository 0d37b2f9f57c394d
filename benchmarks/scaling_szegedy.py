"""Szegedy et al. (arXiv 1602.07261): scaling residual branches down keeps deep stacks stable.

A deep pre-activation residual stack with no batch normalization anywhere (stem, branches and
head unnormalized), built three times with the branch scaled by s in {1, 0.3, 0.1} before the
addition (``residual_scale``), then trained with the same high learning rate. Measured:
||h_L|| / ||h_0|| through the blocks at initialization, whether training diverged (a NaN/inf
loss, or a loss above 10x the chance-level loss ln 10), and the final test accuracy. The
finding: the smaller s, the smaller the growth of the activations (bounded for s = 0.1) and
the more stable the training; s = 1 diverges, s = 0.1 trains to a good accuracy.

Why s = 1 fails (activations growing like (1 + c s^2)^(L/2), ~1e4 at L = 30, one SGD step
to NaN): see ``keras_resnet_lab.analysis.scaling``, which builds the stacks
(``scaled_stack``) and runs the comparison (``compare_residual_scales``); this script is its
command line. s = 0.3 sits in between: no NaN, but at this learning rate its ReLUs usually die
(loss stuck at ln 10); its numbers are reported, not judged. Szegedy et al.'s networks had
batch norm inside the branches, which makes s = 0.3 safe there; this setting has none, which
is harsher.

Quick mode: 30 dense blocks of width 32 on the 8x8 digits. Full mode: one stage of 30 conv
blocks of 16 channels on CIFAR-10 when prepared (else 32x32 digits), with no downsampling, so
that ||h_L|| / ||h_0|| measures growth alone (a strided stage would also shrink the norm).

    python benchmarks/scaling_szegedy.py --quick --out /tmp/scaling   # ~20 s on 2 idle cores
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
    args = _common.parse_args(__doc__.splitlines()[0], "scaling_szegedy", argv)
    from keras_resnet_lab.analysis.scaling import compare_residual_scales

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    if not args.quiet:
        print(f"training {cfg['blocks']} {cfg['form']} blocks without batch norm, s = "
              f"{', '.join(f'{s:g}' for s in cfg['scales'])}, {cfg['epochs']} epochs, "
              f"{cfg['dataset']}", flush=True)
    result = compare_residual_scales(
        train, test, scales=cfg["scales"], form=cfg["form"], blocks=cfg["blocks"],
        width=cfg.get("width", 32), widths=cfg.get("widths", (16,)), epochs=cfg["epochs"],
        learning_rate=cfg["lr"], momentum=cfg["momentum"], batch_size=cfg["batch_size"],
        probe_examples=cfg["probe_examples"], blowup_factor=cfg["blowup_factor"],
        seed=args.seed, progress_bar=not args.quiet,
        verbose=0 if args.quiet or args.quick else 2)
    if not args.quiet:
        for scale in result.scales:
            print(f"  s={scale:g}: ||h_L||/||h_0|| at init {result.run(scale)['init_ratio']:.3g}")
    figures = [result.plot(os.path.join(args.out, "scaling.png"))]
    cfg.update(seed=args.seed, chance_loss=result.chance_loss, normalization="none",
               preact=True)
    return _common.finish(args, "scaling_szegedy", "Szegedy et al. 2016, arXiv 1602.07261",
                          result.finding, result.criteria(),
                          {"runs": result.runs, "steps_per_epoch": steps}, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
