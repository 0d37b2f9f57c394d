"""Szegedy et al. (arXiv 1602.07261): scaling residual branches down keeps deep stacks stable.

A deep pre-activation residual stack with no batch normalization anywhere (stem, branches and
head unnormalized), built three times with the branch scaled by s in {1, 0.3, 0.1} before the
addition (``residual_scale``), then trained with the same high learning rate. Measured:
||h_L|| / ||h_0|| through the blocks at initialization, whether training diverged (a NaN/inf
loss, or a loss above 10x the chance-level loss ln 10), and the final test accuracy. The
finding: the smaller s, the smaller the growth of the activations (bounded for s = 0.1) and
the more stable the training; s = 1 diverges, s = 0.1 trains to a good accuracy.

Why s = 1 fails here, honestly: with He-initialized unnormalized branches each block adds a
branch about as large as its input, so ||h_L|| / ||h_0|| grows like (1 + c s^2)^(L/2) with
c about 1-2: for L = 30 blocks that is ~1e4 for s = 1, ~10 for s = 0.3 and ~1.5 for s = 0.1.
The logits inherit the growth, the first loss is ~1e4, the first gradients are huge and one
SGD step at the shared learning rate (momentum 0.9) sends the loss to NaN. Nothing else differs
between the three runs (same seed, data, optimizer). s = 0.3 sits in between: no NaN, but at
this learning rate its ReLUs usually die (loss stuck at ln 10); its numbers are reported, not
judged. Szegedy et al.'s networks had batch norm inside the branches, which makes s = 0.3 safe
there; this setting has none, which is harsher.

Quick mode: 30 dense blocks of width 32 on the 8x8 digits. Full mode: one stage of 30 conv
blocks of 16 channels on CIFAR-10 when prepared (else 32x32 digits), with no downsampling, so
that ||h_L|| / ||h_0|| measures growth alone (a strided stage would also shrink the norm).

    python benchmarks/scaling_szegedy.py --quick --out /tmp/scaling   # ~20 s on 2 idle cores
    python benchmarks/scaling_szegedy.py --out results/scaling        # 30 conv blocks
"""

import math
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


