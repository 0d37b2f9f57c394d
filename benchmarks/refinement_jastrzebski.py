"""Jastrzebski et al. (arXiv 1710.04773): residual blocks perform iterative refinement.

Trains a pre-activation ResNet and measures, per block i and after every epoch,
cos(F_i(h_i), -dL/dh_i) (does the branch move h down the loss?) and ||F_i(h_i)|| / ||h_i||
(how much does it change h?); after training, the test loss with each block deleted or
applied twice. The finding: the branches point along the negative gradient (positive cosine),
later blocks make smaller relative changes than early ones, and dropping a late block hurts
less than dropping an early one.

    python benchmarks/refinement_jastrzebski.py --quick --out /tmp/refine
    python benchmarks/refinement_jastrzebski.py --out results/refine        # ResNet-56 v2
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, blocks_per_stage=6, widths=(8, 16, 32), epochs=4, lr=0.05,
             batch_size=64, probe_examples=128)
FULL = dict(image_size=32, blocks_per_stage=9, widths=(16, 32, 64), epochs=30, lr=0.1,
            batch_size=128, probe_examples=500)


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "refinement_jastrzebski", argv)
    import keras
    import matplotlib
    import numpy as np

    from keras_resnet_lab.analysis.refinement import branch_statistics, refinement
    from keras_resnet_lab.analysis.results import new_figure, save_figure
    from keras_resnet_lab.models import cifar_network

    cfg = _common.mode_settings(args, QUICK, FULL)
    train, test, steps, _ = _common.training_data(cfg, args.quick)
    probe = (test[0][:cfg["probe_examples"]], test[1][:cfg["probe_examples"]])
    keras.utils.set_random_seed(args.seed)
    model = cifar_network(cfg["blocks_per_stage"], widths=cfg["widths"], preact=True,
                          shortcut="A", input_shape=test[0].shape[1:], num_classes=10,
                          name=f"resnet{6 * cfg['blocks_per_stage'] + 2}v2")
    curves = {"epoch": [], "cos": [], "ratio": []}

    def measure(epoch):
        cos, ratio, _ = branch_statistics(model, *probe)
        curves["epoch"].append(epoch)
        curves["cos"].append(cos.mean(0).tolist())
        curves["ratio"].append(ratio.mean(0).tolist())

    measure(0)
    print(f"training {model.name} ({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
    schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
    _common.compile_and_fit(
        model, train, cfg["epochs"],
        keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4), cfg["batch_size"],
        callbacks=[keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: measure(epoch + 1))],
        verbose=_common.verbosity(args))
    result = refinement(model, test, progress_bar=not args.quiet)
    figures = [result.plot(os.path.join(args.out, "refinement.png"))]
    result.to_json(os.path.join(args.out, "refinement_result.json"))

    figure, (ax1, ax2) = new_figure(2)
    cos, ratio = np.array(curves["cos"]), np.array(curves["ratio"])
    cmap = matplotlib.colormaps["viridis"]
    for i, name in enumerate(result.block_names):
        color = cmap(i / max(1, len(result.block_names) - 1))
        ax1.plot(curves["epoch"], cos[:, i], color=color, label=name if i % 3 == 0 else None)
        ax2.plot(curves["epoch"], ratio[:, i], color=color)
    ax1.axhline(0, color="gray", lw=1)
    ax1.set(xlabel="epoch", ylabel="cos(F(h), -dL/dh)", title="Per block (dark: early)")
    ax2.set(xlabel="epoch", ylabel="||F(h)|| / ||h||", title="Relative change per block")
    ax1.legend(fontsize=7)
    figures.append(save_figure(figure, os.path.join(args.out, "refinement_epochs.png")))

    numbers = {
        "blocks": result.block_names, "intact_test_loss": result.intact_loss,
        "intact_test_accuracy": result.intact_accuracy,
        "cos_neg_grad": result.cos_neg_grad, "norm_ratio": result.norm_ratio,
        "drop_loss_increase": result.drop_loss_increase(),
        "repeat_loss": result.repeat_loss, "curves": curves,
    }
    return _common.finish(args, "refinement_jastrzebski", result.assessments(seed=args.seed),
                          numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
