"""Liao & Poggio (arXiv 1604.03640), Jastrzebski et al. (arXiv 1710.04773): a weight-shared
residual stack needs batch norm that is not shared across its steps.

One pre-activation residual block applied n times (``SharedResidualStack``) in a small CIFAR-style
network (3x3 stem -> stack -> post BN -> pooling -> classifier), built three ways:

* ``naive``: one batch-norm pair for every step (shared statistics and gamma/beta), gamma 1;
* ``unshared_bn``: a batch-norm pair per step (own statistics and gamma/beta), gamma 0.1 -- the
  fix of Jastrzebski et al.;
* ``unshared_weights``: the reference, n ordinary blocks with their own weights.

Measured: ||h_i|| / ||h_0|| through the steps at initialization, with batch statistics (what
the first training steps see), and the test accuracy after training with the same optimizer.
The finding: naive sharing gives a larger ||h_L|| / ||h_0|| at initialization and a worse test
accuracy than unshared batch norm. The accuracy gap comes mostly from the statistics: a shared
batch norm's moving mean/variance average over steps whose activations differ in scale, so at
inference every step is normalized with the wrong statistics (``test_accuracy_batch_stats``,
the accuracy with each test batch's own statistics, shows the network itself did learn).

Quick mode: 6 steps of width 16 on the 8x8 digits, 5 epochs. Full mode: 16 steps of width 32
on CIFAR-10 when prepared (else 32x32 digits), 30 epochs.

    python benchmarks/sharing_liao.py --quick --out /tmp/sharing   # ~25 s on 2 idle cores
    python benchmarks/sharing_liao.py --out results/sharing        # 16 steps, width 32
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

VARIANTS = ("naive", "unshared_bn", "unshared_weights")
QUICK = dict(image_size=8, width=16, steps=6, epochs=5, lr=0.1, momentum=0.9, batch_size=64,
             probe_examples=256, naive_gamma=1.0, unshared_gamma=0.1, blowup_factor=10.0)
FULL = dict(image_size=32, width=32, steps=16, epochs=30, lr=0.1, momentum=0.9,
            batch_size=128, probe_examples=500, naive_gamma=1.0, unshared_gamma=0.1,
            blowup_factor=10.0)


def build(cfg, variant, input_shape):
    """The network of ``variant`` (see the module docstring)."""
    from keras_resnet_lab.layers.residual import ResidualBlock
    from keras_resnet_lab.layers.shared import SharedResidualStack
    from keras_resnet_lab.models.builder import Stage, build_network, conv_stem

    width, steps = cfg["width"], cfg["steps"]
    if variant == "unshared_weights":
        stage, block, kwargs = Stage(width, steps), ResidualBlock, dict(preact=True)
    else:
        naive = variant == "naive"
        stage, block = Stage(width, 1), SharedResidualStack
        kwargs = dict(steps=steps, norm_per_step=not naive,
                      gamma_init=cfg["naive_gamma" if naive else "unshared_gamma"])
    return build_network(conv_stem(width, 3, 1, norm=False), [stage], block, kwargs,
                         input_shape=input_shape, name=variant, post_norm=True,
                         num_classes=10)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "sharing_liao", argv)
    import keras

    from keras_resnet_lab.analysis.norms import LossRecorder, norm_growth
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    probe = test[0][:cfg["probe_examples"]]
    runs = {}
    figure, (ax_norm, ax_loss, ax_acc) = new_figure(3)
    for i, variant in enumerate(VARIANTS):
        keras.utils.set_random_seed(args.seed)
        model = build(cfg, variant, test[0].shape[1:])
        # With batch statistics, the batch is the probe: one pass over all of it.
        growth = norm_growth(model, probe, training=True, batch_size=len(probe))
        if not args.quiet:
            print(f"training {variant}: {cfg['steps']} steps of width {cfg['width']}, "
                  f"||h_L||/||h_0|| at init {growth.final_ratio:.3g}", flush=True)
        recorder = LossRecorder(stop_on_nonfinite=True)
        schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=cfg["momentum"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=False)
        on_arrays = isinstance(train, tuple)
        model.fit(*(train if on_arrays else (train,)),
                  batch_size=cfg["batch_size"] if on_arrays else None, epochs=cfg["epochs"],
                  shuffle=True, callbacks=[recorder],
                  verbose=0 if args.quiet or args.quick else 2)
        stability = recorder.stability(reference=math.log(10),
                                       blowup_factor=cfg["blowup_factor"])
        runs[variant] = dict(
            init_ratio=growth.final_ratio, init_ratio_per_step=growth.ratio,
            trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
            diverged=stability.diverged, final_train_loss=stability.final_loss,
            test_accuracy=_common.accuracy(model, test, batch_size=250),
            test_accuracy_batch_stats=_common.accuracy(model, test, training=True,
                                                               batch_size=250))
        label = variant.replace("_", " ")
        growth.draw_on(ax_norm, label=label, color=f"C{i}", marker="o")
        stability.draw_on(ax_loss, label=label, color=f"C{i}", alpha=0.8)
    ax_norm.set_title(f"Growth through {cfg['steps']} steps at init (batch statistics)")
    ax_loss.set_title("Training loss")
    x = range(len(VARIANTS))
    ax_acc.bar([v - 0.2 for v in x], [runs[v]["test_accuracy"] for v in VARIANTS], 0.4,
               label="moving statistics (inference)")
    ax_acc.bar([v + 0.2 for v in x], [runs[v]["test_accuracy_batch_stats"] for v in VARIANTS],
               0.4, label="each test batch's statistics")
    ax_acc.set_xticks(list(x), [v.replace("_", "\n") for v in VARIANTS])
    ax_acc.set(ylabel="test accuracy", ylim=(0, 1), title="After training")
    for ax in (ax_norm, ax_loss, ax_acc):
        ax.legend(fontsize=8)
    figures = [save_figure(figure, os.path.join(args.out, "sharing.png"))]

    naive, fixed = runs["naive"], runs["unshared_bn"]
    criteria = [
        _common.criterion("naive_over_unshared_bn_init_ratio",
                          naive["init_ratio"] / fixed["init_ratio"], ">=", 1.5,
                          "naive sharing grows ||h_L|| / ||h_0|| more at initialization"),
        _common.criterion("unshared_bn_minus_naive_test_accuracy",
                          fixed["test_accuracy"] - naive["test_accuracy"], ">=", 0.1,
                          "unshared batch norm gives a better test accuracy"),
        _common.criterion("unshared_bn_test_accuracy", fixed["test_accuracy"], ">=", 0.5,
                          "the shared stack with unshared batch norm does learn"),
        _common.criterion("unshared_bn_diverged", float(fixed["diverged"]), "<=", 0.0,
                          "and trains without diverging"),
    ]
    cfg.update(seed=args.seed, variants=list(VARIANTS))
    finding = ("Sharing one residual block's weights across steps with a naively shared batch "
               "norm grows ||h_L|| / ||h_0|| more at initialization and tests worse than "
               "giving every step its own batch norm (statistics and gamma/beta, gamma 0.1).")
    return _common.finish(args, "sharing_liao",
                          "Liao & Poggio 2016, arXiv 1604.03640; Jastrzebski et al. 2017, "
                          "arXiv 1710.04773", finding, criteria,
                          {"runs": runs, "steps_per_epoch": steps}, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
