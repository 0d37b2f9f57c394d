"""He et al. (arXiv 1512.03385): deeper plain networks train worse; deeper ResNets do not.

Trains a shallow and a deep CIFAR network, each as a ResNet (option A shortcuts) and as its
plain twin (same layers, no shortcuts), with the same SGD recipe (cosine decay to 0), records
the training error per epoch, then the training and test error of the trained models. The
finding (the "degradation problem"): the deeper plain network has a higher training error than
the shallower one, while the deeper ResNet trains at least as well as the shallower ResNet.

    python benchmarks/plain_vs_residual_he.py --quick --out /tmp/he   # 20 vs 38 layers, ~30 s
    python benchmarks/plain_vs_residual_he.py --out results/he        # 20 vs 56 layers, 32x32

Quick mode compares 20 and 38 layers: at 8x8 pixels and 6 epochs ResNet-56 is still catching
up with ResNet-20 (its training error is falling but higher), so 56 layers need the full run.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(image_size=8, depths=(20, 38), widths=(8, 16, 32), epochs=6, lr=0.05,
             weight_decay=5e-4, batch_size=64)
FULL = dict(image_size=32, depths=(20, 56), widths=(16, 32, 64), epochs=40, lr=0.1,
            weight_decay=1e-4, batch_size=128)


def add_arguments(parser):
    parser.add_argument("--depths", type=int, nargs=2, default=None, metavar=("SHALLOW", "DEEP"),
                        help="the two depths, 6n+2 (default 20 38 quick, 20 56 full)")


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "plain_vs_residual_he", argv,
                              add_arguments)
    import keras
    import numpy as np

    from keras_resnet_lab.analysis.results import new_figure, save_figure
    from keras_resnet_lab.models import cifar_network

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    if args.depths:
        cfg["depths"] = tuple(args.depths)
    for depth in cfg["depths"]:
        if depth < 8 or (depth - 2) % 6:
            raise SystemExit(f"--depths must be 6n+2 (8, 14, 20, ...), got {depth}")
    train, test, steps, on_digits = _common.training_data(cfg, args.quick)
    train_eval = train if on_digits else None
    curves = {}
    for depth in cfg["depths"]:
        for plain in (True, False):
            name = f"{'plain' if plain else 'resnet'}{depth}"
            keras.utils.set_random_seed(args.seed)
            model = cifar_network((depth - 2) // 6, widths=cfg["widths"], plain=plain,
                                  shortcut="A", input_shape=test[0].shape[1:], num_classes=10,
                                  name=name)
            print(f"training {name} ({cfg['epochs']} epochs, {cfg['dataset']})", flush=True)
            schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], cfg["epochs"] * steps)
            history = _common.compile_and_fit(
                model, train, cfg["epochs"],
                keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=cfg["weight_decay"]),
                cfg["batch_size"], verbose=0 if args.quiet or args.quick else 2)
            curves[name] = {
                "train_error": [1.0 - a for a in history.history["accuracy"]],
                "train_loss": history.history["loss"],
                "final_train_error": _error(model, train_eval),
                "final_test_error": _error(model, test),
            }

    figure, axes = new_figure(2)
    for name, curve in curves.items():
        style = "--" if name.startswith("plain") else "-"
        color = "C3" if name.endswith(str(cfg["depths"][1])) else "C0"
        axes[0].plot(range(1, cfg["epochs"] + 1), curve["train_error"], style, color=color,
                     label=name)
    axes[0].set(xlabel="epoch", ylabel="training error (epoch mean)", ylim=(0, 1),
                title="Training: plain (dashed) vs ResNet (solid)")
    names = list(curves)
    x = np.arange(len(names))
    axes[1].bar(x - 0.2, [curves[n]["final_train_error"] or np.nan for n in names], 0.4,
                label="final training error")
    axes[1].bar(x + 0.2, [curves[n]["final_test_error"] for n in names], 0.4,
                label="final test error")
    axes[1].set_xticks(x, names)
    axes[1].set(ylabel="error", title="Trained models")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figures = [save_figure(figure, os.path.join(args.out, "training_curves.png"))]

    def final(name, key="final_train_error"):
        value = curves[name][key]
        return value if value is not None else float(np.mean(curves[name]["train_error"][-1:]))

    shallow, deep = cfg["depths"]
    criteria = [
        _common.criterion("plain_deep_minus_shallow_train_error",
                          final(f"plain{deep}") - final(f"plain{shallow}"), ">", 0.0,
                          f"plain-{deep} trains worse than plain-{shallow} (training error "
                          "of the trained model on the whole training set)"),
        _common.criterion("resnet_deep_minus_shallow_train_error",
                          final(f"resnet{deep}") - final(f"resnet{shallow}"), "<=", 0.01,
                          f"ResNet-{deep} trains at least as well as ResNet-{shallow} (within "
                          "one point)"),
    ]
    numbers = {
        "final_train_error": {name: final(name) for name in curves},
        "final_test_error": {name: final(name, "final_test_error") for name in curves},
        "curves": curves,
    }
    finding = ("The deeper plain network trains worse than the shallower one (degradation), "
               "the deeper residual network does not.")
    return _common.finish(args, "plain_vs_residual_he", "He et al. 2015, arXiv 1512.03385",
                          finding, criteria, numbers, cfg, figures, started)


def _error(model, data, batch_size=512):
    """Classification error of ``model`` (inference mode) on ``(x, y)``; None without data."""
    import numpy as np

    if data is None:
        return None
    x, y = data
    wrong = 0
    for lo in range(0, len(x), batch_size):
        logits = np.asarray(model(x[lo:lo + batch_size], training=False))
        wrong += int((logits.argmax(-1) != y[lo:lo + batch_size]).sum())
    return wrong / len(x)


if __name__ == "__main__":
    sys.exit(main())
