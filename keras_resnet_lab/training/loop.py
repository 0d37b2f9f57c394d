"""``fit``: train a model from a recipe into an output folder, resumably, on any strategy.

What lands in ``out_dir``::

    model.keras    the final model (with optimizer state), written atomically
    history.json   every epoch so far (``JsonHistory`` format), rewritten after each epoch
    curves.png     loss and accuracy per epoch, train and validation
    backup/        ``keras.callbacks.BackupAndRestore`` state while training runs; removed
                   last, once model.keras and curves.png are in place (with
                   ``keep_backup=True``, once the caller's own results are:
                   ``result.discard_backup()``)

Kill a run and start it again with the same ``out_dir`` (``resume=True``): it restores weights,
optimizer state (so the schedule continues at the right step) and the epoch counter from
``backup/`` and goes on from the last finished epoch; a run killed after its last epoch but
before its backup was removed trains no further and writes its results. At every instant
the run has its backup or its finished model on disk. A damaged backup (weights or metadata
missing, an epoch beyond ``epochs``, a history without its epochs) is refused with one error
naming the folder. A run that ended normally has no backup: calling ``fit`` again trains from
scratch. ``out_dir`` is locked while ``fit`` writes it (a second run on it is refused), must be
new, empty or a folder of this project's, and temporaries a killed run left are removed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import sys
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_resnet_lab._checks import boolean, examples, labels, positive_int
from keras_resnet_lab.atomic import save_model_atomic
from keras_resnet_lab.outdir import check_path, owned_folder, remove_folder_atomically
from keras_resnet_lab.training.callbacks import (
    AtomicBackupAndRestore,
    JsonHistory,
    TerminateOnNonFinite,
    check_backup,
    load_history,
)
from keras_resnet_lab.training.plots import plot_history
from keras_resnet_lab.training.precision import mixed_precision_model, resolve_policy
from keras_resnet_lab.training.recipes import Recipe, compile_model
from keras_resnet_lab.training.strategy import (
    get_strategy,
    is_chief,
    is_multi_worker,
    patch_for_multi_worker,
    worker_id,
)

__all__ = ["RunFiles", "TrainResult", "as_dataset", "fit", "run_epochs", "run_files"]


@dataclasses.dataclass
class TrainResult:
    """What ``fit`` returns.

    Args:
        model: the trained Keras model (the one also saved to ``model_path``).
        history: ``{key: [value per epoch]}`` for *all* epochs of the run, resumed ones
            included (``epoch`` is 1-based; also ``lr`` and ``time_s``).
        out_dir: the output folder.
        model_path: ``out_dir/model.keras``.
        history_path: ``out_dir/history.json``.
        curves_path: ``out_dir/curves.png``.
        backup_path: ``out_dir/backup``: the training backup, kept after training only with
            ``keep_backup=True`` or when the loss diverged (:meth:`discard_backup`).
        initial_epoch: 0-based epoch this call started at (> 0 when it resumed a backup).
        epochs_run: epochs trained by this call.
        terminated: ``TerminateOnNonFinite``'s message when the loss diverged, else ``None``.
        recipe: the recipe as a dict.
        precision: the Keras dtype policy the model was built under (``"float32"``,
            ``"mixed_float16"`` or ``"mixed_bfloat16"``).
        num_replicas: replicas that trained in sync (GPUs x workers; 1 without distribution).

    Example:
        >>> result = fit(build, (x, y), 10, he_cifar_recipe(), "runs/a")  # doctest: +SKIP
        >>> result.history["val_accuracy"][-1]  # doctest: +SKIP
    """

    model: keras.Model
    history: dict
    out_dir: str
    model_path: str
    history_path: str
    curves_path: str
    backup_path: str = ""
    initial_epoch: int = 0
    epochs_run: int = 0
    terminated: str | None = None
    recipe: dict = dataclasses.field(default_factory=dict)
    precision: str = "float32"
    num_replicas: int = 1

    @property
    def paths(self):
        """``{"model", "history", "curves"}`` -> path."""
        return {"model": self.model_path, "history": self.history_path, "curves": self.curves_path}

    def discard_backup(self):
        """Remove the training backup (whole or not at all), once everything the run writes is
        in place; the run is then finished."""
        remove_folder_atomically(self.backup_path)

    def to_dict(self):
        """JSON-serializable summary (everything but the model)."""
        out = dataclasses.asdict(dataclasses.replace(self, model=None))
        out.pop("model")
        return out


def as_dataset(data, batch_size=128, shuffle=False, repeat=False, seed=None, name="data"):
    """A ``tf.data.Dataset`` of ``(x, y)`` batches from a dataset or an ``(x, y)`` tuple.

    A ``tf.data.Dataset`` is returned unchanged (it must already be batched). Arrays are
    sliced, shuffled each epoch with a full buffer (``shuffle=True``), batched
    (``batch_size``, the global batch under a distribution strategy) and prefetched.

    Args:
        data: ``tf.data.Dataset`` or ``(x, y)`` numpy arrays.
        batch_size: batch size for arrays (positive int).
        shuffle: reshuffle arrays each epoch.
        repeat: repeat arrays forever (for a fixed ``steps_per_epoch``).
        seed: shuffle seed (``None``: random).
        name: the argument name used in error messages.

    Example:
        >>> ds = as_dataset((np.zeros((10, 4)), np.zeros(10)), batch_size=4)
        >>> [int(b[0].shape[0]) for b in ds]
        [4, 4, 2]
    """
    if isinstance(data, tf.data.Dataset):
        return data
    batch_size = positive_int("batch_size", batch_size)
    # Any dtype, NaN allowed (TerminateOnNonFinite reports where a NaN loss came from); the
    # labels are checked against the model in _check_labels.
    x, y = examples(name, data, labels="any", dataset="a batched tf.data.Dataset of (x, y)",
                    finite=False, dtype=None)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def _steps_per_epoch(train_data, ds, batch_size, steps_per_epoch):
    if steps_per_epoch is not None:
        if (
            isinstance(steps_per_epoch, bool)
            or not isinstance(steps_per_epoch, numbers.Integral)
            or steps_per_epoch < 1
        ):
            raise ValueError(
                f"steps_per_epoch must be a positive integer or None, "
                f"got steps_per_epoch={steps_per_epoch!r}"
            )
        return int(steps_per_epoch)
    if not isinstance(train_data, tf.data.Dataset):
        return math.ceil(len(train_data[0]) / batch_size)
    n = int(ds.cardinality())
    if n < 1:
        kind = {-1: "infinite", -2: "unknown"}.get(n, "empty")
        raise ValueError(
            f"steps_per_epoch=None needs a dataset of known finite length, but train_data's "
            f"cardinality is {kind} ({n}); pass steps_per_epoch"
        )
    return n


def _ensure_built(model, ds):
    """Build a subclassed model on one batch (BackupAndRestore needs a built model)."""
    if model.built:
        return
    x, _ = next(iter(ds.take(1)))[:2]
    model(x)


def _kept(backup_dir):
    """What a diverged run leaves to resume from, for its message."""
    if os.path.isdir(backup_dir):
        return (f"the last good epoch is kept in {backup_dir}; a run with the same out_dir "
                "resumes from it")
    return ("no epoch ended with a finite loss, so there is no backup to resume from (try a "
            "lower learning rate)")


def _check_resumable(backup_dir, history_path, epochs):
    """Refuse to resume from a damaged backup, or one whose history lacks its epochs."""
    done = check_backup(backup_dir, epochs)
    recorded = []
    if os.path.exists(history_path):
        try:
            recorded = {r.get("epoch") for r in load_history(history_path)}
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot resume the run in {os.path.dirname(backup_dir)}: its "
                             f"history.json is unreadable ({error})") from error
    missing = [e for e in range(1, done + 1) if e not in recorded]
    if missing:
        raise ValueError(f"cannot resume from the training backup in {backup_dir}: it has "
                         f"finished {done} epochs but history.json lacks epoch(s) "
                         f"{', '.join(map(str, missing[:5]))}. Delete that folder to start "
                         "over (or train with --force / fit(resume=False))")


def _check_labels(name, data, model, loss):
    """Integer class labels in ``[0, classes)`` for array data and the default loss."""
    if loss is not None or data is None or isinstance(data, tf.data.Dataset):
        return
    y = np.asarray(data[1])
    classes = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if y.ndim == 1 and classes is not None:
        labels(name, y, classes)


def fit(
    model_fn,
    train_data,
    epochs,
    recipe,
    out_dir,
    validation_data=None,
    steps_per_epoch=None,
    strategy=None,
    resume=True,
    verbose=1,
    callbacks=(),
    batch_size=128,
    loss=None,
    metrics=("accuracy",),
    jit_compile="auto",
    seed=None,
    precision=None,
    keep_backup=False,
):
    """Build, compile and train a model with ``recipe``; write results into ``out_dir``.

    ``model_fn()`` (zero arguments, returns an uncompiled ``keras.Model``) and the compile run
    inside ``strategy.scope()``, so variables are created where the strategy wants them.
    The schedule spans ``steps_per_epoch * epochs`` optimizer steps. Callbacks, in order:
    ``JsonHistory`` (``history.json``), ``BackupAndRestore(out_dir/backup)``,
    ``TerminateOnNonFinite``, then yours. After training, ``model.keras`` and ``curves.png``
    are written atomically. Under a multi-worker strategy only the chief writes into
    ``out_dir``; other workers write into ``out_dir/.workers/<task>`` (so their backups do
    not collide), and Keras's multi-worker failures are worked around
    (``patch_for_multi_worker``): every worker then logs the same, worker-averaged, metrics.
    Give every worker the same ``seed`` so that they shuffle alike, and create the
    multi-worker strategy (``get_strategy("multiworker")``) before anything else in the
    process uses TensorFlow (its collective ops must be configured at start-up), then pass it.

    Mixed precision: with ``precision="mixed_float16"`` (GPUs) or ``"mixed_bfloat16"``
    the model is built under that policy with float32 logits (``mixed_precision_model``);
    ``mixed_float16`` gets dynamic loss scaling from ``model.compile``. XLA:
    ``jit_compile=True``.

    Args:
        model_fn: zero-argument callable returning the (uncompiled) ``keras.Model``.
        train_data: batched ``tf.data.Dataset`` of ``(x, y)``, or ``(x, y)`` numpy arrays
            (batched by ``batch_size``, reshuffled each epoch).
        epochs: total number of epochs of the run (resumed epochs included).
        recipe: a ``Recipe`` (``he_cifar_recipe()``, ``general_recipe()``, ...).
        out_dir: output folder (created).
        validation_data: optional dataset or ``(x, y)`` arrays, evaluated after each epoch.
        steps_per_epoch: optimizer steps per epoch; ``None``: one pass over ``train_data``
            (a dataset must then have a known finite cardinality). Given for arrays, the
            arrays are repeated.
        strategy: a ``tf.distribute.Strategy``, a name for ``get_strategy``, or ``None``
            (``tf.distribute.get_strategy()``).
        resume: continue from ``out_dir/backup`` and ``history.json`` if present; False
            deletes an existing backup and starts a new history.
        verbose: Keras verbosity (1: progress bar, 2: one line per epoch, 0: silent). Where
            standard output is not a terminal, 1 writes one line per epoch, free of the
            progress bar's control codes.
        callbacks: extra Keras callbacks (run after the built-in ones).
        batch_size: batch size for array inputs.
        loss: loss instead of the default (see ``compile_model``).
        metrics: metrics for ``compile_model``.
        jit_compile: ``"auto"``, True (XLA) or False (see ``compile_model``).
        seed: shuffle seed for array inputs.
        precision: ``None``/``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"`` (or the
            short ``"float16"``, ``"bfloat16"``): the Keras dtype policy of the model.
        keep_backup: keep ``out_dir/backup`` after writing ``model.keras`` and ``curves.png``,
            for a caller that writes more results: it then calls ``result.discard_backup()``.
            Until then the run counts as unfinished and a resumed ``fit`` finishes it (with
            no epoch left to train, it writes the model and curves again from the backup).

    Returns:
        ``TrainResult``.

    Example:
        >>> def build():
        ...     inp = keras.Input((8, 8, 1))
        ...     x = keras.layers.Flatten()(inp)
        ...     return keras.Model(inp, keras.layers.Dense(2)(x))
        >>> result = fit(build, (x, y), epochs=3, recipe=general_recipe(warmup_epochs=1),
        ...              out_dir="runs/tiny")  # doctest: +SKIP
        >>> sorted(result.paths)  # doctest: +SKIP
        ['curves', 'history', 'model']
    """
    # 1. Check every argument that needs neither the data nor the disk.
    epochs, resume, keep_backup, callbacks, policy, strategy = _check_arguments(
        model_fn, epochs, recipe, resume, verbose, callbacks, precision, strategy, keep_backup)
    # 2. Paths: the folder this process writes (the chief's is out_dir), locked meanwhile.
    out_dir = check_path(out_dir, "out_dir")
    write_dir = out_dir
    if not is_chief(strategy):
        write_dir = os.path.join(out_dir, ".workers", worker_id(strategy))
    with owned_folder(write_dir, "train", reuse=True, what="out_dir"):
        files = run_files(write_dir)
        if resume and os.path.isdir(files.backup):
            _check_resumable(files.backup, files.history, epochs)
        # 3. Build: the datasets, then the model compiled for steps x epochs.
        train_ds = as_dataset(train_data, batch_size, shuffle=True,
                              repeat=steps_per_epoch is not None, seed=seed, name="train_data")
        val_ds = None
        if validation_data is not None:
            val_ds = as_dataset(validation_data, batch_size, name="validation_data")
        steps = _steps_per_epoch(train_data, train_ds, batch_size, steps_per_epoch)
        model = _build(model_fn, strategy, policy, train_ds, recipe, steps, epochs,
                       labelled=(("train_data", train_data), ("validation_data", validation_data)),
                       loss=loss, metrics=metrics, jit_compile=jit_compile)
        # 4. Train, from the backup when there is one to resume.
        history_cb, terminate_cb, keras_history = _train(
            model, train_ds, val_ds, epochs, steps_per_epoch, files, resume, verbose, callbacks)
        # 5. Write the model and the curves; the backup goes last.
        _write(model, files, recipe, history_cb.records, terminate_cb.message, keep_backup,
               verbose)
    return TrainResult(
        model=model,
        history=history_cb.columns,
        out_dir=write_dir,
        model_path=files.model,
        backup_path=files.backup,
        history_path=files.history,
        curves_path=files.curves,
        initial_epoch=keras_history.epoch[0] if keras_history.epoch else int(epochs),
        epochs_run=len(keras_history.epoch),
        terminated=terminate_cb.message,
        recipe=recipe.to_dict(),
        precision=policy,
        num_replicas=int(strategy.num_replicas_in_sync),
    )


class RunFiles(typing.NamedTuple):
    """What :func:`fit` writes into ``folder``: ``model.keras``, ``history.json``,
    ``curves.png`` and the ``backup`` folder."""

    folder: str
    model: str
    history: str
    curves: str
    backup: str


def run_files(folder):
    """The :class:`RunFiles` of a run in ``folder``."""
    return RunFiles(folder, *(os.path.join(folder, name) for name in
                              ("model.keras", "history.json", "curves.png", "backup")))


def _check_arguments(model_fn, epochs, recipe, resume, verbose, callbacks, precision, strategy,
                     keep_backup):
    """Step 1 of :func:`fit`: ``(epochs, resume, keep_backup, callbacks, policy, strategy)``
    checked and normalized (a strategy name becomes the strategy)."""
    if isinstance(model_fn, keras.Model):
        raise ValueError(
            f"model_fn must be a zero-argument callable building a keras.Model, got the model "
            f"instance {model_fn.name!r}: the model must be created inside strategy.scope(), "
            "so pass a builder such as `lambda: build_model()`"
        )
    if not callable(model_fn):
        raise ValueError(
            f"model_fn must be a zero-argument callable building a keras.Model, "
            f"got model_fn={type(model_fn).__name__}"
        )
    epochs = positive_int("epochs", epochs)
    resume = boolean("resume", resume)
    keep_backup = boolean("keep_backup", keep_backup)
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got recipe={type(recipe).__name__}")
    if verbose not in (0, 1, 2, "auto"):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got verbose={verbose!r}")
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not isinstance(cb, keras.callbacks.Callback):
            raise ValueError(
                f"callbacks must hold keras.callbacks.Callback objects, got {type(cb).__name__}"
            )
    policy = resolve_policy(precision)
    if strategy is None or isinstance(strategy, str):
        strategy = get_strategy(strategy)
    elif not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(
            "strategy must be a tf.distribute.Strategy, a name "
            f"('default', 'mirrored', 'multiworker') or None, got strategy={strategy!r}"
        )
    return epochs, resume, keep_backup, callbacks, policy, strategy


def _build(model_fn, strategy, policy, train_ds, recipe, steps, epochs, *, labelled, loss,
           metrics, jit_compile):
    """Step 3 of :func:`fit`: ``model_fn()`` built under ``policy`` and compiled with
    ``recipe`` inside ``strategy.scope()`` (its labels checked against it first), patched for
    multi-worker training where that applies."""
    with strategy.scope():
        model = mixed_precision_model(model_fn, policy)
        if not isinstance(model, keras.Model):
            raise ValueError(f"model_fn must return a keras.Model, got {type(model).__name__}")
        for name, data in labelled:
            _check_labels(name, data, model, loss)
        _ensure_built(model, train_ds)
        compile_model(model, recipe, steps, epochs, loss=loss, metrics=metrics,
                      jit_compile=jit_compile)
    if is_multi_worker(strategy):
        x, y = next(iter(train_ds.take(1)))[:2]
        patch_for_multi_worker(model, (x, y), strategy)
    return model


def _train(model, train_ds, val_ds, epochs, steps_per_epoch, files, resume, verbose, callbacks):
    """Step 4 of :func:`fit`: train with ``JsonHistory``, the backup and
    ``TerminateOnNonFinite`` before ``callbacks``; ``(history callback, terminate callback,
    Keras history)``."""
    if not resume:
        remove_folder_atomically(files.backup)
    history_cb = JsonHistory(files.history, resume=resume)
    terminate_cb = TerminateOnNonFinite()
    all_callbacks = [
        history_cb,
        # The backup outlives training: it is removed only once model.keras (and whatever the
        # caller writes after, with keep_backup) is in place, so a kill at any instant leaves
        # the backup or the finished model.
        AtomicBackupAndRestore(files.backup, delete_checkpoint=False),
        terminate_cb,
        *callbacks,
    ]
    # Arrays were shuffled by as_dataset; datasets keep the caller's order.
    keras_history = run_epochs(model, train_ds, epochs, steps_per_epoch=steps_per_epoch,
                               validation_data=val_ds, callbacks=all_callbacks, verbose=verbose)
    return history_cb, terminate_cb, keras_history


def _write(model, files, recipe, records, terminated, keep_backup, verbose):
    """Step 5 of :func:`fit`: ``model.keras`` (unless the loss diverged) and ``curves.png``,
    then the backup is removed (unless kept or diverged)."""
    if terminated is None:
        save_model_atomic(model, files.model)
    elif verbose:
        print(f"fit: {terminated}; model.keras not written; {_kept(files.backup)}")
    plot_history(records, files.curves, title=f"{model.name} ({recipe.name})")
    if terminated is None and not keep_backup:
        remove_folder_atomically(files.backup)
    if verbose:
        written = "history.json, curves.png" if terminated else \
            "model.keras, history.json, curves.png"
        print(f"fit: results in {files.folder} ({written})")


def run_epochs(model, data, epochs, *, batch_size=None, steps_per_epoch=None,
               validation_data=None, callbacks=(), verbose=0):
    """``model.fit`` for ``epochs`` on ``data``, the one call of it that :func:`fit` and the
    comparisons' ``train_arm`` share: a batched ``tf.data.Dataset`` is read in its own order;
    ``(x, y)`` arrays are batched by ``batch_size`` and shuffled by Keras every epoch (with its
    seeded random generator). Keras's progress bar becomes one line per epoch where standard
    output is not a terminal.

    Returns:
        Keras's ``History``.
    """
    options = dict(epochs=epochs, steps_per_epoch=steps_per_epoch,
                   validation_data=validation_data, callbacks=list(callbacks),
                   verbose=_progress_verbosity(verbose))
    if isinstance(data, (tuple, list)):
        return model.fit(data[0], data[1], batch_size=batch_size, shuffle=True, **options)
    return model.fit(data, shuffle=False, **options)


def _progress_verbosity(verbose):
    """Keras's verbosity for ``model.fit``: its progress bar (1, "auto") redraws itself with
    terminal control codes, so where standard output is not a terminal (a log file, a pipe)
    one line per epoch (2) is written instead."""
    if verbose in (1, "auto") and not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()):
        return 2
    return verbose
