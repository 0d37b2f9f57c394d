"""Balduzzi et al. (arXiv 1702.08591): a deep plain net trains from the looks-linear init.

Plain fully connected networks (no shortcuts, no normalization, no hidden biases) on the
flattened digits: ``flatten -> dense stem -> blocks x (act -> dense -> act -> dense) -> dense
classifier``, i.e. 2 * blocks hidden layers of ``width`` units. The arms differ only where
stated:

- ``looks_linear``: CReLU activations (``[relu(x), relu(-x)]``), every dense layer that reads a
  CReLU starts as the mirrored orthogonal kernel ``[W; -W]`` (``LooksLinear``) and the stem is
  orthogonal: the whole network is exactly linear (an orthogonal map) at initialization;
- ``he_relu``: the usual initialization: ReLU and He-normal kernels;
- ``he_crelu`` (full mode, a control): the looks-linear architecture (CReLU, twice the fan-in)
  with He-normal kernels, so that the initialization alone differs from ``looks_linear``.

Every arm gets the same optimizer (Adam), learning rate(s), batch size, epochs and data order
(seeded); in full mode each arm is trained at every learning rate of a small grid and reported
at its best one. The finding: the deep plain network trains from the looks-linear
initialization (high training accuracy) and barely moves from the usual one.

    python benchmarks/looks_linear_balduzzi.py --quick --out /tmp/ll   # ~25 s, 50 hidden layers
    python benchmarks/looks_linear_balduzzi.py --out results/ll        # 100 layers, lr grid
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

KINDS = ("looks_linear", "he_relu", "he_crelu")
QUICK = dict(image_size=8, blocks=25, width=32, epochs=6, batch_size=64, lrs=(1e-3,),
             kinds=("looks_linear", "he_relu"))
FULL = dict(image_size=8, blocks=50, width=64, epochs=30, batch_size=64, lrs=(1e-4, 3e-4, 1e-3),
            kinds=KINDS)


def plain_network(kind, blocks, width, input_shape, num_classes=10, seed=0):
    """The plain (shortcut-free, normalization-free) dense network of one arm.

    ``flatten -> stem_dense -> stage1_block{b} ... -> predictions``; each block is a plain
    pre-activation dense ``ResidualBlock`` (``act -> dense -> act -> dense``, no bias).

    Args:
        kind: ``"looks_linear"`` (CReLU + ``LooksLinear`` kernels + orthogonal stem: exactly
            linear at initialization), ``"he_relu"`` (ReLU + He-normal) or ``"he_crelu"``
            (CReLU + He-normal).
        blocks: number of two-layer blocks (``2 * blocks`` hidden layers).
        width: units per layer.
        input_shape: image shape (flattened by the stem).
        num_classes: outputs (logits).
        seed: initialization seed.

    Example:
        >>> model = plain_network("looks_linear", 25, 32, (8, 8, 3))
    """
    import keras

    from keras_resnet_lab._checks import one_of, positive_int
    from keras_resnet_lab.layers.looks_linear import LooksLinear, crelu
    from keras_resnet_lab.layers.residual import ResidualBlock
    from keras_resnet_lab.models.builder import Stage, build_network

    kind = one_of("kind", kind, KINDS)
    width = positive_int("width", width)
    noise = keras.random.SeedGenerator(int(seed))
    looks_linear = kind == "looks_linear"

    def stem(x):
        x = keras.layers.Flatten(name="stem_flatten")(x)
        init = (keras.initializers.Orthogonal(seed=noise) if looks_linear
                else keras.initializers.HeNormal(seed=noise))
        return keras.layers.Dense(width, kernel_initializer=init, name="stem_dense")(x)

    block_kwargs = dict(
        form="dense", preact=True, plain=True, normalization="none",
        activation="relu" if kind == "he_relu" else crelu,
        kernel_initializer=(LooksLinear(seed=noise) if looks_linear
                            else keras.initializers.HeNormal(seed=noise)))
    return build_network(stem, [Stage(width, positive_int("blocks", blocks))], ResidualBlock,
                         block_kwargs, input_shape=tuple(input_shape), num_classes=num_classes,
                         name=f"{kind}_plain{2 * blocks}")


def linearity_error(model, x):
    """``max |f(x) - (f(0) + J x)| / max |f(x)|`` with ``J`` read from the basis vectors:
    0 (to rounding) for a network that computes an affine map."""
    import numpy as np

    shape = x.shape[1:]
    size = int(np.prod(shape))
    basis = np.concatenate([np.zeros((1, size)), np.eye(size)]).astype("float32")
    probes = np.asarray(model(basis.reshape((-1,) + shape), training=False), dtype=np.float64)
    offset, jacobian = probes[0], probes[1:] - probes[0]
    out = np.asarray(model(x, training=False), dtype=np.float64)
    affine = offset + x.reshape(len(x), -1).astype(np.float64) @ jacobian
    return float(np.abs(out - affine).max() / np.abs(out).max())


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "looks_linear_balduzzi", argv)
    import keras
    import numpy as np

    from keras_resnet_lab.analysis._common import per_example_loss
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    cfg = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    cfg.update(optimizer="Adam (same for every arm)", hidden_layers=2 * cfg["blocks"],
               normalization="none", shortcuts="none")
    train, test, _, _ = _common.training_data(cfg, quick=True)  # dense nets: digits only
    cfg["dataset"] = f"digits {cfg['image_size']}x{cfg['image_size']}x3, flattened"

    def score(model, data):
        out = np.asarray(model(data[0], training=False))
        loss = np.asarray(per_example_loss(out, data[1], from_logits=True))
        return float(loss.mean()), float(np.mean(out.argmax(-1) == data[1]))

    runs = {}
    for kind in cfg["kinds"]:
        for lr in cfg["lrs"]:
            keras.utils.set_random_seed(args.seed)
            model = plain_network(kind, cfg["blocks"], cfg["width"], train[0].shape[1:],
                                  seed=args.seed)
            init_linearity = linearity_error(model, test[0][:64])
            init_loss, init_acc = score(model, train)
            if not args.quiet:
                print(f"training {model.name} (lr {lr:g}, {cfg['epochs']} epochs)", flush=True)
            history = _common.compile_and_fit(model, train, cfg["epochs"],
                                              keras.optimizers.Adam(lr), cfg["batch_size"],
                                              verbose=0 if args.quiet or args.quick else 2)
            train_loss, train_acc = score(model, train)
            test_loss, test_acc = score(model, test)
            runs.setdefault(kind, []).append(dict(
                lr=lr, init_linearity_error=init_linearity, init_train_loss=init_loss,
                init_train_accuracy=init_acc, train_loss=train_loss, train_accuracy=train_acc,
                test_loss=test_loss, test_accuracy=test_acc,
                epoch_loss=[float(v) for v in history.history["loss"]],
                epoch_accuracy=[float(v) for v in history.history["accuracy"]]))
    # Each arm at its best learning rate of the grid (by final training accuracy).
    best = {kind: max(runs[kind], key=lambda r: r["train_accuracy"]) for kind in runs}

    figure, (ax1, ax2) = new_figure(2)
    for i, kind in enumerate(best):
        run = best[kind]
        epochs = np.arange(len(run["epoch_loss"]) + 1)
        label = f"{kind} (lr {run['lr']:g})"
        ax1.plot(epochs, [run["init_train_loss"]] + run["epoch_loss"], "o-", ms=3,
                 color=f"C{i}", label=label)
        ax2.plot(epochs, [run["init_train_accuracy"]] + run["epoch_accuracy"], "o-", ms=3,
                 color=f"C{i}", label=label)
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log",
            title=f"Plain net, {2 * cfg['blocks']} hidden layers, no BN")
    ax2.axhline(0.1, color="gray", lw=1, ls="--", label="chance")
    ax2.set(xlabel="epoch", ylabel="training accuracy", ylim=(0, 1),
            title="Looks-linear vs He initialization")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figures = [save_figure(figure, os.path.join(args.out, "looks_linear.png"))]

    ll, he = best["looks_linear"], best["he_relu"]
    criteria = [
        _common.criterion("looks_linear_init_linearity_error", ll["init_linearity_error"], "<=",
                          1e-4, "the looks-linear network is exactly linear at initialization"),
        _common.criterion("he_relu_init_linearity_error", he["init_linearity_error"], ">=",
                          1e-2, "the usual one is not"),
        _common.criterion("looks_linear_train_accuracy", ll["train_accuracy"], ">=", 0.85,
                          "the deep plain network trains from the looks-linear initialization"),
        _common.criterion("he_relu_train_accuracy", he["train_accuracy"], "<=", 0.5,
                          "and stays far from it from the usual He/ReLU initialization"),
        _common.criterion("train_accuracy_gap_looks_linear_minus_he_relu",
                          ll["train_accuracy"] - he["train_accuracy"], ">=", 0.4,
                          "same architecture depth, optimizer and budget: a large gap"),
    ]
    if "he_crelu" in best:
        criteria.append(_common.criterion(
            "train_accuracy_gap_looks_linear_minus_he_crelu",
            ll["train_accuracy"] - best["he_crelu"]["train_accuracy"], ">=", 0.3,
            "the same CReLU architecture with He kernels does not train either: the "
            "initialization, not CReLU, makes the difference"))
    numbers = {"best": best, "runs": runs,
               "chance_accuracy": 0.1, "train_examples": len(train[0]),
               "test_examples": len(test[0])}
    finding = ("A deep plain network (no shortcuts, no batch normalization) trains from the "
               "looks-linear initialization (CReLU with mirrored orthogonal weights, exactly "
               "linear at init) and stays near chance from the usual He/ReLU initialization "
               "under the same optimizer and budget.")
    return _common.finish(args, "looks_linear_balduzzi", "Balduzzi et al. 2017, arXiv 1702.08591",
                          finding, criteria, numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