def build(cfg, scale, input_shape):
    """The unnormalized deep residual stack with branch scale ``scale``."""
    from keras_resnet_lab.layers.residual import ResidualBlock
    from keras_resnet_lab.models.builder import Stage, build_network, conv_stem
    from keras_resnet_lab.models.mlp import residual_mlp

    name = f"scale_{scale:g}"
    block_kwargs = dict(preact=True, normalization="none", residual_scale=scale)
    if cfg["form"] == "dense":
        return residual_mlp(cfg["blocks"], cfg["width"], input_shape=input_shape, name=name,
                            **block_kwargs)
    widths = cfg["widths"]
    per_stage = [cfg["blocks"] // len(widths)] * len(widths)
    per_stage[-1] += cfg["blocks"] - sum(per_stage)
    stages = [Stage(w, n, 1 if i == 0 else 2) for i, (w, n) in enumerate(zip(widths, per_stage))]
    # Pre-activation blocks, no post-norm and a stem without batch norm: no normalization at all.
    return build_network(conv_stem(widths[0], 3, 1, norm=False), stages, ResidualBlock,
                         dict(block_kwargs, shortcut="A"), input_shape=input_shape, name=name,
                         num_classes=10)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "scaling_szegedy", argv)
    import keras

    from keras_resnet_lab.analysis.norms import LossRecorder, norm_growth
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    probe = test[0][:cfg["probe_examples"]]
    chance_loss = math.log(10)
    runs = {}
    figure, (ax_norm, ax_loss) = new_figure(2)
    for i, scale in enumerate(cfg["scales"]):
        keras.utils.set_random_seed(args.seed)
        model = build(cfg, scale, test[0].shape[1:])
        growth = norm_growth(model, probe)
        recorder = LossRecorder(stop_on_nonfinite=True)
        if not args.quiet:
            print(f"training {model.name}: {cfg['blocks']} blocks, s={scale:g}, "
                  f"||h_L||/||h_0|| at init {growth.final_ratio:.3g}", flush=True)
        model.compile(optimizer=keras.optimizers.SGD(cfg["lr"], momentum=cfg["momentum"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=False)
        fit_data = (train[0], train[1]) if isinstance(train, tuple) else (train,)
        model.fit(*fit_data, batch_size=cfg["batch_size"] if isinstance(train, tuple) else None,
                  epochs=cfg["epochs"], shuffle=True, callbacks=[recorder],
                  verbose=0 if args.quiet or args.quick else 2)
        stability = recorder.stability(reference=chance_loss,
                                       blowup_factor=cfg["blowup_factor"])
        runs[f"{scale:g}"] = dict(
            init_ratio=growth.final_ratio, init_ratio_per_block=growth.ratio,
            diverged=stability.diverged, first_nonfinite_step=stability.first_nonfinite,
            peak_loss_over_chance=stability.peak_ratio, first_loss=stability.losses[0],
            final_loss=stability.final_loss, steps_run=len(stability.losses),
            test_accuracy=_common.accuracy(model, test, batch_size=500))
        growth.draw_on(ax_norm, label=f"s = {scale:g}", color=f"C{i}")
        stability.draw_on(ax_loss, label=f"s = {scale:g}", color=f"C{i}")
    ax_norm.set_title(f"Activation growth at init ({cfg['blocks']} blocks, no BN)")
    ax_loss.axhline(chance_loss * cfg["blowup_factor"], color="gray", ls="--",
                    label="blow-up bound")
    ax_loss.set_title(f"Training at lr {cfg['lr']:g} (x: NaN)")
    ax_norm.legend(fontsize=8)
    ax_loss.legend(fontsize=8)
    figures = [save_figure(figure, os.path.join(args.out, "scaling.png"))]

    big, mid, small = (runs[f"{s:g}"] for s in cfg["scales"])
    criteria = [
        _common.criterion("init_ratio_s1_over_s0.3", big["init_ratio"] / mid["init_ratio"],
                          ">=", 10.0, "s = 1 grows the activations far more than s = 0.3"),
        _common.criterion("init_ratio_s0.3_over_s0.1", mid["init_ratio"] / small["init_ratio"],
                          ">=", 2.0, "and s = 0.3 more than s = 0.1"),
        _common.criterion("init_ratio_s0.1", small["init_ratio"], "<=", 2.0,
                          "with s = 0.1 ||h_L|| / ||h_0|| stays bounded (at most 2)"),
        _common.criterion("s1_diverged", float(big["diverged"]), ">=", 1.0,
                          "s = 1 diverges at this learning rate (NaN/inf or loss blow-up)"),
        _common.criterion("s0.1_diverged", float(small["diverged"]), "<=", 0.0,
                          "s = 0.1 trains without diverging"),
        _common.criterion("s0.1_test_accuracy", small["test_accuracy"], ">=", 0.8,
                          "and reaches a good test accuracy"),
        _common.criterion("s0.1_minus_s0.3_test_accuracy",
                          small["test_accuracy"] - mid["test_accuracy"], ">=", 0.0,
                          "a smaller scale trains at least as well"),
    ]
    cfg.update(seed=args.seed, chance_loss=chance_loss, normalization="none", preact=True)
    finding = ("Without batch norm, a deep residual stack's activations grow with depth the "
               "faster the larger the branch scale s; s = 1 diverges at a high learning rate "
               "while s = 0.1 keeps ||h_L|| / ||h_0|| bounded and trains stably.")
    return _common.finish(args, "scaling_szegedy", "Szegedy et al. 2016, arXiv 1602.07261",
                          finding, criteria, {"runs": runs, "steps_per_epoch": steps}, cfg,
                          figures, started)


if __name__ == "__main__":
    sys.exit(main())
