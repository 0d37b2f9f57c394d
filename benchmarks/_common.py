"""What the paper-reproduction scripts share: arguments, data, training, results.json.

Every reproduction script runs as ``python benchmarks/NAME.py [--quick] --out DIR`` and writes
``DIR/results.json`` (each finding it tests, judged by its rule in the registry
``keras_resnet_lab.findings``: the claim, every statistic with its estimate, 95% interval,
threshold and verdict, the seeds; the configuration, the environment, the runtime) and PNG
figures. ``--quick`` trains tiny models on the embedded digits, a short run; the default
(full) mode is paper-shaped. No script judges a finding itself: the verdicts are
the library results' ``assessments()``.

Scripts whose findings are judged over seeds (each seed trains its own networks, or draws its
own task) ask :func:`parse_args` for ``--seeds N`` (``seeded=True``) and run their library
experiment once per seed with :func:`run_seeds`, which aggregates the per-seed results into a
``keras_resnet_lab.analysis.comparisons.SeededComparison`` (intervals over the seeds).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnet_lab.analysis._training import accuracy  # noqa: E402,F401


def parse_args(description, name, argv=None, add_arguments=None, seeded=False):
    """Parse ``--quick``, ``--out`` (default ``benchmarks/results/NAME``), ``--seed``,
    ``--epochs`` (override) and ``--quiet``; with ``seeded`` also ``--seeds N`` (default 3:
    the seeds ``SEED .. SEED + N - 1``, see :func:`seed_list`); ``add_arguments(parser)``
    adds more."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny models on 8x8 digits: under a minute on 2 CPU cores")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", name),
                        help="output folder (default benchmarks/results/%(prog)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the mode's own)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if seeded:
        parser.add_argument("--seeds", type=int, default=3,
                            help="how many seeds, SEED .. SEED + N - 1, each running the whole "
                                 "experiment (default 3; the findings are judged over them)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if seeded and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    os.makedirs(args.out, exist_ok=True)
    return args


def mode_settings(args, quick, full):
    """The run's settings: a copy of ``quick`` (with ``--quick``) or ``full``, with ``--epochs``
    in place of their ``"epochs"`` when given."""
    cfg = dict(quick if args.quick else full)
    if args.epochs:
        cfg["epochs"] = args.epochs
    return cfg


def verbosity(args):
    """Keras's ``verbose`` for training: silent with ``--quiet`` or ``--quick``, else one line
    per epoch (2)."""
    return 0 if args.quiet or args.quick else 2


def seed_list(args):
    """The seeds of a seeded script: ``args.seed .. args.seed + args.seeds - 1``."""
    return list(range(args.seed, args.seed + args.seeds))


def run_seeds(args, name, run, settings):
    """Run one seed of experiment ``name`` per seed of :func:`seed_list` and judge its findings
    over the seeds.

    Args:
        args: the parsed arguments (``parse_args(..., seeded=True)``).
        name: the experiment's name in ``keras_resnet_lab.catalog.COMPARISONS``.
        run: ``run(seed)`` -> that seed's library result (its ``statistics()`` in the
            registry's keys).
        settings: the keyword arguments the library function ran with (recorded).

    Returns:
        ``SeededComparison``: ``.runs`` holds the per-seed results in seed order,
        ``.assessments()`` the findings judged by the registry over the seeds.
    """
    from keras_resnet_lab.analysis.comparisons import SeededComparison

    seeds = seed_list(args)
    runs = []
    for i, seed in enumerate(seeds):
        if not args.quiet:
            print(f"{name}: seed {seed} ({i + 1} of {len(seeds)})", flush=True)
        runs.append(run(seed))
    return SeededComparison.from_runs(name, seeds, runs, settings)


def run_training_seeds(args, name, compare, train, test, settings):
    """:func:`run_seeds` of a training comparison ``compare(train, test, seed=..., ...)``: one
    call per seed with ``settings``, progress bars unless ``--quiet``, Keras's
    :func:`verbosity`."""
    return run_seeds(
        args, name,
        lambda seed: compare(train, test, seed=seed, progress_bar=not args.quiet,
                             verbose=verbosity(args), **settings),
        settings)


def seeds_figure(args, seeded):
    """``seeded.plot`` into ``OUT/findings_over_seeds.png`` (the first seed's figure, then
    every criterion's per-seed values, its estimate with the 95% interval and threshold);
    returns the path."""
    return seeded.plot(os.path.join(args.out, "findings_over_seeds.png"))


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
    from keras_resnet_lab.atomic import atomic_write_json

    return atomic_write_json(payload, os.path.join(out, "results.json"))


def finish(args, script, assessments, numbers, config, figures, started):
    """Assemble, write and print the results of the findings ``assessments``; returns 0."""
    from keras_resnet_lab.findings import format_value, tally

    payload = {
        "script": script, "mode": "quick" if args.quick else "full",
        "findings": [a.to_dict() for a in assessments],
        "tally": tally(a.verdict for a in assessments), "numbers": numbers,
        "config": config, "figures": [os.path.basename(f) for f in figures],
        "runtime_s": round(time.time() - started, 2), "environment": environment(),
    }
    path = write_results(args.out, payload)
    for a in assessments:
        print(f"{a.key}: {a.verdict}")
        for c in a.finding.criteria:
            e = a.estimates[c.key]
            print(f"  {c.key}: {format_value(e.value, c.unit)} [{format_value(e.low, c.unit)}, "
                  f"{format_value(e.high, c.unit)}] {c.comparison} "
                  f"{format_value(c.threshold, c.unit)}: {a.verdicts[c.key]}")
    print(f"({payload['runtime_s']} s)  -> {path}")
    return 0


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
    """Compile ``model`` (cross-entropy on its logits, accuracy) and fit it, with the
    building blocks of ``keras_resnet_lab.training.fit``; returns Keras's history.

    ``train`` is ``(x, y)`` arrays (shuffled by Keras every epoch) or a batched
    ``tf.data.Dataset``.
    """
    from keras_resnet_lab.training.loop import run_epochs
    from keras_resnet_lab.training.recipes import compile_classifier

    compile_classifier(model, optimizer)
    return run_epochs(model, train, epochs, batch_size=batch_size, validation_data=validation,
                      callbacks=callbacks, verbose=verbose)
