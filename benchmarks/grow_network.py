"""Grow a trained network by inserting identity-initialized residual blocks, then train on.

Trains a small CIFAR-style ResNet (one block a stage) on the embedded digits for ``E1`` epochs,
inserts one identity-initialized block after every block (``insert_blocks``: the grown model
computes exactly the same function, checked here), trains ``E2`` more epochs, and compares
with the deeper network (two blocks a stage) trained from scratch for ``E1 + E2`` epochs: the
same total number of steps. Writes ``grow_network.json`` and ``grow_network.png`` into --out.

Usage:
    python benchmarks/grow_network.py [--quick] [--kind zero_init|rezero] --out DIR
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _bench  # noqa: E402
import numpy as np  # noqa: E402


def _compile(model, lr):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _fit(model, data, epochs, lr, seed):
    import keras

    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    _compile(model, lr)
    history = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0,
                        validation_data=(x_test, y_test))
    return [float(a) for a in history.history["val_accuracy"]]


def run(quick, kind, seed=0):
    import keras

    from keras_resnet_lab.data import load_digits
    from keras_resnet_lab.models import blocks, cifar_network, insert_blocks

    size, first, second = (16, 3, 3) if quick else (32, 8, 8)
    data = load_digits(image_size=size)
    x_test = data[1][0]
    lr, widths = 3e-3, (8, 16, 32)

    keras.utils.set_random_seed(seed)
    small = cifar_network(1, widths=widths, input_shape=(size, size, 3), name="small")
    curve_small = _fit(small, data, first, lr, seed)
    before = small.predict(x_test, verbose=0)
    grown = insert_blocks(small, after=[b.name for b in blocks(small)], count=1, kind=kind)
    preserved = float(np.abs(grown.predict(x_test, verbose=0) - before).max())
    curve_grown = _fit(grown, data, second, lr, seed + 1)

    keras.utils.set_random_seed(seed)
    scratch = cifar_network(2, widths=widths, input_shape=(size, size, 3), name="scratch")
    curve_scratch = _fit(scratch, data, first + second, lr, seed)
    return {
        "settings": {"image_size": size, "epochs_before": first, "epochs_after": second,
                     "kind": kind, "widths": widths, "seed": seed},
        "blocks": {"small": len(blocks(small)), "grown": len(blocks(grown)),
                   "scratch": len(blocks(scratch))},
        "parameters": {"grown": grown.count_params(), "scratch": scratch.count_params()},
        "function_preserved_max_abs_diff": preserved,
        "accuracy": {"small_before_growing": curve_small[-1], "grown": curve_grown[-1],
                     "scratch_same_steps": curve_scratch[-1]},
        "curves": {"small_then_grown": curve_small + curve_grown, "scratch": curve_scratch},
    }


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, settings = result["curves"], result["settings"]
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(curves["scratch"]) + 1)
    ax.plot(epochs, curves["small_then_grown"], marker="o", label="small, then grown")
    ax.plot(epochs, curves["scratch"], marker="s", label="deep from scratch")
    ax.axvline(settings["epochs_before"] + 0.5, color="grey", ls="--", lw=1)
    ax.text(settings["epochs_before"] + 0.6, ax.get_ylim()[0] + 0.02,
            f"insert {result['blocks']['grown'] - result['blocks']['small']} blocks "
            f"({settings['kind']})", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (digits)")
    ax.set_title("Growing a trained ResNet vs training the deep one from scratch")
    ax.legend()
    fig.tight_layout()
    _bench._atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main(argv=None):
    parser = _bench.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("zero_init", "rezero"), default="zero_init")
    args = parser.parse_args(argv)
    start = time.time()
    result = run(args.quick, args.kind)
    result["environment"] = _bench.environment()
    result["wall_s"] = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    _bench.write_json(result, os.path.join(args.out, "grow_network.json"))
    plot(result, os.path.join(args.out, "grow_network.png"))
    print({k: round(v, 4) for k, v in result["accuracy"].items()},
          "preserved:", result["function_preserved_max_abs_diff"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
