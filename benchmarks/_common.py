"""What the paper-reproduction scripts share: arguments, data, training, criteria, results.json.

Every reproduction script runs as ``python benchmarks/NAME.py [--quick] --out DIR`` and writes
``DIR/results.json`` (the finding, whether it held, each criterion with the number it was
computed from and its threshold, the configuration, the environment, the runtime) and PNG
figures. ``--quick`` trains tiny models on the embedded digits (under a minute on 2 cores);
the default (full) mode is paper-shaped.

The criteria and the accuracy helper are the library's (``keras_resnet_lab.analysis``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnet_lab.analysis._training import accuracy  # noqa: E402,F401
from keras_resnet_lab.analysis.results import criterion  # noqa: E402,F401


def parse_args(description, name, argv=None, add_arguments=None):
    """Parse ``--quick``, ``--out`` (default ``benchmarks/results/NAME``), ``--seed``,
    ``--epochs`` (override) and ``--quiet``; ``add_arguments(parser)`` adds more."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny models on 8x8 digits: under a minute on 2 CPU cores")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", name),
                        help="output folder (default benchmarks/results/%(prog)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the mode's own)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    os.makedirs(args.out, exist_ok=True)
    return args


def environment():
    """Versions, machine and thread settings the numbers were measured with."""
    import keras
    import numpy
    import tensorflow as tf

    import keras_resnet_lab

    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": numpy.__version__,
        "keras_resnet_lab": keras_resnet_lab.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "env": {k: os.environ.get(k) for k in ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
                                               "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }


def write_results(out, payload):
    """Write ``payload`` (made JSON-safe) to ``out/results.json`` atomically; returns the path."""
    from keras_resnet_lab.analysis.results import jsonable

    path = os.path.join(out, "results.json")
    tmp = os.path.join(out, f".results-{uuid.uuid4().hex[:8]}.tmp.json")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(jsonable(payload), f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def finish(args, script, paper, finding, criteria, numbers, config, figures, started):
    """Assemble, write and print the results; returns the exit code (0)."""
    held = all(c["held"] for c in criteria)
    payload = {
        "script": script, "paper": paper, "mode": "quick" if args.quick else "full",
        "finding": finding, "finding_held": held, "criteria": criteria, "numbers": numbers,
        "config": config, "figures": [os.path.basename(f) for f in figures],
        "runtime_s": round(time.time() - started, 2), "environment": environment(),
    }
    path = write_results(args.out, payload)
    for c in criteria:
        print(f"  [{'ok' if c['held'] else 'NO'}] {c['name']}: {_fmt(c['value'])} "
              f"{c['comparison']} {c['threshold']}")
    print(f"finding_held={held}  ({payload['runtime_s']} s)  -> {path}")
    return 0


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def digits(image_size, batch_size=None):
    """The embedded digits ``((x_train, y_train), (x_test, y_test))`` at ``image_size``, 3
    channels; with ``batch_size`` the training set is cut to a multiple of it (see
    :func:`keras_resnet_lab.analysis._training.training_digits`)."""
    from keras_resnet_lab.analysis._training import training_digits

    return training_digits(image_size, channels=3, batch_size=batch_size)


def training_data(cfg, quick):
    """The data of a reproduction: ``(train, test, steps_per_epoch, on_digits)``.

    CIFAR-10 when it is prepared locally and the run is not ``quick``, else the embedded digits
    at ``cfg["image_size"]`` (training set cut to a multiple of ``cfg["batch_size"]``); records
    which in ``cfg["dataset"]``.
    """
    data = None if quick else cifar10_or_none()
    if data is None:
        cfg["dataset"] = f"digits {cfg['image_size']}x{cfg['image_size']}"
        train, test = digits(cfg["image_size"], cfg["batch_size"])
        return train, test, len(train[0]) // cfg["batch_size"], True
    cfg["dataset"] = "cifar10"
    train, test = data
    return train, test, 390, False


def cifar10_or_none():
    """CIFAR-10 ``(train_dataset, (x_test, y_test))`` when prepared locally, else None."""
    import numpy as np

    from keras_resnet_lab.data import DatasetNotFoundError, load_dataset

    try:
        train = load_dataset("cifar10", "train", batch_size=128, drop_remainder=True)
        test = load_dataset("cifar10", "test", batch_size=1000)
    except (DatasetNotFoundError, ImportError, ModuleNotFoundError):
        return None
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in test])
    return train, (np.concatenate(xs), np.concatenate(ys))


def compile_and_fit(model, train, epochs, optimizer, batch_size=64, validation=None,
                    callbacks=(), verbose=0):
    """Compile ``model`` (cross-entropy on logits, accuracy) and fit it; returns the history.

    ``train`` is ``(x, y)`` arrays or a batched ``tf.data.Dataset``.
    """
    import keras

    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    kwargs = dict(epochs=epochs, verbose=verbose, callbacks=list(callbacks),
                  validation_data=validation)
    if isinstance(train, tuple):
        return model.fit(train[0], train[1], batch_size=batch_size, shuffle=True, **kwargs)
    return model.fit(train, **kwargs)
